"""The float64 kernel engine: NNGP and NTK Gram matrices from compiled dual maps.

Each pair (x, x') is carried through the layers as (q11, q22, θ): the two variances come from the
one-dimensional diagonal recursion (exact for identical inputs), and the angle θ from

    1 − ρ' = g₋'/√(q11' q22'),   1 + ρ' = g₊'/√(q11' q22'),   θ' = 2·atan2(√g₋', √g₊'),

where, with A = q11', B = q22', s = σ_w², b = σ_b² and the activation's gaps g∓ = √(T11 T22) ∓ T12,

    g₋' = s g₋ + M,   g₊' = s g₊ + M + 2b,   M = s b (√T11 − √T22)² / (√(AB) + s√(T11 T22) + b).

Every term is non-negative, so nothing cancels: identical inputs keep θ = 0 exactly and the
ReLU family's Σ̇ ∝ (π − θ) stays accurate to rounding at every depth. (The naive route,
arccos(q12/√(q11 q22)), loses ~1e-8 at identical inputs.) Pairs that are identical at the first
layer (θ = 0 and equal variances) are identical at every layer and are copied from the diagonal.

The recursion (NTK parameterization):  Σ' = s T + b,  Θ' = Σ' + s Ṫ Θ.  Standard
parameterization: Θ' = T + 1 + s Ṫ Θ (see `ntk_sym.network`).
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from .angles import first_layer
from .compile import CompiledDual


@dataclass(frozen=True)
class LayerSpec:
    """What the engine needs of a network: compiled dual, depth, σ_w, σ_b, parameterization."""

    dual: CompiledDual
    depth: int
    w_std: float
    b_std: float
    standard: bool


def diagonal_kernels(spec: LayerSpec, q, xp: types.ModuleType = np):
    """(NNGP, NTK) of points with first-layer variances q, by the 1-D recursion."""
    s, b = spec.w_std**2, spec.b_std**2
    nngp = q
    ntk = (q - b) / s + 1.0 if spec.standard else q
    for _ in range(spec.depth):
        T, Tdot = spec.dual.diag(nngp)
        new = s * T + b
        ntk = (T + 1.0 if spec.standard else new) + s * Tdot * ntk
        nngp = new
    return nngp, ntk


def kernel_block(spec: LayerSpec, X1, X2, xp: types.ModuleType = np):
    """(NNGP, NTK) Gram blocks (n1, n2) of float64 inputs X1, X2 (X2 None means X1)."""
    s, b = spec.w_std**2, spec.b_std**2
    q1, q2, th = first_layer(X1, X2, spec.w_std, spec.b_std, xp)
    same = (th == 0) & (q1[:, None] == q2[None, :])
    a, c = q1[:, None], q2[None, :]
    nngp = xp.sqrt(a * c) * xp.cos(th)
    ntk = (nngp - b) / s + 1.0 if spec.standard else nngp
    for _ in range(spec.depth):
        T11, Tdot11 = spec.dual.diag(a)
        T22, Tdot22 = spec.dual.diag(c)
        T12, Tdot12, gap_minus, gap_plus = spec.dual.pair(a, c, th, T11, T22)
        nngp = s * T12 + b
        ntk = (T12 + 1.0 if spec.standard else nngp) + s * Tdot12 * ntk
        a_next, c_next = s * T11 + b, s * T22 + b
        root_T = xp.sqrt(T11 * T22)
        mismatch = (
            s * b * (xp.sqrt(T11) - xp.sqrt(T22)) ** 2
            / (xp.sqrt(a_next * c_next) + s * root_T + b)
            if b > 0
            else 0.0
        )
        th = 2.0 * xp.arctan2(
            xp.sqrt(xp.maximum(s * gap_minus + mismatch, 0.0)),
            xp.sqrt(xp.maximum(s * gap_plus + mismatch + 2.0 * b, 0.0)),
        )
        th = xp.where((a_next == 0) | (c_next == 0), np.pi / 2, th)
        a, c = a_next, c_next
    if xp.any(same):
        d_nngp1, d_ntk1 = diagonal_kernels(spec, q1, xp)
        rows, cols = xp.nonzero(same)
        nngp[rows, cols] = d_nngp1[rows]
        ntk[rows, cols] = d_ntk1[rows]
    return nngp, ntk
