"""The Mehler/Hermite dual of any activation: a `CompiledDual` with per-point coefficients.

    T(q₁, q₂, ρ) = Σ_k c_k(q₁) c_k(q₂) ρ^k,   Ṫ(q₁, q₂, ρ) = Σ_k d_k(q₁) d_k(q₂) ρ^k,

with c_k, d_k the normalised Hermite coefficients of φ and φ' at variance q
(`ntk_sym.numeric.hermite`). The engine computes them once per input set and layer through
`per_point` and hands each tile its slices; a pair then costs O(K) arithmetic and no evaluation
of φ (`ntk_sym.numeric.mehler`). K is chosen per tile from `tol`, a bound on the truncation
error relative to √(T₁₁T₂₂) (Cauchy–Schwarz, see `mehler`), and `pair` reports the bound it
reached so that the engine can return the largest one to the user. The few pairs near ρ = ±1
whose series would need more terms than computed go to the two-dimensional rule
(`ntk_sym.numeric.pair_rule`); exact duplicates (ρ = 1, equal variances) copy the diagonal.
Convolutional networks sum the same series on grids of (position, image) pairs (`pair_grid`,
`ntk_sym.numeric.conv.mehler`), where the antipodes of an odd φ (ρ = −1, equal variances: every
pixel of an image against its negation) are exact too: T₁₂ = −T, Ṫ₁₂ = Ṫ.

Used for every activation without a closed form (tanh, sigmoid, softplus, SiLU, ELU, SymPy
expressions) on the NumPy backend. Its input checks: φ must be continuous on ℝ up to the kinks
that `kink_points` finds, and its Gaussian moments must exist at the variances met.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from sympy.calculus.util import continuous_domain

from ..errors import ExpressionError, NTKSymError, ToleranceError
from ..numeric.conv.mehler import SeriesOrders, grid_series
from ..numeric.dual import CompiledDual
from ..numeric.hermite import FIRST_TERMS, MAX_TERMS, Coefficients, HermiteData
from ..numeric.mehler import (
    NEGLIGIBLE,
    RHO_BULK,
    active_orders,
    gathered,
    horner,
    pair_bound,
    series_gaps,
    tile_order,
)
from ..numeric.pair_rule import PairRule
from ..symbolic.activations import Activation, resolve
from ..symbolic.hermite import is_odd, kink_points
from ..symbolic.symbols import X
from .backends import array_module, compile_phi

#: Default bound on each layer's truncation error relative to √(T₁₁T₂₂): the errors of a few
#: layers add up (each amplified by at most σ_w² 𝔼[φ'²]), and 1e-14 keeps depth-3 kernels
#: within 1e-12 of the exact ones (benchmarks/bench_series.py).
DEFAULT_TOL = 1e-14
#: The smallest tolerance accepted: the coefficients' quadrature and the tails are known to
#: ~1e-15 relative, so smaller bounds cannot be certified in float64.
MIN_TOL = 1e-15
#: The per-point coefficients are extended until pairs with |ρ| up to this get the tolerance
#: from the series (or the tails reach rounding level); pairs beyond it get the full series if
#: it meets the tolerance for them, else the 2-D rule. Pairs beyond `RHO_BULK` are rare on
#: generic data (duplicates are copied), so extending further would cost every point more than
#: it saves on those pairs.
RHO_REACH = RHO_BULK


def check_tolerance(tol: float) -> float:
    if not (isinstance(tol, int | float) and math.isfinite(tol) and MIN_TOL <= tol < 1):
        raise ToleranceError(
            f"tol={tol!r} cannot be met: the Hermite series certifies errors down to "
            f"{MIN_TOL:.0e} relative to √(T₁₁T₂₂) (float64 coefficients are known to ~1e-15); "
            f"use {MIN_TOL:.0e} ≤ tol < 1"
        )
    return float(tol)


def check_domain(act: Activation) -> None:
    """Refuse φ that are not finite and continuous on ℝ (1/x, log x, ...) with a clear error."""
    try:
        domain = continuous_domain(act.expr, X, sp.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        return  # SymPy cannot tell (Piecewise): the quadrature's finiteness checks remain
    if domain != sp.S.Reals:
        raise ExpressionError(
            f"{act.name}: φ(x) = {act.expr} is not continuous on the whole real line (only on "
            f"{domain}), so its Gaussian expectations are undefined or infinite"
        )


def point_coefficients(rules: Coefficients, q, tol: float, least: int = FIRST_TERMS
                       ) -> HermiteData:
    """Coefficients at the variances q, with as many terms as the pairs will need: doubled from
    `least` (`FIRST_TERMS` times a power of two) until the normalised tails r̂_K are below tol/100
    (the series is then accurate for every ρ) or RHO_REACH^{K+1} r̂_K ≤ tol, up to `MAX_TERMS`."""
    terms, nodes = least, None
    while True:
        H = rules.compute(q, terms, nodes)
        nodes = rules.last_nodes
        worst = 0.0
        for r, T in ((H.rc, H.T), (H.rd, H.Tdot)):
            if r.shape[1]:
                worst = max(worst, float(np.max(r[-1] / np.where(T > 0, T, 1.0))))
        if worst <= tol / 100 or RHO_REACH ** (terms + 1) * worst <= tol or terms >= MAX_TERMS:
            return H
        terms *= 2


def compile_series(act: Activation, backend: str = "numpy", tol: float = DEFAULT_TOL):
    """The Mehler-series `CompiledDual` of `act` (see the module docstring)."""
    tol = check_tolerance(tol)
    if backend != "numpy":
        raise NTKSymError("the Hermite series dual runs on the NumPy backend")
    xp = array_module(backend)
    check_domain(act)
    phi, dphi = compile_phi(act, backend)
    kinks = tuple(sorted(float(k) for k in kink_points(act.expr) | kink_points(act.derivative)))
    rules = Coefficients(phi, dphi, kinks, act.name, xp)
    odd = is_odd(act.expr)
    rule2d = PairRule(phi, dphi, kinks, odd, xp)

    last: list = [None, None]  # (q, its HermiteData): the engine asks for diag(q) right after

    def per_point(q, least: int = FIRST_TERMS):
        H = point_coefficients(rules, q, tol, least)
        last[:] = [q, H]
        return H.pack(xp)

    def diag(q):
        H = last[1] if last[0] is q else rules.compute(q, 1)
        return H.T, H.Tdot

    def pair(a, b, th, cos, sin, T11, T22, extra):
        H1, H2 = (HermiteData.unpack(e) for e in extra)
        magnitude = xp.abs(cos)
        far = magnitude > RHO_BULK
        rho_max = float(xp.max(xp.where(far, 0.0, magnitude))) if cos.size else 0.0
        values, betas = [], []
        for which, A, B, r1, r2, N1, N2 in _sides(H1, H2):
            K, beta = tile_order(r1, N1, r2, N2, rho_max, tol, xp)
            if beta > tol:
                raise ToleranceError(
                    f"{act.name}: the Hermite series reached a bound of {beta:.1e} (relative "
                    f"to √(T₁₁T₂₂)) with {K + 1} terms at |ρ| ≤ {rho_max:.3f}, above tol={tol:.1e}"
                )
            orders = [k for k in active_orders(H1, H2, which, xp) if k <= K]
            values.append(horner(A, B, orders, cos, xp))
            betas.append(beta)
        T12, Td12 = values
        quadrature_pairs = 0
        if xp.any(far):
            rows, cols = xp.nonzero(far)
            aa = xp.broadcast_to(a, cos.shape)[rows, cols]
            bb = xp.broadcast_to(b, cos.shape)[rows, cols]
            c_s, s_s = cos[rows, cols], sin[rows, cols]
            S1, S2 = (HermiteData.unpack(e) for e in (extra[0][:, rows], extra[1][:, cols]))
            t_far, d_far, worst, quadrature_pairs = _far_pairs(S1, S2, aa, bb, c_s, s_s)
            T12[rows, cols], Td12[rows, cols] = t_far, d_far
            betas = [max(betas[0], worst[0]), max(betas[1], worst[1])]
        return T12, Td12, (betas[0], betas[1], quadrature_pairs)

    def _far_pairs(S1, S2, a, b, cos, sin):
        """T₁₂, Ṫ₁₂ of pairs with |ρ| > RHO_BULK: duplicates, full series, or the 2-D rule."""
        T12, Td12 = xp.empty_like(cos), xp.empty_like(cos)
        same = (cos == 1.0) & (a == b)
        T12[same], Td12[same] = S1.T[same], S1.Tdot[same]
        bounds = [pair_bound(r1, N1, r2, N2, cos, xp) for _, _, _, r1, r2, N1, N2 in _sides(S1, S2)]
        series = ~same & (bounds[0] <= tol) & (bounds[1] <= tol)
        for out, (which, A, B, *_) in zip((T12, Td12), _sides(S1, S2), strict=True):
            orders = active_orders(S1, S2, which, xp)
            out[series] = gathered(A[:, series], B[:, series], orders, cos[series], xp)
        worst = [float(xp.max(bd[series])) if xp.any(series) else 0.0 for bd in bounds]
        rest = ~same & ~series
        if xp.any(rest):
            t, d, _, _ = rule2d(
                a[rest],
                b[rest],
                cos[rest],
                sin[rest],
                S1.T[rest],
                S2.T[rest],
                S1.resolution,
                S1.window,
            )
            T12[rest], Td12[rest] = t, d
        return T12, Td12, worst, int(xp.sum(rest))

    def gaps(a, b, th, cos, sin, T11, T22, T12, extra):
        S1, S2 = (HermiteData.unpack(e) for e in extra)
        same = (cos == 1.0) & (a == b)
        if odd:  # antipodes of an odd φ: the series' g₊ is exactly 0 (module docstring)
            same |= (cos == -1.0) & (a == b)
        if xp.all(same & (cos == 1.0)):  # the diagonal's pairs: g₋ = 0, g₊ = 2√(T11 T22)
            return xp.zeros_like(cos), 2 * xp.sqrt(T11 * T22)
        orders = active_orders(S1, S2, "c", xp)
        gm, gp = series_gaps(S1.c, S1.rc, S1.T, S2.c, S2.rc, S2.T, cos, sin, orders, xp)
        bounds = [pair_bound(r1, N1, r2, N2, cos, xp) for _, _, _, r1, r2, N1, N2 in _sides(S1, S2)]
        rest = (bounds[0] > tol) & ~same
        if xp.any(rest):
            _, _, gm[rest], gp[rest] = rule2d(
                a[rest],
                b[rest],
                cos[rest],
                sin[rest],
                T11[rest],
                T22[rest],
                S1.resolution,
                S1.window,
            )
        return gm, gp

    def pair_grid(cos, sin, a, b, e1, e2, *, diag: bool, zipped: bool):
        """T₁₂, Ṫ₁₂ on a conv grid (P₁, P₂, t₁, t₂) from per-(position, image) data (P, t) and
        packs (m, P, t) (`ntk_sym.numeric.conv.mehler`), with the tile's bound as `pair`'s and
        the per-point (T₁, T₂)."""
        H1, H2 = HermiteData.unpack(e1), HermiteData.unpack(e2)
        magnitude = xp.abs(cos)
        rho_max = float(xp.max(magnitude, where=magnitude <= RHO_BULK, initial=0.0))
        orders, tails, betas = [], [], []
        for which, A, B, r1, r2, N1, N2 in _sides(H1, H2):
            K, beta = tile_order(r1, N1, r2, N2, rho_max, tol, xp)
            if beta > tol:
                raise ToleranceError(
                    f"{act.name}: the Hermite series reached a bound of {beta:.1e} (relative "
                    f"to √(T₁₁T₂₂)) with {K + 1} terms at |ρ| ≤ {rho_max:.3f}, above tol={tol:.1e}"
                )
            active = active_orders(H1, H2, which, xp)
            bulk = [k for k in active if k <= K] or [0]
            step = 2 if len({k % 2 for k in active}) == 1 else 1
            top_all = min(A.shape[0], B.shape[0]) - 1
            orders.append(SeriesOrders(bulk[0], step, bulk[-1], top_all))
            tails.append(tuple(r[top_all] / xp.where(N > 0, N, 1.0)
                               for r, N in ((r1, N1), (r2, N2))))
            betas.append(beta)
        T12, Td12, rest, worst, count = grid_series(
            cos, (H1.c, H2.c), (H1.d, H2.d), (a, b), (H1.T, H2.T), (H1.Tdot, H2.Tdot), tails,
            tuple(orders), diag=diag, zipped=zipped, odd=odd, rho_bulk=RHO_BULK, tol=tol,
            negligible=NEGLIGIBLE)
        if count:
            idx = xp.nonzero(rest)
            left = (idx[0], idx[2])
            right = (idx[0] if diag else idx[1], idx[2] if zipped else idx[3])
            T12[idx], Td12[idx], _, _ = rule2d(a[left], b[right], cos[idx], sin[idx],
                                               H1.T[left], H2.T[right], H1.resolution, H1.window)
        bound = (max(betas[0], worst[0]), max(betas[1], worst[1]), count)
        return T12, Td12, bound, (H1.T, H2.T)

    return CompiledDual(diag, pair, gaps, "hermite series", per_point=per_point, reports_bound=True,
                        pair_grid=pair_grid)


def coefficients(activation, q, terms: int) -> tuple:
    """(c, d, r, T): the first `terms` Hermite coefficients of φ and of φ' (arrays (terms, n)),
    the tails r_k = Σ_{j>k} c_j² and T = 𝔼[φ(u)²] at the variances q, by the rule the series
    dual uses. `activation`: a name, SymPy expression or `Activation`."""
    act = resolve(activation)
    check_domain(act)
    phi, dphi = compile_phi(act)
    kinks = tuple(sorted(float(k) for k in kink_points(act.expr) | kink_points(act.derivative)))
    H = Coefficients(phi, dphi, kinks, act.name).compute(np.asarray(q, dtype=float), terms)
    return H.c, H.d, H.rc, H.T


def diagonal_of(extra) -> tuple:
    """(Ṫ, q 𝔼[φ''²]) per point from one layer's per-point data (for `numeric.bound`)."""
    H = HermiteData.unpack(extra)
    return H.Tdot, H.slope


def _sides(H1: HermiteData, H2: HermiteData):
    """(which, coefficients of both sets, tails of both, norms of both) for φ and for φ'."""
    return (
        ("c", H1.c, H2.c, H1.rc, H2.rc, H1.T, H2.T),
        ("d", H1.d, H2.d, H1.rd, H2.rd, H1.Tdot, H2.Tdot),
    )


__all__ = [
    "DEFAULT_TOL",
    "MIN_TOL",
    "coefficients",
    "compile_series",
    "diagonal_of",
    "point_coefficients",
]
