"""The infinite-width prediction for *discrete* full-batch gradient descent, from the kernels.

In the infinite-width limit the network is its linearisation with the deterministic NTK Θ, and
f₀ is a centred Gaussian process with the NNGP K. With loss scale s (1 for ``"sum"``, 1/N for
``"mean"``) and learning rate η, t steps of gradient descent give (see `training`)

    f_t(x) = f₀(x) − M_t(x) (f₀(X) − y),     M_t(x) = Θ(x, X) Θ⁻¹ [I − (I − η s Θ)ᵗ],

so f_t(x) is Gaussian with mean μ_t = M_t y and covariance

    C_t = K(x, x') − M_t K(X, x') − K(x, X) M_tᵀ + M_t K(X, X) M_tᵀ.

Θ⁻¹[I − (I − ηsΘ)ᵗ] is evaluated in Θ's eigenbasis as (1 − (1 − ηsλ)ᵗ)/λ, which stays finite
(→ tηs) as λ → 0. Gradient flow is the limit η → 0 with ηt fixed; the finite-width experiments
train with finite η, so comparing them with this discrete form leaves no discretisation error.
"""

from __future__ import annotations

import numpy as np

from ..errors import NTKSymError
from ..network import Network
from .training import Loss, loss_scale


def step_matrix(theta_test: np.ndarray, theta: np.ndarray, rate: float, steps: int) -> np.ndarray:
    """M_t = Θ(x, X) Θ⁻¹[I − (I − rate·Θ)ᵗ] for t = `steps`, rate = η s: shape (m, N)."""
    lam, vec = np.linalg.eigh(theta)
    if rate * lam.max() >= 2.0:
        raise NTKSymError(
            f"learning rate too large: η s λ_max = {rate * lam.max():.3g} ≥ 2, gradient descent "
            "diverges"
        )
    a = rate * np.clip(lam, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        small = -np.expm1(steps * np.log1p(-np.minimum(a, 0.5))) / lam
        large = (1.0 - (1.0 - a) ** steps) / lam
    factor = np.where(a < 1e-12, steps * rate, np.where(a < 0.5, small, large))
    return theta_test @ (vec * factor) @ vec.T


def gd_prediction(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    *,
    lr: float,
    steps: int,
    loss: Loss = "sum",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(μ_t, C_t, M_t) at the test inputs after `steps` GD steps, from `net.kernels`."""
    rate = lr * loss_scale(loss, x.shape[0])
    both = np.concatenate([x, x_test])
    nngp, ntk = net.kernels(both)
    n = x.shape[0]
    m = step_matrix(ntk[n:, :n], ntk[:n, :n], rate, steps)
    k_tx = nngp[n:, :n]
    cov = nngp[n:, n:] - m @ k_tx.T - k_tx @ m.T + m @ nngp[:n, :n] @ m.T
    return m @ y, cov, m
