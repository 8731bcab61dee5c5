"""The Mehler series T = Σ_k c_k(q₁) c_k(q₂) ρ^k on the conv engine's pair grids.

A convolutional tile pairs every (position, image) of one set with every (position, image) of
the other; its pair arrays, viewed as a grid (P₁, P₂, t₁, t₂) (`layout.Layout.grid`), hold
ρ = cos θ at (p, p', i, j), and the per-point coefficients c_k are arrays (K+1, P, t) per
(position, image), computed once per input set and layer. Two flags cover the four layouts: on a
*diagonal* grid the second position is the first (P₂ = 1, p' = p: Conv stacks ending in
Flatten), on a *zipped* grid the second image is the first (t₂ = 1, j = i: each image with
itself).

`grid_series` sums two series at once (φ's and φ''s, with their own orders), in two regimes:

* bulk pairs (|ρ| ≤ ρ_bulk): orders first, first + step, …, top of the tile (step 2 for an odd
  or even φ), by Horner's rule in ρ^step, vectorised over the last image axis;
* pairs with |ρ| > ρ_bulk: every order the data hold (top_all), and the pair's own bound
  β = |ρ|^{K+1} √(r̂_K(q₁) r̂_K(q₂)) + (K+1)·negligible² (`ntk_sym.numeric.mehler`). A pair whose
  β exceeds tol is flagged in `rest` for the caller's two-dimensional rule; the others' largest
  β is returned;
* duplicates (ρ = 1 with equal variances) get the per-point diagonal values T(q), Ṫ(q), and
  for an odd φ antipodes (ρ = −1, equal variances) get −T(q), Ṫ(q), exactly (every pixel of an
  image against the negated image; the series' bound cannot certify |ρ| = 1).

One compiled loop (numba) makes one pass over the grid, where NumPy's Horner would take three
per order; without numba the same sums run as NumPy broadcasts (`_grid_series_numpy`).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True)
class SeriesOrders:
    """Orders first, first + step, …, top of one series on the bulk pairs, and the last order
    top_all the per-point data hold (for the pairs beyond ρ_bulk)."""

    first: int
    step: int
    top: int
    top_all: int


def _horner(acc, pw, a_col, b, idx, contiguous, first, step, top):
    """acc[m] = Σ_k a_k b[k, idx[m]] pw[m]^((k − first)/step) over k = first, …, top."""
    R = acc.shape[0]
    a = a_col[top]
    if contiguous:
        row = b[top]
        for m in range(R):
            acc[m] = a * row[m]
        for k in range(top - step, first - 1, -step):
            a = a_col[k]
            row = b[k]
            for m in range(R):
                acc[m] = acc[m] * pw[m] + a * row[m]
    else:
        for m in range(R):
            acc[m] = a * b[top, idx[m]]
        for k in range(top - step, first - 1, -step):
            a = a_col[k]
            for m in range(R):
                acc[m] = acc[m] * pw[m] + a * b[k, idx[m]]


def _loop(rho, ca, cb, da, db, va, vb, Ta, Da, rca, rcb, rda, rdb, tb,
          c_first, c_step, c_top, c_all, d_first, d_step, d_top, d_all,
          diag, zipped, odd, rho_bulk, tol, negl_c, negl_d, T_out, D_out, rest):
    """The compiled loop of `grid_series`. The first set's arrays are (K+1, P, t) and (P, t),
    the second set's flattened to its points (position, image): (K+1, P·tb) and (P·tb,).

    For each point (p, i) of the first set its pairs with the second set are gathered into one
    row (on a full outer grid all (p', j), whose coefficients are then read contiguously, so
    that the order loop runs over P·t pairs at once), summed by Horner's rule (`_horner`), and
    scattered back with the fix-ups of duplicates and of the pairs beyond the bulk."""
    P1, P2, T1, T2 = rho.shape
    R = P2 * T2
    contiguous = not diag and not zipped
    buf = np.empty(R)
    pw_c, pw_d = np.empty(R), np.empty(R)
    acc_c, acc_d = np.empty(R), np.empty(R)
    idx = np.empty(R, np.int64)
    worst_c = 0.0
    worst_d = 0.0
    nrest = 0
    for p in range(P1):
        for i in range(T1):
            m = 0
            for q in range(P2):
                qb = p if diag else q
                for j in range(T2):
                    r = rho[p, q, i, j]
                    buf[m] = r
                    pw_c[m] = r * r if c_step == 2 else r
                    pw_d[m] = r * r if d_step == 2 else r
                    idx[m] = qb * tb + (i if zipped else j)
                    m += 1
            _horner(acc_c, pw_c, ca[:, p, i], cb, idx, contiguous, c_first, c_step, c_top)
            _horner(acc_d, pw_d, da[:, p, i], db, idx, contiguous, d_first, d_step, d_top)
            m = 0
            for q in range(P2):
                for j in range(T2):
                    r = buf[m]
                    b = idx[m]
                    mag = abs(r)
                    if r == 1.0 and va[p, i] == vb[b]:
                        T_out[p, q, i, j] = Ta[p, i]
                        D_out[p, q, i, j] = Da[p, i]
                    elif odd and r == -1.0 and va[p, i] == vb[b]:
                        T_out[p, q, i, j] = -Ta[p, i]
                        D_out[p, q, i, j] = Da[p, i]
                    elif mag <= rho_bulk:
                        T_out[p, q, i, j] = acc_c[m] * r ** c_first
                        D_out[p, q, i, j] = acc_d[m] * r ** d_first
                    else:
                        # beyond the bulk: all the orders held, and this pair's own bound
                        sc = 0.0
                        for k in range(c_all, -1, -1):
                            sc = sc * r + ca[k, p, i] * cb[k, b]
                        sd = 0.0
                        for k in range(d_all, -1, -1):
                            sd = sd * r + da[k, p, i] * db[k, b]
                        T_out[p, q, i, j] = sc
                        D_out[p, q, i, j] = sd
                        bc = mag ** (c_all + 1) * math.sqrt(rca[p, i] * rcb[b]) + negl_c
                        bd = mag ** (d_all + 1) * math.sqrt(rda[p, i] * rdb[b]) + negl_d
                        if bc > tol or bd > tol:
                            rest[p, q, i, j] = 1
                            nrest += 1
                        else:
                            worst_c = max(worst_c, bc)
                            worst_d = max(worst_d, bd)
                    m += 1
    return worst_c, worst_d, nrest


@cache
def _compiled_loop():
    """The numba-compiled loop, or None without numba (then NumPy runs the sums)."""
    try:
        import numba
    except ImportError:
        return None
    # _loop with `_horner` bound to its compiled version (numba resolves globals at compile time)
    scope = {**globals(), "_horner": numba.njit(nogil=True, cache=True)(_horner)}
    loop = types.FunctionType(_loop.__code__, scope, "_loop")
    loop.__module__, loop.__qualname__ = _loop.__module__, _loop.__qualname__
    return numba.njit(nogil=True, cache=True)(loop)


def grid_series(rho, c, d, var, T, Tdot, tails, orders: tuple[SeriesOrders, SeriesOrders], *,
                diag: bool, zipped: bool, odd: bool, rho_bulk: float, tol: float,
                negligible: float):
    """(T₁₂, Ṫ₁₂, rest, worst, count) on the grid ρ (P₁, P₂, t₁, t₂) (module docstring).

    c, d: pairs (first set, second set) of coefficient arrays (K+1, P, t) of φ and φ'; var, T,
    Tdot: pairs of per-point arrays (P, t); tails: pairs of the normalised tails r̂ at top_all
    of φ and of φ' ((rc₁, rc₂), (rd₁, rd₂)); orders: the `SeriesOrders` of φ and of φ';
    odd: φ is odd (its antipodes are exact).
    rest: a uint8 grid, 1 where the pair is left to the caller; worst: the largest bounds
    (φ, φ') of the pairs beyond ρ_bulk summed here; count: the pairs in rest.
    """
    T_out, D_out = np.empty_like(rho), np.empty_like(rho)
    rest = np.zeros(rho.shape, dtype=np.uint8)
    oc, od = orders
    negl_c, negl_d = ((o.top_all + 1) * negligible**2 for o in orders)
    loop = _compiled_loop()
    flags = (oc.first, oc.step, oc.top, oc.top_all, od.first, od.step, od.top, od.top_all,
             diag, zipped, odd, rho_bulk, tol, negl_c, negl_d, T_out, D_out, rest)
    if loop is None:
        worst_c, worst_d, count = _grid_series_numpy(
            rho, c[0], c[1], d[0], d[1], var[0], var[1], T[0], T[1], Tdot[0], Tdot[1],
            tails[0][0], tails[0][1], tails[1][0], tails[1][1], *flags)
    else:
        tb = var[1].shape[-1]
        # every array C-contiguous (the second set's flattened over its points), so that the
        # loop is compiled once per dtype, not once per memory layout
        first, second = np.ascontiguousarray, lambda a: np.ascontiguousarray(a).reshape(
            *a.shape[:-2], -1)
        worst_c, worst_d, count = loop(
            first(rho), first(c[0][:oc.top_all + 1]), second(c[1][:oc.top_all + 1]),
            first(d[0][:od.top_all + 1]), second(d[1][:od.top_all + 1]), first(var[0]),
            second(var[1]), first(T[0]), first(Tdot[0]), first(tails[0][0]),
            second(tails[0][1]), first(tails[1][0]), second(tails[1][1]), tb, *flags)
    return T_out, D_out, rest, (worst_c, worst_d), int(count)


def _grid_series_numpy(rho, ca, cb, da, db, va, vb, Ta, Tb, Da, Db, rca, rcb, rda, rdb,
                       c_first, c_step, c_top, c_all, d_first, d_step, d_top, d_all,
                       diag, zipped, odd, rho_bulk, tol, negl_c, negl_d, T_out, D_out, rest):
    """The compiled loop's sums as NumPy broadcasts over the grid (same arguments)."""

    def left(a):  # (…, P, t) -> broadcastable to (P1, P2, t1, t2)
        return a[..., :, None, :, None]

    def right(a):
        if diag and zipped:
            return a[..., :, None, :, None]
        if diag:
            return a[..., :, None, None, :]
        if zipped:
            return a[..., None, :, :, None]
        return a[..., None, :, None, :]

    def horner(A, B, orders_desc, r):
        acc = np.zeros_like(r)
        prev = None
        for k in orders_desc:
            if prev is not None:
                acc *= r ** (prev - k)
            acc += left(A[k]) * right(B[k])
            prev = k
        return acc * r**prev if prev else acc

    m = np.abs(rho)
    bulk = m <= rho_bulk
    T_out[...] = np.where(bulk, horner(ca, cb, range(c_top, c_first - 1, -c_step), rho),
                          horner(ca, cb, range(c_all, -1, -1), rho))
    D_out[...] = np.where(bulk, horner(da, db, range(d_top, d_first - 1, -d_step), rho),
                          horner(da, db, range(d_all, -1, -1), rho))
    same = (rho == 1.0) & (left(va) == right(vb))
    anti = odd & (rho == -1.0) & (left(va) == right(vb)) & ~same
    T_out[...] = np.where(same, left(Ta), np.where(anti, -left(Ta), T_out))
    D_out[...] = np.where(same | anti, left(Da), D_out)
    bc = m ** (c_all + 1) * np.sqrt(left(rca) * right(rcb)) + negl_c
    bd = m ** (d_all + 1) * np.sqrt(left(rda) * right(rdb)) + negl_d
    far = ~bulk & ~same & ~anti
    bad = far & ((bc > tol) | (bd > tol))
    rest[...] = bad
    good = far & ~bad
    worst_c = float(bc[good].max()) if good.any() else 0.0
    worst_d = float(bd[good].max()) if good.any() else 0.0
    return worst_c, worst_d, int(bad.sum())


__all__ = ["SeriesOrders", "grid_series"]
