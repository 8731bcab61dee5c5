"""Mean and covariance against an ensemble of initialisations evolved by the linear ODE.

f₀ is drawn from GP(0, K) jointly on training and test points; each draw is evolved by the
flow map (Φ_t, c_t) of dz/dt = −ηM(z_X − y) integrated by RK4 (`dynamics_reference`), and the
sample mean and covariance of the test outputs are compared with the predictor.

Statistical tolerance: with M draws the sample mean of a Gaussian with variance Σᵢᵢ has standard
error √(Σᵢᵢ/M), and a sample covariance entry has standard error √((ΣᵢᵢΣⱼⱼ + Σᵢⱼ²)/M). Every
entry is required within 5 standard errors: for a correct formula the chance that one of the
~40 checked entries exceeds 5σ is ~40·6e-7 ≈ 2e-5 (and the seed is fixed), while an error in
the formula of more than ~5/√M ≈ 1% of the scale shows up.
"""

from __future__ import annotations

import numpy as np
from dynamics_reference import relu_kernels, rk4_flow

from ntk_sym.dynamics import predict_from_kernels

N_TRAIN, N_TEST, DRAWS = 6, 3, 200_000
Z_MAX = 5.0


def _ensemble_moments(kernel: str) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    ker = relu_kernels(N_TRAIN, N_TEST, seed=7)
    rng = np.random.default_rng(8)
    y = rng.normal(size=N_TRAIN)
    drive = ker.ntk if kernel == "ntk" else ker.nngp
    lr = 1.0 / np.linalg.eigvalsh(drive[:N_TRAIN, :N_TRAIN])[-1]
    times = np.array([0.3, 2.0, 15.0])
    # ηλ_max·h = 1e-3: RK4 error ~1e-13, negligible against the 1/√M ≈ 2e-3 sampling error.
    phi, c = rk4_flow(drive, N_TRAIN, y, lr, times, h_max=1e-3)

    w, V = np.linalg.eigh(ker.nngp)
    root = V * np.sqrt(np.clip(w, 0, None))  # K_joint = root rootᵀ (PSD up to rounding)
    f0 = root @ rng.standard_normal((w.size, DRAWS))
    samples = phi[:, N_TRAIN:, :] @ f0 + c[:, N_TRAIN:, None]  # (T, m, DRAWS)
    sample_mean = samples.mean(axis=2)
    centred = samples - sample_mean[:, :, None]
    sample_cov = centred @ centred.transpose(0, 2, 1) / (DRAWS - 1)
    pred = predict_from_kernels(*ker.blocks(kernel), y, times, lr=lr, kernel=kernel)
    return {"ker": ker, "y": y, "lr": lr, "times": times}, pred, sample_mean, sample_cov


def _z_scores(mean: np.ndarray, cov: np.ndarray, sample_mean, sample_cov) -> np.ndarray:
    """|sample − predicted| / standard error for every mean and covariance entry."""
    var = np.diagonal(cov, axis1=1, axis2=2)
    z_mean = np.abs(sample_mean - mean) / np.sqrt(var / DRAWS)
    se_cov = np.sqrt((var[:, :, None] * var[:, None, :] + cov**2) / DRAWS)
    z_cov = np.abs(sample_cov - cov) / se_cov
    return np.concatenate([z_mean.ravel(), z_cov.ravel()])


def test_ntk_flow_mean_and_covariance_match_the_ensemble():
    setup, pred, sample_mean, sample_cov = _ensemble_moments("ntk")
    z = _z_scores(pred.mean, pred.cov, sample_mean, sample_cov)
    assert z.max() < Z_MAX, z.max()

    # The check resolves the NNGP/NTK structure: a covariance that wrongly uses Θ(X, X) for
    # the spread of f₀(X) (i.e. assumes K = Θ on the training set) is rejected.
    ker = setup["ker"]
    th_tr, th_te, k_tr, k_te, k_tt = ker.blocks()
    wrong = predict_from_kernels(
        th_tr, th_te, th_tr, k_te, k_tt, setup["y"], setup["times"], lr=setup["lr"]
    )
    assert _z_scores(wrong.mean, wrong.cov, sample_mean, sample_cov).max() > 10 * Z_MAX


def test_nngp_flow_mean_and_covariance_match_the_ensemble():
    _, pred, sample_mean, sample_cov = _ensemble_moments("nngp")
    z = _z_scores(pred.mean, pred.cov, sample_mean, sample_cov)
    assert z.max() < Z_MAX, z.max()
