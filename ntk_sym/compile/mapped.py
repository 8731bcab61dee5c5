"""Compile a layer's kernel map into the generic numeric step's functions, once per layer.

The map traced on symbols (`ntk_sym.symbolic.traced`) is lambdified for the array backend:
Σ' = F(Σ₁₁, Σ₁₂, Σ₂₂, Θ) and Θ' = G(Σ₁₁, Σ₁₂, Σ₂₂, Θ) (`ntk_sym.numeric.mapped.MapFunctions`).
Two facts are read off the expressions for the engine: whether G vanishes with Θ (then a zero
NTK stays unstored), and whether F is affine in Σ₁₂ alone, F = aΣ₁₂ + c with numbers a > 0,
c ≥ 0, the map of a Dense layer on Σ, whose angle and gaps the engine carries exactly.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..numeric.mapped import MapFunctions
from ..symbolic.maps import Layer
from ..symbolic.traced import STATE, traced
from .printing import compile_for


@lru_cache(maxsize=256)
def compile_map(layer: Layer, backend: str = "numpy") -> MapFunctions:
    """The `MapFunctions` of `layer`'s map on `backend` ("numpy" or "cupy")."""
    out = traced(layer)
    args = tuple(STATE)
    return MapFunctions(
        cov=compile_for(args, out.s12, backend),
        ntk=compile_for(args, out.ntk, backend),
        keeps_zero_ntk=sp.simplify(out.ntk.subs(STATE.ntk, 0)) == 0,
        affine=_affine(out.s12),
    )


def _affine(cov: sp.Expr) -> tuple[float, float] | None:
    """(a, c) if cov = a Σ₁₂ + c with numbers a > 0, c ≥ 0, else None."""
    if not cov.free_symbols <= {STATE.s12} or not cov.is_polynomial(STATE.s12):
        return None
    poly = sp.Poly(cov, STATE.s12)
    if poly.degree() != 1:
        return None
    a, c = (float(poly.coeff_monomial(STATE.s12**k)) for k in (1, 0))
    return (a, c) if a > 0 and c >= 0 else None
