"""First-layer variances and angles, computed so that exact duplicates come out exact.

Σ⁽¹⁾(x, x') = σ_w² x·x'/d + σ_b² is the inner product of the augmented vectors
a(x) = (σ_w x/√d, σ_b). The engine carries each pair as (q11, q22, θ) with θ the angle between
a(x) and a(x'). Far from 0 and π, θ = arccos of the normalised Gram entry is accurate; near them
arccos amplifies the Gram entry's rounding (an error ε in cos θ becomes ~ε/θ), so those pairs are
recomputed as θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖) from the unit vectors themselves. Identical inputs
then get θ = 0 exactly, antipodal ones θ = π, and points 1e-9 apart their angle to ~1e-16.

Convention: a zero augmented vector (x = 0 with σ_b = 0) has no direction; its angle to every
point is set to π/2, which gives q12 = 0, the exact covariance (and 0 between two zero vectors).
"""

from __future__ import annotations

import types

import numpy as np

#: Pairs with |cos θ| above this are recomputed from vector differences.
REFINE_ABOVE = 1.0 - 1e-3


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


def first_layer(X1, X2, w_std: float, b_std: float, xp: types.ModuleType = np):
    """(q1, q2, θ): variances Σ⁽¹⁾(x, x) of both sets and the angle matrix θ (n1, n2)."""
    U1, q1 = unit_rows(augmented(X1, w_std, b_std, xp), xp)
    if X2 is None:
        U2, q2 = U1, q1
    else:
        U2, q2 = unit_rows(augmented(X2, w_std, b_std, xp), xp)
    cos = xp.clip(U1 @ U2.T, -1.0, 1.0)
    theta = xp.arccos(cos)
    rows, cols = xp.nonzero(xp.abs(cos) > REFINE_ABOVE)
    if rows.size:
        diff = U1[rows] - U2[cols]
        summ = U1[rows] + U2[cols]
        theta[rows, cols] = 2.0 * xp.arctan2(
            xp.sqrt(xp.einsum("ij,ij->i", diff, diff)), xp.sqrt(xp.einsum("ij,ij->i", summ, summ))
        )
    zero1, zero2 = (q1 == 0)[:, None], (q2 == 0)[None, :]
    theta = xp.where(zero1 | zero2, np.pi / 2, theta)
    theta = xp.where(zero1 & zero2, 0.0, theta)  # two zero vectors are identical inputs
    return q1, q2, theta
