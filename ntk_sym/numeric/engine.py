"""The float64 kernel engine: NNGP and NTK Gram blocks from compiled dual maps.

Each pair (x, x') is carried through the layers as (q11, q22, θ): the two variances come from the
one-dimensional diagonal recursion (exact for identical inputs), and the angle θ from

    1 − ρ' = g₋'/√(q11' q22'),   1 + ρ' = g₊'/√(q11' q22'),

where, with A = q11', B = q22', s = σ_w², b = σ_b² and the activation's gaps g∓ = √(T11 T22) ∓ T12,

    g₋' = s g₋ + M,   g₊' = s g₊ + M + 2b,   M = s b (√T11 − √T22)² / (√(AB) + s√(T11 T22) + b).

Every term is non-negative, so nothing cancels: identical inputs keep θ = 0 exactly and the
ReLU family's Σ̇ ∝ (π − θ) stays accurate to rounding at every depth. (The naive route,
arccos(q12/√(q11 q22)), loses ~1e-8 at identical inputs.) With P = g₋', Q = g₊' the half-angle
relation tan(θ'/2) = √(P/Q) gives, with no trigonometric call,

    θ' = atan2(2√(PQ), Q − P),   cos θ' = (Q − P)/(Q + P),   sin θ' = 2√(PQ)/(Q + P),

each accurate to rounding near 0 and π (the small quantity is a product, never a difference).
The gaps matter only there: for |cos θ'| ≤ `NEAR_PARALLEL` the engine takes cos θ' = Σ'/√(AB),
sin θ' = √((1 − cos θ')(1 + cos θ')) and θ' = arccos(cos θ') directly (a few ulps), and it
evaluates the gaps, through the dual's `gaps`, only on the few pairs beyond. Duals that need only
cos θ and sin θ (closed forms, quadrature) skip θ altogether. Pairs that are identical at the
first layer (θ = 0 and equal variances) are identical at every layer and are copied from the
diagonal.

The recursion (NTK parameterization):  Σ' = s T + b,  Θ' = Σ' + s Ṫ Θ.  Standard
parameterization: Θ' = T + 1 + s Ṫ Θ (see `ntk_sym.network`).

Everything that depends on one input only (unit vectors, the variances and T, Ṫ of every layer,
the diagonal kernels) lives in `PointData`, computed once per input set; `kernel_tile` does the
O(n1 n2) work for one block of pairs, and `ntk_sym.numeric.gram` tiles, threads and mirrors it.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass

import numpy as np

from .angles import augmented, first_layer, unit_rows
from .dual import CompiledDual

#: Pairs with |cos θ| above this get their next angle from the cancellation-free gaps; below it
#: 1 ∓ cos θ ≥ 0.02 and the direct formulas lose at most a factor 50 in relative accuracy of
#: the small quantity, i.e. ~1e-14, far below what reaches the kernels (ulps of θ).
NEAR_PARALLEL = 0.98


@dataclass(frozen=True)
class LayerSpec:
    """What the engine needs of a network: compiled dual, depth, σ_w, σ_b, parameterization."""

    dual: CompiledDual
    depth: int
    w_std: float
    b_std: float
    standard: bool


@dataclass(frozen=True)
class PointData:
    """Per-point quantities of n inputs, shared by every tile that involves them.

    units: (n, d+1) unit augmented vectors;  q: (n,) first-layer variances Σ⁽¹⁾(x, x);
    var, root_var: (L+1, n) variances Σ⁽ˡ⁾(x, x), l = 1..L+1, and their roots;
    T, root_T: (L, n) T(Σ⁽ˡ⁾) = 𝔼[φ(u)²] for u ~ N(0, Σ⁽ˡ⁾(x, x)), and their roots;
    nngp, ntk: (n,) the diagonal kernels Σ⁽ᴸ⁺¹⁾(x, x), Θ⁽ᴸ⁺¹⁾(x, x);
    extra: per-layer data of duals with `per_point` (tuple of L arrays (m, n), kept in
    float64), or None.
    """

    units: object
    q: object
    var: object
    root_var: object
    T: object
    root_T: object
    nngp: object
    ntk: object
    extra: tuple | None = None

    def rows(self, start: int, stop: int) -> PointData:
        """The points start:stop (views, no copies); the point index is the last axis except
        for `units`."""
        sl = slice(start, stop)
        arrays = (a[..., sl] for a in self._arrays()[1:])
        return PointData(self.units[sl], *arrays, extra=_slice_extra(self.extra, sl))

    def astype(self, dtype: np.dtype) -> PointData:
        """All arrays cast to `dtype` (computed in float64 first, then rounded once); `extra`
        stays float64."""
        arrays = (a.astype(dtype, copy=False) for a in self._arrays())
        return PointData(*arrays, extra=self.extra)

    def _arrays(self) -> list:
        # not dataclasses.astuple, which deep-copies the arrays
        return [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"]

    def __len__(self) -> int:
        return self.q.shape[0]


def point_data(spec: LayerSpec, X, xp: types.ModuleType = np) -> PointData:
    """`PointData` of the rows of X (float64), by the one-dimensional diagonal recursion."""
    s, b = spec.w_std**2, spec.b_std**2
    units, q = unit_rows(augmented(X, spec.w_std, spec.b_std, xp), xp)
    var, Ts, Tdots = [q], [], []
    extra = [] if spec.dual.per_point is not None else None
    ntk = (q - b) / s + 1.0 if spec.standard else q
    for _ in range(spec.depth):
        if extra is not None:
            extra.append(spec.dual.per_point(var[-1]))
        T, Tdot = spec.dual.diag(var[-1])
        new = s * T + b
        ntk = (T + 1.0 if spec.standard else new) + s * Tdot * ntk
        var.append(new)
        Ts.append(T)
        Tdots.append(Tdot)
    T_all = xp.stack(Ts) if Ts else xp.zeros((0, q.shape[0]))
    var_all = xp.stack(var)
    return PointData(
        units,
        q,
        var_all,
        xp.sqrt(var_all),
        T_all,
        xp.sqrt(T_all),
        var[-1],
        ntk,
        extra=None if extra is None else tuple(extra),
    )


def kernel_tile(
    spec: LayerSpec,
    P1: PointData,
    P2: PointData,
    xp: types.ModuleType = np,
    bounds: list | None = None,
):
    """(NNGP, NTK) blocks (n1, n2) between the points of P1 and P2 (in their dtype).

    bounds: for duals that report error bounds, (layer, bound) pairs are appended to it.
    """
    s, b = spec.w_std**2, spec.b_std**2
    dual = spec.dual
    th, cos, sin, (same_rows, same_cols) = first_layer(
        P1.units, P1.q, P2.units, P2.q, dual.needs_theta, xp
    )
    nngp = (P1.root_var[0][:, None] * P2.root_var[0][None, :]) * cos
    ntk = (nngp - b) / s + 1.0 if spec.standard else nngp
    for layer in range(spec.depth):
        a, c = P1.var[layer][:, None], P2.var[layer][None, :]
        T11, T22 = P1.T[layer][:, None], P2.T[layer][None, :]
        T12, Tdot12 = _pair(dual, layer, P1, P2, (a, c, th, cos, sin, T11, T22), bounds)
        # Θ' = Σ' + s Ṫ Θ (standard: T + 1 + s Ṫ Θ), in place on arrays made here
        ntk = xp.multiply(Tdot12, ntk)
        ntk *= s
        nngp = xp.multiply(T12, s)
        nngp += b
        if spec.standard:
            ntk += T12
            ntk += 1.0
        else:
            ntk += nngp
        if layer + 1 < spec.depth:
            th, cos, sin = _next_angle(spec, P1, P2, layer, nngp, (th, cos, sin, T12), xp)
    if same_rows.size:
        nngp[same_rows, same_cols] = P1.nngp[same_rows]
        ntk[same_rows, same_cols] = P1.ntk[same_rows]
    return nngp, ntk


def _next_angle(spec: LayerSpec, P1: PointData, P2: PointData, layer: int, nngp, now, xp):
    """(θ', cos θ', sin θ') of the next layer from its covariance Σ' = `nngp` (module docstring).

    cos θ' = Σ'/√(AB) directly, and sin θ' = √((1 − cos θ')(1 + cos θ')), θ' = arccos(cos θ'),
    which are accurate to a few ulps while |cos θ'| ≤ `NEAR_PARALLEL`; the remaining pairs (near
    0 or π) are redone from the cancellation-free gaps. `now` = (θ, cos θ, sin θ, T12) of this
    layer.
    """
    s, b = spec.w_std**2, spec.b_std**2
    ra, rc = P1.root_var[layer + 1], P2.root_var[layer + 1]
    cos = xp.multiply(ra[:, None], rc[None, :])
    xp.divide(nngp, cos, out=cos)
    sin = xp.multiply(cos, cos)
    xp.subtract(1.0, sin, out=sin)
    xp.sqrt(sin, out=sin)
    th = xp.arccos(cos) if spec.dual.needs_theta else None
    near = xp.abs(cos) > NEAR_PARALLEL
    if xp.any(near):  # cheaper than nonzero on the many tiles without such pairs
        rows, cols = xp.nonzero(near)
        th_s, cos_s, sin_s = (None if v is None else v[rows, cols] for v in now[:3])
        T1, T2 = P1.T[layer][rows], P2.T[layer][cols]
        gm, gp = spec.dual.gaps(
            P1.var[layer][rows],
            P2.var[layer][cols],
            th_s,
            cos_s,
            sin_s,
            T1,
            T2,
            now[3][rows, cols],
            **_extra_of_pairs(P1, P2, layer, rows, cols),
        )
        P, Q = s * gm, s * gp
        if b > 0:
            r1, r2 = P1.root_T[layer][rows], P2.root_T[layer][cols]
            mismatch = s * b * (r1 - r2) ** 2 / (ra[rows] * rc[cols] + s * (r1 * r2) + b)
            P += mismatch
            Q += mismatch + 2.0 * b
        P, Q = xp.maximum(P, 0.0), xp.maximum(Q, 0.0)
        y, x, total = 2.0 * xp.sqrt(P * Q), Q - P, P + Q
        cos[rows, cols], sin[rows, cols] = x / total, y / total
        if th is not None:
            th[rows, cols] = xp.arctan2(y, x)
    zero1, zero2 = P1.var[layer + 1] == 0, P2.var[layer + 1] == 0
    if xp.any(zero1) or xp.any(zero2):
        # a zero variance has no direction: θ = π/2, so that q12 = 0 exactly
        degenerate = zero1[:, None] | zero2[None, :]
        cos, sin = xp.where(degenerate, 0.0, cos), xp.where(degenerate, 1.0, sin)
        if th is not None:
            th = xp.where(degenerate, np.pi / 2, th)
    return th, cos, sin


# -- hooks for duals with per-point data and error bounds (`CompiledDual.per_point`,
# -- `CompiledDual.reports_bound`, e.g. the Hermite series): kept apart so that they carry over
def _slice_extra(extra: tuple | None, sl: slice) -> tuple | None:
    return None if extra is None else tuple(e[:, sl] for e in extra)


def _pair(dual: CompiledDual, layer: int, P1: PointData, P2: PointData, args: tuple, bounds):
    """dual.pair(*args), with the layer's per-point slices and its reported bound collected."""
    if dual.per_point is None:
        return dual.pair(*args)
    result = dual.pair(*args, extra=(P1.extra[layer], P2.extra[layer]))
    if not dual.reports_bound:
        return result
    if bounds is not None:
        bounds.append((layer, result[2]))
    return result[0], result[1]


def _extra_of_pairs(P1: PointData, P2: PointData, layer: int, rows, cols) -> dict:
    """The `extra` keyword of dual.gaps for the pairs (rows, cols), if the dual has one."""
    if P1.extra is None:
        return {}
    return {"extra": (P1.extra[layer][:, rows], P2.extra[layer][:, cols])}
