"""The generic numeric step: a layer's kernel map compiled from SymPy, for layers without a
hand-written step (user layers, `ntk_sym.layers.Layer`).

`MapFunctions` holds the map as array functions of (Σ₁₁, Σ₁₂, Σ₂₂, Θ) (`ntk_sym.compile.mapped`):
Σ' = F(Σ₁₁, Σ₁₂, Σ₂₂, Θ) (F does not read Θ) and Θ' = G(Σ₁₁, Σ₁₂, Σ₂₂, Θ). `Mapped` is its step
in the engine of vectors (`ntk_sym.numeric.engine`):

* per point: Σ'(x, x) = F(v, v, v), Θ'(x, x) = G(v, v, v, Θ(x, x)) with v = Σ(x, x), the same
  compiled map on the diagonal, so pairs of identical inputs (copied from the diagonal at the
  end) stay exact;
* per pair: Σ' = F(Σ₁₁, Σ₁₂, Σ₂₂) and Θ' = G(…, Θ) on the tile, Θ' left None (zero) when Θ is
  zero and G(…, 0) = 0;
* the angle: a map Σ' = aΣ₁₂ + c (numbers a > 0, c ≥ 0: `MapFunctions.affine`) is a Dense
  layer's map on Σ, so its Σ', angle and cancellation-free gaps come from the Dense step
  (`ntk_sym.numeric.steps.Dense`); any other map has no gap identity, so its next angle is
  formed from the new Σ, with the gaps g∓ = ((Σ'₁₁ + Σ'₂₂)/2 ∓ Σ') − (√Σ'₁₁ − √Σ'₂₂)²/2
  (exactly 0 where Σ' = Σ'₁₁ = Σ'₂₂; near-parallel pairs that are not identical then get θ to
  ~√ε only).

Values that are not finite (and negative variances) are refused with an `NTKSymError` naming
the layer: the map left its domain at these inputs.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import NTKSymError
from .state import Pairs, Points, points
from .steps import Dense


@dataclass(frozen=True)
class MapFunctions:
    """A layer's map as array functions (module docstring). `cov` and `ntk` take (Σ₁₁, Σ₁₂,
    Σ₂₂, Θ) and broadcast; `keeps_zero_ntk`: G(…, 0) = 0; `affine`: (a, c) or None."""

    cov: Callable
    ntk: Callable
    keeps_zero_ntk: bool
    affine: tuple[float, float] | None


def full(value, like, xp: types.ModuleType = np):
    """`value` (an array or a number, from a lambdified map) as a new array shaped and typed
    like `like`: the engine's steps never share arrays with their inputs."""
    if value is like or getattr(value, "shape", None) != like.shape:
        value = xp.broadcast_to(xp.asarray(value), like.shape)
        return value.astype(like.dtype, copy=True)
    return value.astype(like.dtype, copy=False)


def check_finite(name: str, what: str, value, xp: types.ModuleType = np) -> None:
    """Refuse non-finite values of a compiled map, naming the layer and the kernel."""
    if not bool(xp.isfinite(value).all()):
        raise NTKSymError(
            f"{name}: the layer's map gave non-finite values of {what} (the map is not defined "
            "at these inputs' kernels)"
        )


def affine_dense(functions: MapFunctions, name: str) -> Dense | None:
    """The Dense step whose map on Σ is the affine Σ' = aΣ + c, or None."""
    if functions.affine is None:
        return None
    a, c = functions.affine
    return Dense(a**0.5, c**0.5, False, name=name)


def diagonal(functions: MapFunctions, var, ntk, name: str, xp: types.ModuleType = np):
    """(Σ'(x, x), Θ'(x, x)) from the variances `var` and the diagonal NTK `ntk` (arrays of the
    same shape), checked."""
    new_var = full(functions.cov(var, var, var, ntk), var, xp)
    new_ntk = full(functions.ntk(var, var, var, ntk), var, xp)
    check_finite(name, "Σ(x, x)", new_var, xp)
    check_finite(name, "Θ(x, x)", new_ntk, xp)
    if bool((new_var < 0).any()):
        raise NTKSymError(f"{name}: the layer's map gave a negative variance Σ(x, x)")
    return new_var, new_ntk


@dataclass(frozen=True)
class Mapped:
    """The generic step of the engine of vectors (module docstring)."""

    functions: MapFunctions
    name: str = "layer"
    _dense: Dense | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_dense", affine_dense(self.functions, self.name))

    def points(self, p: Points, xp: types.ModuleType = np) -> Points:
        return points(*diagonal(self.functions, p.var, p.ntk, self.name, xp), xp)

    def pairs(self, state: Pairs, p1, p2, q1, q2, xp=np, ntk: bool = True) -> Pairs:
        fn = self.functions
        a, c = p1.var[:, None], p2.var[None, :]
        theta = 0.0 if state.ntk is None else state.ntk
        new_ntk = None
        if ntk and not (state.ntk is None and fn.keeps_zero_ntk):
            new_ntk = full(fn.ntk(a, state.cov, c, theta), state.cov, xp)
            check_finite(self.name, "Θ", new_ntk, xp)
        if self._dense is not None:
            out = self._dense.pairs(state, p1, p2, q1, q2, xp, ntk=False)
            return out.replace(ntk=new_ntk)
        cov = full(fn.cov(a, state.cov, c, theta), state.cov, xp)
        check_finite(self.name, "Σ", cov, xp)
        return Pairs(cov, new_ntk, None, _variance_gaps(cov, q1, q2), state.bounds)


def _variance_gaps(cov, q1: Points, q2: Points):
    """g∓ from Σ' and the variances after the step (module docstring)."""

    def gaps(rows, cols):
        a, c, s = q1.var[rows], q2.var[cols], cov[rows, cols]
        mean, spread = (a + c) / 2.0, (q1.root[rows] - q2.root[cols]) ** 2 / 2.0
        return (mean - s) - spread, (mean + s) - spread

    return gaps
