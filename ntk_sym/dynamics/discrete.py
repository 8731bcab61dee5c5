"""Discrete gradient descent on the linearised infinite-width network, and its stable step size.

k steps of size η on L = ½‖f(X) − y‖² give f_k = y + (I − ηΘ)ᵏ (f₀ − y) on the training set and

    f_k(x) = f₀(x) + Θ(x, X) Θ⁻¹ (I − (I − ηΘ)ᵏ) (y − f₀(X))

at test points (`ntk_sym.symbolic.discrete_flow`), so the predictions are Gaussian exactly as for
the flow (`ensemble`) with the gradient-descent gain per mode. GD converges iff η < 2/λ_max(Θ)
(2n/λ_max for loss="mean"); beyond it the predictions grow geometrically.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from ..errors import InputError, NTKSymError
from . import checks
from .ensemble import Prediction, moments, setup
from .filters import gd_error, gd_gain
from .spectrum import psd_spectrum


def max_stable_lr(kernel_train: object, diag_reg: float = 0.0, loss: str = "sum") -> float:
    """The learning-rate limit 2/λ_max of gradient descent on `kernel_train` (+ diag_reg·I).

    GD converges for lr < the returned value; for loss="mean" the limit is 2n/λ_max.
    """
    checks.choice("loss", loss, checks.LOSSES)
    shape = np.shape(kernel_train)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise InputError(f"kernel_train must be a square (n, n) matrix, got shape {shape}")
    kernel = checks.as_symmetric("kernel_train", kernel_train, shape[0])
    spectrum = psd_spectrum(kernel, checks.non_negative("diag_reg", diag_reg), "kernel_train")
    scale = 1.0 if loss == "sum" else float(shape[0])
    return 2.0 * scale / spectrum.lambda_max if spectrum.lambda_max > 0 else np.inf


def predict_gd_from_kernels(
    ntk_train: object | None,
    ntk_test_train: object | None,
    nngp_train: object,
    nngp_test_train: object,
    nngp_test: object,
    y_train: object,
    steps: int | Iterable[int] = (0, 1, 10, 100),
    lr: float = 1.0,
    diag_reg: float = 0.0,
    loss: str = "sum",
    kernel: str = "ntk",
) -> Prediction:
    """Mean and covariance of the infinite network after each number of GD steps in `steps`.

    Arguments as `flow.predict_from_kernels`, with `steps` (non-negative integers) in place of
    times; the result's `.times` holds the step counts. Warns (RuntimeWarning) when lr is at or
    beyond the stability limit, and raises `NTKSymError` if the divergence overflows float64.
    """
    problem = setup(
        ntk_train,
        ntk_test_train,
        nngp_train,
        nngp_test_train,
        nngp_test,
        y_train,
        lr,
        diag_reg,
        loss,
        kernel,
    )
    steps = checks.as_steps(steps)
    lam = problem.spectrum.eigenvalues
    if problem.rate * problem.spectrum.lambda_max >= 2:
        limit = 2 * lr / (problem.rate * problem.spectrum.lambda_max)
        warnings.warn(
            f"lr={lr} is at or beyond the gradient-descent stability limit {limit:.6g} "
            "(2/λ_max): the predictions diverge",
            RuntimeWarning,
            stacklevel=2,
        )
    mean, cov, train_loss = moments(
        problem, gd_gain(lam, problem.rate, steps), gd_error(lam, problem.rate, steps)
    )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise NTKSymError(
            f"gradient descent with lr={lr} diverged beyond float64 range within "
            f"{int(steps.max())} steps (stability limit 2/λ_max)"
        )
    return Prediction(
        steps.astype(np.float64), mean, cov, train_loss, kernel, float(lr), loss, float(diag_reg)
    )
