"""The plain NumPy NTK recursion a user writes first: whole matrices, layer by layer.

Same conventions as ntk_sym (NTK parameterization, σ_w, σ_b, depth L hidden layers):

    Σ¹ = σ_w² X Xᵀ/d + σ_b²,   Θ¹ = Σ¹,
    Σˡ⁺¹ = σ_w² T(Σˡ) + σ_b²,   Θˡ⁺¹ = Σˡ⁺¹ + σ_w² Ṫ(Σˡ) Θˡ,

with, for ReLU (arc-cosine kernel, θ = arccos of the clipped normalised Σ),
T = √(Σ₁₁Σ₂₂) (sin θ + (π − θ) cos θ)/(2π), Ṫ = (π − θ)/(2π), and for erf
T = (2/π) arcsin(2Σ₁₂/√((1 + 2Σ₁₁)(1 + 2Σ₂₂))), Ṫ = (4/π)/√((1 + 2Σ₁₁)(1 + 2Σ₂₂) − 4Σ₁₂²).
It is the benchmark's baseline, not part of the package.
"""

from __future__ import annotations

import numpy as np


def relu_layer(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.sqrt(np.diag(S))
    outer = np.outer(norms, norms)
    theta = np.arccos(np.clip(S / outer, -1.0, 1.0))
    T = outer * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    return T, (np.pi - theta) / (2 * np.pi)


def erf_layer(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = 1.0 + 2.0 * np.diag(S)
    outer = np.outer(d, d)
    T = (2 / np.pi) * np.arcsin(np.clip(2.0 * S / np.sqrt(outer), -1.0, 1.0))
    return T, (4 / np.pi) / np.sqrt(outer - 4.0 * S * S)


LAYERS = {"relu": relu_layer, "erf": erf_layer}


def ntk(X: np.ndarray, activation: str, depth: int, w_std: float, b_std: float):
    """(NNGP, NTK) of X with itself by the whole-matrix recursion."""
    layer = LAYERS[activation]
    S = w_std**2 * (X @ X.T) / X.shape[1] + b_std**2
    Theta = S
    for _ in range(depth):
        T, Tdot = layer(S)
        S = w_std**2 * T + b_std**2
        Theta = S + w_std**2 * Tdot * Theta
    return S, Theta
