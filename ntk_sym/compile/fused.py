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

#: The loop's body, a line per output; `_source` keeps the lines of one variant. Branch-free
#: (max, and a comparison added as 0 or 1), so that LLVM can vectorise it.
_HEAD = """
def layer(th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, near_sin2, cov_out, ntk_out,
          cos_out, sin_out):
    n1, n2 = cos.shape
    near = 0
    for r in range(n1):
        a, wa, ia = u1[r], w1[r], i1[r]
        for c in range(n2):
            J, K = JK(th[r, c], cos[r, c], sin[r, c])
            scaled = a * u2[c] * J
            cv = scaled + b
            cov_out[r, c] = cv
"""
_WEIGHTS = {False: "            weights = cv\n", True: "            weights = scaled / s + 1.0\n"}
_NTK = {
    False: "            ntk_out[r, c] = weights\n",
    True: "            ntk_out[r, c] = weights + wa * w2[c] * K * ntk[r, c]\n",
}
_ANGLE = """            cn = cv * ia * i2[c]
            cos_out[r, c] = cn
            s2 = 1.0 - cn * cn
            near += s2 < near_sin2
            sin_out[r, c] = math.sqrt(max(s2, 0.0))
"""


def _source(track: bool, carry: bool, angle: bool, standard: bool) -> str:
    body = _HEAD
    if track:
        body += _WEIGHTS[standard] + _NTK[carry]
    if angle:
        body += _ANGLE
    return body + "    return near\n"


@cache
def _numba():
    try:
        import numba
    except ImportError:
        return None
    return numba


class FusedLayer:
    """The compiled loops of one angle form (J̃, K̃), a variant per combination of outputs.

    ``layer(th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, standard, near_sin2, cov_out,
    ntk_out, cos_out, sin_out) -> number of near pairs`` fills the tile arrays `cov_out` (Σ'),
    `ntk_out` (Θ'), `cos_out` and `sin_out` (θ'), and counts the pairs with sin²θ' < near_sin2
    (sin θ' = 0 where rounding made sin²θ' negative). Arrays not used are passed with length 0:
    `ntk` (Θ = 0 so far, or K̃ = 0), `ntk_out` (NTK not wanted), `cos_out` and `sin_out` (no
    activation next). `th` is read at every pair: pass any tile-shaped array (cos θ) when J̃
    and K̃ do not read θ.
    """

    def __init__(self, numba, JK: Callable) -> None:
        self._numba, self._JK, self._variants = numba, numba.njit(inline="always")(JK), {}

    def _variant(self, key: tuple[bool, bool, bool, bool]) -> Callable:
        if key not in self._variants:
            namespace = {"JK": self._JK, "math": math}
            exec(_source(*key), namespace)  # noqa: S102 (our own template, no outside input)
            self._variants[key] = self._numba.njit(nogil=True)(namespace["layer"])
        return self._variants[key]

    def __call__(self, th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, standard, near_sin2,
                 cov_out, ntk_out, cos_out, sin_out) -> int:
        track, angle = ntk_out.shape[0] > 0, cos_out.shape[0] > 0
        key = (track, track and ntk.shape[0] > 0, angle, track and bool(standard))
        return self._variant(key)(th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, near_sin2,
                                  cov_out, ntk_out, cos_out, sin_out)


@cache
def fused_layer(J: sp.Expr, K: sp.Expr, args: tuple[sp.Symbol, sp.Symbol, sp.Symbol]
                ) -> FusedLayer | None:
    """The compiled loops (`FusedLayer`) of the angle form (J̃, K̃) in the symbols
    args = (θ, cos θ, sin θ), or None without numba."""
    numba = _numba()
    if numba is None:
        return None
    return FusedLayer(numba, sp.lambdify(args, (J, K), modules="math", cse=True))
