"""The Mehler series T = Σ_k c_k(q₁) c_k(q₂) ρ^k on tiles of pairs, with its Cauchy–Schwarz bound.

Per pair the series costs O(K) arithmetic and no evaluation of φ: the coefficients come from
`hermite.Coefficients`, once per point and layer. With ĉ = c/√T (T = 𝔼[φ²]) and the normalised
tails r̂_K = r_K/T the truncation error relative to √(T₁₁ T₂₂) is at most

    β_K = |ρ|^{K+1} √(r̂_K(q₁) r̂_K(q₂)).

On a tile the engine gets one K for all its bulk pairs (|ρ| ≤ `RHO_BULK`): the smallest K with
(K+1) log ρ_max + ½ (max_i log r̂_K(q_i) + max_j log r̂_K(q_j)) ≤ log tol, a bound for every
pair of the tile at once. The series is summed by Horner's rule in ρ, skipping orders whose
coefficients are negligible on both point sets (|ĉ_k| ≤ `NEGLIGIBLE`: the odd or even half of
an odd or even φ); the skipped terms add at most K·NEGLIGIBLE² to the bound. Pairs beyond
`RHO_BULK` are few; each gets all K terms (`gathered`), and those whose β_K still exceeds the
tolerance (near ρ = ±1 with slowly decaying coefficients: large variances, kinks) are left to
the caller's two-dimensional rule (`pair_rule`).

Gaps. With ĉ as above and G_k = 1 − ρ^k = (1 − ρ)(1 + ρ + … + ρ^{k−1}),

    g₋ = √(T₁₁T₂₂) − T₁₂ = √(T₁₁T₂₂) [½ Σ_k (ĉ_k(q₁) − ĉ_k(q₂))² + Σ_k ĉ_k(q₁) ĉ_k(q₂) G_k] + E,

exactly, where E collects orders beyond K (estimated in `series_gaps`); g₊ = √(T₁₁T₂₂) + T₁₂ is
the same with ĉ_k(q₂) → −(−1)^k ĉ_k(q₂) and ρ → −ρ. Identical points give g₋ = 0 exactly,
and near them both sums are small without cancellation: 1 − ρ comes from sin²θ/(1 + cos θ).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import dger

from .hermite import HermiteData

#: Pairs with |ρ| above this are summed one by one with all terms (they are few).
RHO_BULK = 0.9
#: Normalised coefficients below this on every point are skipped (parity zeros, decayed tails).
NEGLIGIBLE = 1e-13


def active_orders(H1: HermiteData, H2: HermiteData, which: str, xp=np) -> list[int]:
    """Orders k whose normalised coefficient exceeds NEGLIGIBLE at some point of either set."""
    terms = min(H1.terms, H2.terms)
    best = None
    for H in (H1, H2):
        c, T = (H.c, H.T) if which == "c" else (H.d, H.Tdot)
        size = xp.abs(c[:terms]) / xp.sqrt(xp.maximum(T, 1e-300))
        size = size.reshape(size.shape[0], -1).max(axis=1)  # over points (and positions)
        best = size if best is None else xp.maximum(best, size)
    return [int(k) for k in xp.nonzero(best > NEGLIGIBLE)[0]]


def tile_order(r1, T1, r2, T2, rho_max: float, tol: float, xp=np) -> tuple[int, float]:
    """(K, β): the smallest K whose tile-wide bound β (relative to √(T₁₁T₂₂)) is ≤ tol, or the
    last K and its bound when none is."""

    def worst(r, T):
        ratio = r / xp.where(T > 0, T, 1.0)
        worst = ratio.reshape(ratio.shape[0], -1).max(axis=1)  # over points (and positions)
        return xp.log(xp.maximum(worst, 1e-300))

    terms = min(r1.shape[0], r2.shape[0])
    logs = 0.5 * (worst(r1[:terms], T1) + worst(r2[:terms], T2))
    logs = logs + (xp.arange(terms) + 1.0) * math.log(max(rho_max, 1e-300))
    good = xp.nonzero(logs <= math.log(tol))[0]
    K = int(good[0]) if good.size else terms - 1
    return K, math.exp(float(logs[K])) + (K + 1) * NEGLIGIBLE**2


def horner(A, B, orders: list[int], rho, xp=np):
    """Σ_{k ∈ orders} A_k ⊗ B_k ρ^k on a tile: A (K+1, n1), B (K+1, n2), ρ (n1, n2)."""
    if not orders:
        return xp.zeros_like(rho)
    powers: dict[int, object] = {1: rho}

    def power(p: int):
        if p not in powers:
            powers[p] = rho**p
        return powers[p]

    top = orders[-1]
    acc = xp.multiply(A[top][:, None], B[top][None, :])  # float64, C-contiguous
    for high, low in zip(orders[::-1], orders[-2::-1], strict=False):
        acc *= power(high - low)
        # acc += A_low ⊗ B_low as one BLAS rank-1 update on the Fortran view acc.T: one pass
        # over the tile instead of NumPy's two (outer product, then add), ~3x faster
        acc = dger(1.0, B[low], A[low], a=acc.T, overwrite_a=True).T
    if orders[0]:
        acc *= power(orders[0])
    return acc


def gathered(A, B, orders: list[int], rho, xp=np):
    """Σ_{k ∈ orders} A_k B_k ρ^k on 1-D arrays of pairs (A, B: (K+1, m), ρ: (m,))."""
    acc = xp.zeros_like(rho)
    previous = None
    for k in orders[::-1]:
        if previous is not None:
            acc *= rho ** (previous - k)
        acc += A[k] * B[k]
        previous = k
    return acc * rho**previous if previous else acc


def pair_bound(r1, T1, r2, T2, rho, xp=np):
    """β_K per pair (1-D arrays), with all the terms the data hold."""
    K = min(r1.shape[0], r2.shape[0]) - 1
    ratio1 = r1[K] / xp.where(T1 > 0, T1, 1.0)
    ratio2 = r2[K] / xp.where(T2 > 0, T2, 1.0)
    return xp.abs(rho) ** (K + 1) * xp.sqrt(ratio1 * ratio2) + (K + 1) * NEGLIGIBLE**2


def series_gaps(C1, R1, T1, C2, R2, T2, cos, sin, orders: list[int], xp=np):
    """(g₋, g₊) of the module docstring on 1-D arrays of pairs; C: (K+1, m) coefficients,
    R: their tails. E is estimated as ½(r̂₁ + r̂₂) − max(ρ, 0)^{K+1} √(r̂₁r̂₂) (its value when
    the tail coefficients agree, as near ρ = 1 with q₁ ≈ q₂), within the series bound of it."""
    root1 = xp.sqrt(xp.where(T1 > 0, T1, 1.0))
    root2 = xp.sqrt(xp.where(T2 > 0, T2, 1.0))
    n1, n2 = C1 / root1, C2 / root2
    K = min(C1.shape[0], C2.shape[0]) - 1
    tail1, tail2 = R1[K] / root1**2, R2[K] / root2**2
    s2 = sin * sin
    # 1 ∓ ρ without cancellation on the side where it is small
    one_minus = xp.where(cos > 0, s2 / (1 + xp.abs(cos)), 1 - cos)
    one_plus = xp.where(cos < 0, s2 / (1 + xp.abs(cos)), 1 + cos)
    out = []
    for sign, gap1 in ((1.0, one_minus), (-1.0, one_plus)):
        rho = sign * cos
        G = xp.zeros_like(cos)  # G_k = 1 − ρ^k
        square, cross = xp.zeros_like(cos), xp.zeros_like(cos)
        k_done = 0
        for k in orders:
            while k_done < k:
                G = gap1 + rho * G
                k_done += 1
            b = n2[k] if sign > 0 else -n2[k] * (-1.0) ** k
            square += (n1[k] - b) ** 2
            cross += n1[k] * b * G
        rest = 0.5 * (tail1 + tail2) - xp.maximum(rho, 0.0) ** (K + 1) * xp.sqrt(tail1 * tail2)
        out.append(xp.sqrt(T1 * T2) * (0.5 * square + cross + rest))
    return out[0], out[1]


__all__ = [
    "NEGLIGIBLE",
    "RHO_BULK",
    "active_orders",
    "gathered",
    "horner",
    "pair_bound",
    "series_gaps",
    "tile_order",
]
