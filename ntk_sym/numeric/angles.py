"""First-layer variances and angles, computed so that exact duplicates come out exact.

Σ⁽¹⁾(x, x') = σ_w² x·x'/d + σ_b² is the inner product of the augmented vectors
a(x) = (σ_w x/√d, σ_b). The engine carries each pair as (q11, q22, θ) with θ the angle between
a(x) and a(x'). Far from 0 and π, θ = arccos of the normalised Gram entry is accurate; near them
arccos amplifies the Gram entry's rounding (an error ε in cos θ becomes ~ε/θ), so those pairs are
recomputed as θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖) from the unit vectors themselves. Identical inputs
then get θ = 0 exactly, antipodal ones θ = π, and points 1e-9 apart their angle to ~1e-16.
The engine needs cos θ and sin θ (and θ itself only for duals such as ReLU's π − θ), and gets
them without calling sin or cos (`first_layer`). The unit vectors are per-point quantities,
computed once (`unit_rows`); `first_layer` works on one tile of pairs at a time.

Convention: a zero augmented vector (x = 0 with σ_b = 0) has no direction; its angle to every
point is set to π/2, which gives q12 = 0, the exact covariance (and 0 between two zero vectors).
"""

from __future__ import annotations

import types

import numpy as np

from .state import Angle

#: Pairs with |cos θ| above this are recomputed from vector differences.
REFINE_ABOVE = 1.0 - 1e-3
#: The same test on sin²θ = 1 − cos²θ: one reduction per tile finds whether any pair needs it.
_REFINE_SIN2 = 1.0 - REFINE_ABOVE**2


def augmented(X, w_std: float, b_std: float, xp: types.ModuleType = np):
    """Rows a(x) = (σ_w x/√d, σ_b), so that a(x)·a(x') = Σ⁽¹⁾(x, x')."""
    n, d = X.shape
    return xp.concatenate([X * (w_std / np.sqrt(d)), xp.full((n, 1), b_std)], axis=1)


def unit_rows(A, xp: types.ModuleType = np):
    """(rows scaled to unit length, squared norms); zero rows stay zero."""
    sq = xp.einsum("ij,ij->i", A, A)
    norm = xp.sqrt(sq)
    safe = xp.where(norm > 0, norm, 1.0)
    return A / safe[:, None], sq


def first_layer(U1, q1, U2, q2, needs_theta: bool = True, xp: types.ModuleType = np):
    """The first layer's angles between unit rows U1 (n1, d+1) and U2 (n2, d+1).

    Returns (`Angle`, same) with θ None unless `needs_theta`, and `same` the (rows, cols) of
    pairs that are the same input (identical augmented vectors), whose kernels equal the
    diagonal at every layer. cos θ is the Gram entry and sin θ = √(1 − cos²θ) away from 0 and π;
    near them (|cos θ| > `REFINE_ABOVE`, where the Gram entry's rounding would dominate) both
    come from d = ‖â − b̂‖ and t = ‖â + b̂‖ (d² + t² = 4 for unit vectors):
    θ = 2·atan2(d, t), cos θ = (t² − d²)/(t² + d²), sin θ = 2dt/(t² + d²).
    """
    cos = U1 @ U2.T
    sin = xp.multiply(cos, cos)
    xp.subtract(1.0, sin, out=sin)
    near = bool(sin.min() < _REFINE_SIN2)
    if near:
        rows, cols = xp.nonzero(sin < _REFINE_SIN2)
    else:
        rows, cols = xp.zeros(0, int), xp.zeros(0, int)
    xp.sqrt(sin, out=sin)  # NaN where rounding put |cos θ| above 1: those pairs are refined
    theta = xp.arccos(cos) if needs_theta else None
    same_rows, same_cols = rows, cols
    if rows.size:
        diff, summ = U1[rows] - U2[cols], U1[rows] + U2[cols]
        d2, t2 = xp.einsum("ij,ij->i", diff, diff), xp.einsum("ij,ij->i", summ, summ)
        d, t = xp.sqrt(d2), xp.sqrt(t2)
        cos[rows, cols] = (t2 - d2) / (t2 + d2)
        sin[rows, cols] = 2.0 * d * t / (t2 + d2)
        if needs_theta:
            theta[rows, cols] = 2.0 * xp.arctan2(d, t)
        identical = (d2 == 0) & (q1[rows] == q2[cols])
        same_rows, same_cols = rows[identical], cols[identical]
    zero1, zero2 = q1 == 0, q2 == 0
    if xp.any(zero1) or xp.any(zero2):
        # no direction: angle π/2 to every point, except 0 between two zero vectors
        either, both = zero1[:, None] | zero2[None, :], zero1[:, None] & zero2[None, :]
        cos = xp.where(either, xp.where(both, 1.0, 0.0), cos)
        sin = xp.where(either, xp.where(both, 0.0, 1.0), sin)
        if needs_theta:
            theta = xp.where(either, xp.where(both, 0.0, np.pi / 2), theta)
        zr, zc = xp.nonzero(both)
        same_rows, same_cols = xp.concatenate([same_rows, zr]), xp.concatenate([same_cols, zc])
    return Angle(theta, cos, sin), (same_rows, same_cols)
