"""One compiled loop for a hidden layer of the ReLU family: activation, Dense and the next angle.

For a positively homogeneous activation of degree k the engine's fused hidden layer
(`ntk_sym.numeric.steps.ActivationDense`) computes, at every pair of a tile,

    Σ' = u₁u₂ J̃(θ) + b,                                       u = √(s j) √q^k per point,
    Θ' = Σ' + w₁w₂ K̃(θ) Θ      (standard: u₁u₂J̃/s + 1 + w₁w₂K̃Θ),  w₁ = sκ√q₁^{k−1}, w₂ = √q₂^{k−1},
    cos θ' = Σ' i₁i₂,  sin θ' = √(1 − cos²θ'),                 i = 1/√Σ'(x, x) per point,

with J̃, K̃ the activation's angle form (`ntk_sym.numeric.dual.AngleForm`). As NumPy calls this
is ~15 passes over the tile, each reading and writing whole arrays; here it is one pass, with
J̃ and K̃ compiled by numba from their SymPy expressions (printed by `lambdify` for the `math`
module and inlined). NumPy then takes √ and arccos of the results (its SIMD loops are faster
than scalar libm calls), and the engine refines the few pairs near θ = 0 or π from the gaps as
before. The arithmetic is the NumPy path's, in the same order, so the two agree to rounding.

numba is imported here only: `fused_layer` returns None when it is missing, and the engine then
runs the NumPy path. Kernels are compiled on first use, once per (J̃, K̃) and dtype in a process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import sympy as sp

_LOOP = '''
def layer(th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, standard, near_sin2, cov_out,
          ntk_out, cos_out, sin_out):
    n1, n2 = cos.shape
    near = 0
    track = ntk_out.shape[0] > 0
    carry = ntk.shape[0] > 0
    angle = cos_out.shape[0] > 0
    for r in range(n1):
        a, wa, ia = u1[r], w1[r], i1[r]
        for c in range(n2):
            t = th[r, c]
            parts = JK(t, cos[r, c], sin[r, c])
            scaled = a * u2[c] * parts[0]
            cv = scaled + b
            cov_out[r, c] = cv
            if track:
                weights = scaled / s + 1.0 if standard else cv
                ntk_out[r, c] = weights + wa * w2[c] * parts[1] * ntk[r, c] if carry else weights
            if angle:
                cn = cv * ia * i2[c]
                cos_out[r, c] = cn
                s2 = 1.0 - cn * cn
                if s2 < near_sin2:
                    near += 1
                sin_out[r, c] = math.sqrt(s2) if s2 > 0.0 else 0.0
    return near
'''


@cache
def _numba():
    try:
        import numba
    except ImportError:
        return None
    return numba


@cache
def fused_layer(J: sp.Expr, K: sp.Expr, args: tuple[sp.Symbol, sp.Symbol, sp.Symbol]
                ) -> Callable | None:
    """The compiled loop (module docstring) for the angle form (J̃, K̃) in the symbols
    args = (θ, cos θ, sin θ), or
    None without numba. The arrays `ntk` (Θ = 0 so far, or K̃ = 0), `ntk_out` (NTK not wanted)
    and `cos_out`, `sin_out` (no activation next) are passed with length 0 when not used; `th`
    is read at every pair, so pass any tile-shaped array (cos θ) when J̃ and K̃ do not read θ.
    The loop returns the number of near pairs (sin θ' = 0 where rounding made sin²θ' < 0)."""
    numba = _numba()
    if numba is None:
        return None
    parts = sp.lambdify(args, (J, K), modules="math", cse=True)
    namespace = {"JK": numba.njit(inline="always")(parts), "math": math}
    exec(_LOOP, namespace)  # noqa: S102 (our own template, no outside input)
    return numba.njit(nogil=True)(namespace["layer"])
