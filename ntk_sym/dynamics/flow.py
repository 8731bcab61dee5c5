"""Gradient-flow predictions of the infinite-width network at any list of times.

With learning rate η, f₀ ~ GP(0, K) and the linearised flow df/dt = −ηΘ(f − y) (Lee et al.
2019), the outputs at time t are Gaussian with

    μ_t(x)     = Θ(x, X) Θ⁻¹ (I − e^{−ηΘt}) y,
    Σ_t(x, x') = K(x, x') + A_t K(X, X) A_tᵀ − A_t K(X, x') − K(x, X) A_tᵀ,
    A_t        = Θ(x, X) Θ⁻¹ (I − e^{−ηΘt}),

evaluated through one eigendecomposition of Θ(X, X) (+ δI) for all times (`ensemble`,
`filters`). t = 0 gives μ = 0, Σ = K(x, x'); t = ∞ gives kernel regression Θ(x, X)Θ⁻¹y. With
kernel="nngp" Θ is replaced by K (training the readout layer only): at t = ∞ this is the exact
Bayesian GP posterior, with noise variance diag_reg.

Loss normalisation: loss="sum" is ½‖f(X) − y‖² (the default); loss="mean" is ½‖f(X) − y‖²/n
(Jacot et al.'s average over the n training points), which is the same flow with η → η/n.
neural-tangents' `predict.gradient_descent_mse(_ensemble)` averages over all n·k target entries;
its learning rate η_nt is reproduced here by loss="sum", lr=η_nt/(n·k) (or loss="mean",
lr=η_nt/k). Its `diag_reg` is by default relative to the mean trace; ours is absolute.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import checks
from .ensemble import Prediction, moments, setup
from .filters import flow_error, flow_gain

DEFAULT_TIMES = (0.0, 1.0, 10.0, np.inf)


def predict_from_kernels(
    ntk_train: object | None,
    ntk_test_train: object | None,
    nngp_train: object,
    nngp_test_train: object,
    nngp_test: object,
    y_train: object,
    times: float | Iterable[float] = DEFAULT_TIMES,
    lr: float = 1.0,
    diag_reg: float = 0.0,
    loss: str = "sum",
    kernel: str = "ntk",
) -> Prediction:
    """Mean and covariance of the gradient-flow-trained infinite network at `times`.

    Kernels: ntk_train Θ(X, X) (n, n), ntk_test_train Θ(x, X) (m, n), nngp_train K(X, X),
    nngp_test_train K(x, X), nngp_test K(x, x) (m, m); y_train (n,) or (n, k); times in [0, ∞]
    (np.inf allowed). kernel="nngp" trains along K (the NTK arguments may be None). See the
    module docstring for the formulas, `loss`, and `ensemble` for `diag_reg`.
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
    times = checks.as_times(times)
    eta_t = problem.rate * times  # η > 0, so t = ∞ gives ηt = ∞ (never 0·∞)
    lam = problem.spectrum.eigenvalues
    mean, cov, train_loss = moments(problem, flow_gain(lam, eta_t), flow_error(lam, eta_t))
    return Prediction(times, mean, cov, train_loss, kernel, float(lr), loss, float(diag_reg))
