"""The discrete-GD infinite-width predictor against explicit iteration and kernel regression."""

import numpy as np
import pytest

import ntk_sym
from ntk_sym.errors import NTKSymError
from ntk_sym.finite.limit import gd_prediction, step_matrix

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3))
Y = RNG.standard_normal(5)
XT = RNG.standard_normal((3, 3))
NET = ntk_sym.mlp("erf", depth=2, w_std=1.4, b_std=0.2)


def iterate(net, lr, steps, loss):
    """f_t = A_t f₀ + b_t on (train, test) by applying the GD map step by step."""
    nngp, ntk = net.kernels(np.concatenate([X, XT]))
    n = len(X)
    scale = 1.0 if loss == "sum" else 1.0 / n
    a = np.eye(n + 3)  # f_t = a f₀ + b, stacked (train, test)
    b = np.zeros(n + 3)
    for _ in range(steps):
        residual_a, residual_b = a[:n], b[:n] - Y
        a = a - lr * scale * ntk[:, :n] @ residual_a
        b = b - lr * scale * ntk[:, :n] @ residual_b
    return b[n:], a[n:] @ nngp @ a[n:].T


@pytest.mark.parametrize("loss,lr,steps", [("sum", 0.05, 37), ("mean", 0.9, 120)])
def test_prediction_equals_the_iterated_gradient_descent_map(loss, lr, steps):
    mean, cov, _ = gd_prediction(NET, X, Y, XT, lr=lr, steps=steps, loss=loss)
    ref_mean, ref_cov = iterate(NET, lr, steps, loss)
    # Eigen-decomposition against repeated products of the same matrices: rounding only.
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-11)


def test_long_training_reaches_ntk_kernel_regression():
    _, ntk = NET.kernels(np.concatenate([X, XT]))
    regression = ntk[5:, :5] @ np.linalg.solve(ntk[:5, :5], Y)
    lam = np.linalg.eigvalsh(ntk[:5, :5])
    steps = int(np.ceil(40 / (lam[0] / lam[-1])))  # (1 − λmin/λmax)^steps < e⁻⁴⁰
    mean, _, _ = gd_prediction(NET, X, Y, XT, lr=1 / lam[-1], steps=steps)
    # Remaining decay e⁻⁴⁰ ≈ 4e-18 times a condition number ~1e3: rounding dominates.
    np.testing.assert_allclose(mean, regression, rtol=1e-8, atol=1e-10)


def test_vanishing_eigenvalues_stay_finite_and_divergence_is_reported():
    theta = np.diag([1.0, 0.0])
    m = step_matrix(theta, theta, rate=0.1, steps=10)
    # Along λ = 0 the factor (1 − (1 − ηλ)ᵗ)/λ tends to tη, times Θ's zero row: exactly 0.
    assert np.all(np.isfinite(m)) and m[1, 1] == 0.0
    with pytest.raises(NTKSymError, match="diverges"):
        step_matrix(theta, theta, rate=2.5, steps=10)
