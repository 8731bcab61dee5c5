"""Discrete gradient descent: against explicit iteration, its flow limit and its stability limit."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from dynamics_reference import block_moments, gd_iterate, max_rel_err, relu_kernels

from ntk_sym.dynamics import max_stable_lr, predict_from_kernels, predict_gd_from_kernels
from ntk_sym.errors import NTKSymError

N_TRAIN, N_TEST = 7, 3


@pytest.fixture(scope="module")
def relu() -> object:
    return relu_kernels(N_TRAIN, N_TEST, seed=4)


@pytest.fixture(scope="module")
def y() -> np.ndarray:
    return np.random.default_rng(9).normal(size=(N_TRAIN, 2))


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_gd_matches_explicit_iteration(relu, y, kernel):
    drive = relu.ntk if kernel == "ntk" else relu.nngp
    lr = 1.5 / np.linalg.eigvalsh(drive[:N_TRAIN, :N_TRAIN])[-1]  # ηλ_max = 1.5: oscillating
    steps = np.array([1, 2, 5, 40, 300])
    pred = predict_gd_from_kernels(*relu.blocks(kernel), y, steps, lr=lr, kernel=kernel)
    phi, c = gd_iterate(drive, N_TRAIN, y, lr, steps)
    mean_ref, cov_ref = block_moments(phi, c, relu.nngp, N_TRAIN)
    for i in range(steps.size):
        # Each of ≤ 300 iterations rounds at ~n·ε and the modes are contracting or oscillating
        # with |1 − ηλ| ≤ 1, so the iteration's error stays ≲ 300·n·ε ≈ 5e-13 (measured 6e-15).
        assert max_rel_err(pred.mean[i], mean_ref[i]) < 1e-11
        assert max_rel_err(pred.cov[i], cov_ref[i]) < 1e-11
    train_fit = c[:, :N_TRAIN] - y
    # Same accuracy argument, on the loss of the mean at the training points.
    np.testing.assert_allclose(
        pred.train_loss, 0.5 * np.sum(train_fit**2, axis=(1, 2)), rtol=1e-10, atol=1e-14
    )


def test_gd_tends_to_the_flow_at_first_order(relu, y):
    time = 2.0
    flow = predict_from_kernels(*relu.blocks(), y, [time], lr=1.0)
    errors = []
    for eta in (0.02, 0.01, 0.005):
        steps = round(time / eta)
        gd = predict_gd_from_kernels(*relu.blocks(), y, [steps], lr=eta)
        errors.append(max_rel_err(gd.mean[0], flow.mean[0]))
    # (1 − ηλ)^{t/η} = e^{−λt}(1 − ηλ²t/2 + O(η²)): the error halves with η. The O(η²) term
    # shifts the ratio by a relative O(η): measured 2.0025 and 2.0013; ±0.05 leaves margin but
    # rejects any other order (ratio 4 for second order, 1 for a non-converging scheme).
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(np.abs(ratios - 2) < 0.05), ratios
    assert errors[-1] < 0.05


def test_stability_limit_is_two_over_lambda_max(relu, y):
    th_tr = relu.ntk[:N_TRAIN, :N_TRAIN]
    with mp.workdps(50):
        lam_max = max(mp.eigsy(mp.matrix(th_tr.tolist()))[0])
    limit = max_stable_lr(th_tr)
    # eigh's λ_max is backward stable: relative error ≲ n·ε ≈ 1.6e-15.
    assert limit == pytest.approx(float(2 / lam_max), rel=1e-13)
    assert max_stable_lr(th_tr, loss="mean") == pytest.approx(N_TRAIN * limit, rel=1e-15)

    steps = [0, 500, 2000]
    below = predict_gd_from_kernels(*relu.blocks(), y, steps, lr=0.99 * limit)
    assert below.train_loss[-1] < below.train_loss[1] < below.train_loss[0]
    with pytest.warns(RuntimeWarning, match="stability limit"):
        above = predict_gd_from_kernels(*relu.blocks(), y, steps, lr=1.01 * limit)
    # |1 − ηλ_max| = 1.02: the top mode's loss grows by 1.02^{2k}, beyond any start value.
    assert above.train_loss[-1] > 1e6 * above.train_loss[0]


def test_gd_overflow_is_an_error_not_nan(relu, y):
    limit = max_stable_lr(relu.ntk[:N_TRAIN, :N_TRAIN])
    with pytest.warns(RuntimeWarning), pytest.raises(NTKSymError, match="diverged"):
        predict_gd_from_kernels(*relu.blocks(), y, [10**5], lr=3 * limit)


def test_gd_step_zero_is_the_prior(relu, y):
    pred = predict_gd_from_kernels(*relu.blocks(), y, [0], lr=0.01)
    # Exact: zero steps give gains exactly 0.
    assert np.array_equal(pred.mean[0], np.zeros((N_TEST, 2)))
    assert np.array_equal(pred.cov[0], relu.nngp[N_TRAIN:, N_TRAIN:])


def test_gd_mean_loss_is_sum_loss_at_rate_over_n(relu, y):
    steps = [0, 3, 50]
    lr = 0.5 * max_stable_lr(relu.ntk[:N_TRAIN, :N_TRAIN], loss="mean")
    mean_loss = predict_gd_from_kernels(*relu.blocks(), y, steps, lr=lr, loss="mean")
    sum_loss = predict_gd_from_kernels(*relu.blocks(), y, steps, lr=lr / N_TRAIN)
    # Same arithmetic up to one multiplication's rounding.
    np.testing.assert_allclose(mean_loss.mean, sum_loss.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mean_loss.train_loss, sum_loss.train_loss / N_TRAIN, rtol=1e-12)
