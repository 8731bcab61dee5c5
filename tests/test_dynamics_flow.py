"""Gradient-flow predictions against direct integration of the ODE and closed-form limits."""

from __future__ import annotations

import numpy as np
import pytest
from dynamics_reference import (
    block_moments,
    feature_kernels,
    max_rel_err,
    relu_kernels,
    rk4_flow,
)

import ntk_sym
from ntk_sym.dynamics import predict, predict_from_kernels

N_TRAIN, N_TEST = 7, 4


@pytest.fixture(scope="module")
def relu() -> object:
    return relu_kernels(N_TRAIN, N_TEST, seed=1)


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(N_TRAIN, 2))


@pytest.mark.parametrize("source", ["relu", "features"])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_closed_form_matches_rk4(relu, targets, kernel, source):
    ker = relu if source == "relu" else feature_kernels(np.random.default_rng(6), 7, 4, width=30)
    drive = ker.ntk if kernel == "ntk" else ker.nngp
    # lr puts ηλ_max at 1, so the times below span early, mid and nearly converged training.
    lr = 1.0 / np.linalg.eigvalsh(drive[:N_TRAIN, :N_TRAIN])[-1]
    times = np.array([0.05, 0.7, 3.0, 12.0])
    pred = predict_from_kernels(*ker.blocks(kernel), targets, times, lr=lr, kernel=kernel)
    # RK4 with ηλ_max·h = 2e-3: global error O(h⁴), measured ≈ 1e-13 relative (and 16× less
    # at h/2), so a 1e-11 tolerance is RK4's error with two orders of margin.
    phi, c = rk4_flow(drive, N_TRAIN, targets, lr, times, h_max=2e-3)
    mean_ref, cov_ref = block_moments(phi, c, ker.nngp, N_TRAIN)
    for i in range(times.size):
        assert max_rel_err(pred.mean[i], mean_ref[i]) < 1e-11
        assert max_rel_err(pred.cov[i], cov_ref[i]) < 1e-11


def test_time_zero_is_the_prior(relu, targets):
    pred = predict_from_kernels(*relu.blocks(), targets, times=[0.0])
    # Exact: at t = 0 every gain is exactly 0, so no rounding enters.
    assert np.array_equal(pred.mean[0], np.zeros((N_TEST, 2)))
    assert np.array_equal(pred.cov[0], relu.nngp[N_TRAIN:, N_TRAIN:])
    assert pred.train_loss[0] == pytest.approx(0.5 * np.sum(targets**2), rel=1e-14)


def test_infinite_time_is_kernel_regression(relu, targets):
    th_tr, th_te, k_tr, k_te, k_tt = relu.blocks()
    assert np.linalg.cond(th_tr) < 1e4 and np.linalg.cond(k_tr) < 1e4
    pred = predict_from_kernels(*relu.blocks(), targets, times=[np.inf])
    A = np.linalg.solve(th_tr, th_te.T).T  # Θ(x,X)Θ⁻¹
    cov_ref = k_tt + A @ k_tr @ A.T - A @ k_te.T - k_te @ A.T
    # Both sides are backward-stable solves of systems with κ < 1e4: error ≲ κ·ε·n ≈ 1e-11.
    np.testing.assert_allclose(pred.mean[0], A @ targets, rtol=1e-10, atol=1e-12)
    assert max_rel_err(pred.cov[0], cov_ref) < 1e-10
    assert pred.train_loss[0] == 0.0

    post = predict_from_kernels(*relu.blocks("nngp"), targets, times=[np.inf], kernel="nngp")
    B = np.linalg.solve(k_tr, k_te.T).T
    # The Bayesian GP posterior; same solve-accuracy argument as above.
    np.testing.assert_allclose(post.mean[0], B @ targets, rtol=1e-10, atol=1e-12)
    assert max_rel_err(post.cov[0], k_tt - B @ k_te.T) < 1e-10


