"""The generic step of the convolutional engine: a layer's compiled map at every pixel pair.

The map of `ntk_sym.numeric.mapped` acts on each entry of the pair kernels with the variances
v₁ = Σ(x, x)[p, p], v₂ = Σ(x', x')[p', p']: Σ'[p, p'] = F(v₁, Σ[p, p'], v₂) and Θ'[p, p'] =
G(v₁, Σ[p, p'], v₂, Θ[p, p']). An affine map Σ' = aΣ + c runs the Dense step's covariance and
gaps (`ntk_sym.numeric.conv.steps.DenseStep`); any other map leaves the gaps to the direct form
from Σ' and the variances (`ntk_sym.numeric.conv.steps.variance_gaps`), exactly 0 for identical
receptive fields. The per-point variances after the step come from the same map on each image
with itself (`ntk_sym.numeric.conv.engine.point_data`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..mapped import MapFunctions, check_finite, full
from .layout import Layout
from .steps import DenseStep, Pairs


@dataclass(frozen=True)
class MappedStep:
    """Σ' = F(v₁, Σ, v₂), Θ' = G(v₁, Σ, v₂, Θ) at every entry (module docstring)."""

    functions: MapFunctions
    name: str = "layer"
    _dense: DenseStep | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        affine = self.functions.affine
        dense = None if affine is None else DenseStep(affine[0] ** 0.5, affine[1] ** 0.5,
                                                      False, self.name)
        object.__setattr__(self, "_dense", dense)

    def layout(self, lay: Layout) -> Layout:
        return lay

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True) -> Pairs:
        fn = self.functions
        a, c = lay.left(v1), lay.right(v2)
        theta = 0.0 if state.ntk is None else state.ntk
        new_ntk = None
        if ntk and not (state.ntk is None and fn.keeps_zero_ntk):
            new_ntk = full(fn.ntk(a, state.cov, c, theta), state.cov, xp)
            check_finite(self.name, "Θ", new_ntk, xp)
        if self._dense is not None:
            out = self._dense.pairs(state, v1, v2, lay, shape, xp, ntk=False)
            return Pairs(out.cov, new_ntk, out.gaps)
        cov = full(fn.cov(a, state.cov, c, theta), state.cov, xp)
        check_finite(self.name, "Σ", cov, xp)
        return Pairs(cov, new_ntk, None)
