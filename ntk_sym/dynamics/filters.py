"""Per-eigenmode spectral filters of gradient flow and gradient descent, in float64.

For an eigenvalue λ ≥ 0 of the training kernel and learning rate η (these are the float64 forms
of the SymPy expressions in `ntk_sym.symbolic.flow` and `ntk_sym.symbolic.discrete_flow`):

    flow:  error e^{−ηλt},    gain g = (1 − e^{−ηλt})/λ      (ηt at λ = 0)
    GD:    error (1 − ηλ)ᵏ,   gain g = (1 − (1 − ηλ)ᵏ)/λ     (ηk at λ = 0)

"error" is the fraction of the mode's initial training residual left; "gain" is the mode's
weight in f_t(x) = f₀(x) + Θ(x, X) V diag(g) Vᵀ (y − f₀). The gains are evaluated without
cancellation: 1 − e^{−u} as −expm1(−u) and 1 − (1 − a)ᵏ as −expm1(k·log1p(−a)), so small ηλt
(small eigenvalues, early times) keep full relative precision and tend to ηt as λ → 0.

At t = ∞ a mode with λ > 0 has gain 1/λ and error 0; a mode with λ = 0 has gain 0 (the
pseudo-inverse convention, see `spectrum`) and error 1. Arrays: eigenvalues (n,), times or steps
(T,); results (T, n).
"""

from __future__ import annotations

import numpy as np


def flow_error(eigenvalues: np.ndarray, eta_t: np.ndarray) -> np.ndarray:
    """e^{−λ·ηt} for every (time, mode); 1 for λ = 0 at every time, including t = ∞."""
    lam, s = _grid(eigenvalues, eta_t)
    positive = lam > 0
    with np.errstate(invalid="ignore"):  # 0·∞ for λ = 0 at t = ∞, replaced by 1 below
        decay = np.exp(-lam * s)
    return np.where(positive, decay, 1.0)


def flow_gain(eigenvalues: np.ndarray, eta_t: np.ndarray) -> np.ndarray:
    """(1 − e^{−λ·ηt})/λ for every (time, mode), ηt for λ = 0 (0 at t = ∞)."""
    lam, s = _grid(eigenvalues, eta_t)
    positive = lam > 0
    safe = np.where(positive, lam, 1.0)
    gain_zero = np.where(np.isinf(s), 0.0, s)
    return np.where(positive, -np.expm1(-safe * s) / safe, gain_zero)


def gd_error(eigenvalues: np.ndarray, eta: float, steps: np.ndarray) -> np.ndarray:
    """(1 − ηλ)ᵏ for every (step count, mode)."""
    lam, k = _grid(eigenvalues, steps.astype(np.float64))
    a = eta * lam
    small = a < 1
    # log1p keeps (1 − a)^k accurate for tiny a and huge k, where 1 − a itself rounds.
    smooth = np.exp(k * np.log1p(-np.where(small, a, 0.0)))
    with np.errstate(over="ignore"):
        return np.where(small, smooth, (1 - a) ** k)


def gd_gain(eigenvalues: np.ndarray, eta: float, steps: np.ndarray) -> np.ndarray:
    """(1 − (1 − ηλ)ᵏ)/λ for every (step count, mode), ηk for λ = 0."""
    lam, k = _grid(eigenvalues, steps.astype(np.float64))
    a = eta * lam
    positive = lam > 0
    small = a < 1
    safe = np.where(positive, lam, 1.0)
    smooth = -np.expm1(k * np.log1p(-np.where(small, a, 0.0))) / safe
    with np.errstate(over="ignore"):
        rough = (1 - (1 - a) ** k) / safe
    return np.where(positive, np.where(small, smooth, rough), eta * k)


def _grid(eigenvalues: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast eigenvalues (n,) against times (T,) to (1, n) and (T, 1)."""
    return np.asarray(eigenvalues)[None, :], np.asarray(times)[:, None]