def test_diag_reg_is_a_private_feature_per_training_point(relu, targets):
    delta = 0.3
    times = np.array([0.5, 4.0])
    lr = 0.2
    pred = predict_from_kernels(*relu.blocks(), targets, times, lr=lr, diag_reg=delta)
    # The model it claims to be: δ added to both joint kernels on the training block only.
    bump = np.diag(np.r_[np.full(N_TRAIN, delta), np.zeros(N_TEST)])
    h = 2e-3 / (lr * np.linalg.eigvalsh(relu.ntk[:N_TRAIN, :N_TRAIN] + delta * np.eye(N_TRAIN))[-1])
    phi, c = rk4_flow(relu.ntk + bump, N_TRAIN, targets, lr, times, h_max=h)
    mean_ref, cov_ref = block_moments(phi, c, relu.nngp + bump, N_TRAIN)
    # Same RK4 accuracy argument as test_closed_form_matches_rk4.
    assert max_rel_err(pred.mean, mean_ref) < 1e-11
    assert max_rel_err(pred.cov, cov_ref) < 1e-11

    _, _, k_tr, k_te, k_tt = relu.blocks()
    post = predict_from_kernels(
        *relu.blocks("nngp"), targets, [np.inf], diag_reg=delta, kernel="nngp"
    )
    B = np.linalg.solve(k_tr + delta * np.eye(N_TRAIN), k_te.T).T
    # GP regression with noise variance δ; κ(K + δI) is small, so solve-level accuracy.
    np.testing.assert_allclose(post.mean[0], B @ targets, rtol=1e-10, atol=1e-12)
    assert max_rel_err(post.cov[0], k_tt - B @ k_te.T) < 1e-10


def test_mean_loss_is_the_sum_loss_at_rate_over_n(relu, targets):
    times = [0.0, 0.3, 2.0, np.inf]
    mean_loss = predict_from_kernels(*relu.blocks(), targets, times, lr=1.4, loss="mean")
    sum_loss = predict_from_kernels(*relu.blocks(), targets, times, lr=1.4 / N_TRAIN)
    # Identical arithmetic up to the order of one multiplication: a few ulps.
    np.testing.assert_allclose(mean_loss.mean, sum_loss.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(mean_loss.cov, sum_loss.cov, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(mean_loss.train_loss, sum_loss.train_loss / N_TRAIN, rtol=1e-13)


def test_outputs_are_independent_columns(relu, targets):
    times = [0.1, 1.0, np.inf]
    both = predict_from_kernels(*relu.blocks(), targets, times)
    for col in range(2):
        one = predict_from_kernels(*relu.blocks(), targets[:, col], times)
        # Same operations on a sliced right-hand side: agreement to rounding.
        np.testing.assert_allclose(both.mean[..., col], one.mean, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(both.cov, one.cov, rtol=1e-13, atol=1e-15)


def test_train_loss_is_the_loss_of_the_mean_on_the_training_set(relu, targets):
    th_tr, _, k_tr, _, _ = relu.blocks()
    times = [0.0, 0.2, 1.0, 5.0]
    pred = predict_from_kernels(*relu.blocks(), targets, times, lr=0.3)
    at_train = predict_from_kernels(th_tr, th_tr, k_tr, k_tr, k_tr, targets, times, lr=0.3)
    direct = 0.5 * np.sum((at_train.mean - targets) ** 2, axis=(1, 2))
    # The direct route subtracts f̄ ≈ y, losing ~κ·ε relative to y² (κ < 1e4): 1e-9 is safe.
    np.testing.assert_allclose(pred.train_loss, direct, rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(pred.train_loss) < 0)


def test_many_times_equal_one_at_a_time(relu, targets):
    times = [3.0, 0.0, np.inf, 0.25]
    batch = predict_from_kernels(*relu.blocks(), targets, times)
    for i, time in enumerate(times):
        single = predict_from_kernels(*relu.blocks(), targets, time)
        # The same eigendecomposition and gains, batched: agreement to rounding.
        np.testing.assert_allclose(batch.mean[i], single.mean[0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batch.cov[i], single.cov[0], rtol=1e-13, atol=1e-15)
    assert list(batch.times) == times


def test_rank_deficient_kernel_at_infinity_is_the_pseudo_inverse():
    rng = np.random.default_rng(5)
    # width 4 < n = 7: Θ(X, X) has 3 zero eigenvalues (up to rounding), and Θ(x, X) ⟂ its kernel.
    ker = feature_kernels(rng, 7, 3, width=4)
    y = rng.normal(size=7)
    th_tr, th_te, *_ = ker.blocks()
    pred = predict_from_kernels(*ker.blocks(), y, [np.inf])
    # Moore–Penrose at rcond n·ε matches the rounding policy; κ on the range is ~1e2.
    expected = th_te @ np.linalg.pinv(th_tr, rcond=7 * np.finfo(float).eps, hermitian=True) @ y
    np.testing.assert_allclose(pred.mean[0], expected, rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(pred.cov))


def test_network_wrapper_uses_net_kernels():
    rng = np.random.default_rng(3)
    X, Xt = rng.normal(size=(6, 2)), rng.normal(size=(3, 2))
    y = np.cos(X[:, 0])
    net = ntk_sym.mlp("erf", depth=2, w_std=1.3, b_std=0.2)
    pred = predict(net, X, y, Xt, times=(0.0, 2.0, np.inf), lr=0.5, loss="mean")
    nngp_tr, ntk_tr = net.kernels(X)
    nngp_te, ntk_te = net.kernels(Xt, X)
    ref = predict_from_kernels(
        ntk_tr, ntk_te, nngp_tr, nngp_te, net.nngp(Xt), y, (0.0, 2.0, np.inf), 0.5, loss="mean"
    )
    # The wrapper only gathers kernel blocks: identical results.
    np.testing.assert_array_equal(pred.mean, ref.mean)
    np.testing.assert_array_equal(pred.cov, ref.cov)
    assert pred.mean.shape == (3, 3) and pred.cov.shape == (3, 3, 3)
    # At t = ∞ the NTK predictor interpolates: test at the training inputs themselves.
    fit = predict(net, X, y, X, times=[np.inf])
    assert np.linalg.cond(ntk_tr) < 1e6
    # Interpolation error of a solve with κ < 1e6: ≲ κ·ε·|y| ≈ 1e-10.
    np.testing.assert_allclose(fit.mean[0], y, rtol=0, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_rk4_sweep_over_random_kernels_and_options(seed):
    """Random feature kernels of varied rank, with diag_reg, mean loss and 1–3 outputs."""
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(3, 12)), int(rng.integers(1, 5))
    ker = feature_kernels(rng, n, m, width=int(rng.integers(2, 40)))
    y = rng.normal(size=(n, int(rng.integers(1, 4))))
    delta = float(rng.choice([0.0, 1e-3, 0.5]))
    loss = str(rng.choice(["sum", "mean"]))
    bump = np.diag(np.r_[np.full(n, delta), np.zeros(m)])
    lam_max = np.linalg.eigvalsh(ker.ntk[:n, :n] + delta * np.eye(n))[-1]
    rate_scale = 1.0 if loss == "sum" else 1.0 / n
    lr = 1.0 / (lam_max * rate_scale)  # ηλ_max = 1 per unit time, as in the fast test
    times = np.array([0.1, 1.0, 6.0])
    pred = predict_from_kernels(*ker.blocks(), y, times, lr=lr, diag_reg=delta, loss=loss)
    phi, c = rk4_flow(ker.ntk + bump, n, y, lr * rate_scale, times, h_max=2e-3)
    mean_ref, cov_ref = block_moments(phi, c, ker.nngp + bump, n)
    # RK4 error as in test_closed_form_matches_rk4 (≈1e-13 at ηλ_max·h = 2e-3).
    assert max_rel_err(pred.mean, mean_ref) < 1e-11
    assert max_rel_err(pred.cov, cov_ref) < 1e-11
