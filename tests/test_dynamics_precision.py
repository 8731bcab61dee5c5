"""Precision: ill-conditioned kernels against 50-digit mpmath, filters against their SymPy forms."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from dynamics_reference import max_rel_err, random_spd

from ntk_sym.dynamics import predict_from_kernels
from ntk_sym.dynamics.filters import flow_error, flow_gain, gd_error, gd_gain
from ntk_sym.dynamics.spectrum import psd_spectrum
from ntk_sym.errors import InputError
from ntk_sym.symbolic import discrete_flow as discrete_symbolic
from ntk_sym.symbolic import flow as symbolic

EPS = np.finfo(np.float64).eps
N, M = 10, 3
# ηt from "barely started" to "long after the fast modes converged" (λ_max = 1, η = 1).
TIMES = np.array([1e-10, 1e-6, 1e-3, 1.0, 1e3, 1e6])


@pytest.fixture(scope="module")
def ill_conditioned() -> dict:
    rng = np.random.default_rng(11)
    return {
        "theta": random_spd(rng, N, 1e12),  # eigenvalues 1 … 1e-12
        "theta_x": rng.normal(size=(M, N)),
        "k": random_spd(rng, N, 1e2),
        "k_x": 0.3 * rng.normal(size=(M, N)),
        "k_xx": random_spd(rng, M, 10.0),
        "y": rng.normal(size=N),
    }


def _mp_reference(data: dict, time: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, covariance and A = Θ(x,X)Θ⁻¹(I − e^{−Θt}) at 50 digits, by mpmath's expm and inverse.

    The float64 matrices are taken exactly as given; 50 digits absorb the 12 lost to Θ⁻¹ and
    the ≤ 10 lost to the cancellation in I − e^{−Θt} at small t.
    """
    with mp.workdps(50):
        theta = mp.matrix(data["theta"].tolist())
        A = mp.matrix(data["theta_x"].tolist()) * mp.inverse(theta)
        A = A * (mp.eye(N) - mp.expm(-mp.mpf(time) * theta))
        K, K_x = mp.matrix(data["k"].tolist()), mp.matrix(data["k_x"].tolist())
        mean = A * mp.matrix(data["y"].tolist())
        cov = mp.matrix(data["k_xx"].tolist()) + A * K * A.T - A * K_x.T - K_x * A.T
        as_np = lambda mat: np.array(mat.tolist(), dtype=float)  # noqa: E731
        return as_np(mean)[:, 0], as_np(cov), as_np(A)


def test_condition_number_1e12_against_mpmath(ill_conditioned):
    d = ill_conditioned
    assert np.linalg.cond(d["theta"]) == pytest.approx(1e12, rel=1e-3)
    pred = predict_from_kernels(
        d["theta"], d["theta_x"], d["k"], d["k_x"], d["k_xx"], d["y"], TIMES
    )
    assert np.all(np.isfinite(pred.mean)) and np.all(np.isfinite(pred.cov))
    for i, time in enumerate(TIMES):
        mean_ref, cov_ref, _ = _mp_reference(d, time)
        # The eigendecomposition is backward stable and the filter g(λ) = (1 − e^{−λt})/λ has
        # |g'| ≤ t², so the relative error is ≲ ε(n + t·λ_max), independent of κ; measured
        # 1e-15 for t ≤ 1 and 2e-11 at t = 1e6. 50·ε(1 + t) leaves ≥ 10× margin everywhere.
        tol = 50 * EPS * (1 + time)
        assert max_rel_err(pred.mean[i], mean_ref) < tol, time
        assert max_rel_err(pred.cov[i], cov_ref) < tol, time


def test_reference_rejects_the_naive_formula(ill_conditioned):
    """The mpmath comparison can fail: Θ⁻¹(I − e^{−Θt}) taken literally in float64 does."""
    d = ill_conditioned
    w, V = np.linalg.eigh(d["theta"])
    for time in (1e-6, 1e-3):
        propagator = (V * np.exp(-time * w)) @ V.T
        naive = d["theta_x"] @ np.linalg.solve(d["theta"], np.eye(N) - propagator)
        _, _, A_ref = _mp_reference(d, time)
        # cancellation (≈ ε/t) amplified by κ = 1e12: errors of order 1 or worse
        assert max_rel_err(naive, A_ref) > 1e-3


_LAMBDAS = np.r_[0.0, np.logspace(-14, 2, 17)]


def _mp_eval(expr: sp.Expr, values: dict[sp.Symbol, float]) -> float:
    """`expr` at the float64 `values` carried at 80 digits (SymPy evaluates on substitution).

    The cancellations in 1 − e^{−u} and 1 − (1 − a)ᵏ cost at most ~30 digits here (u, a ≥ 1e-28),
    so ≥ 50 correct digits remain.
    """
    return float(expr.subs({key: sp.Float(value, 80) for key, value in values.items()}))


def test_flow_filters_match_their_sympy_derivation():
    eta_t = np.array([0.0, 1e-12, 1e-6, 1e-2, 1.0, 30.0, np.inf])
    gains, errors = flow_gain(_LAMBDAS, eta_t), flow_error(_LAMBDAS, eta_t)
    # The derived gain Θ⁻¹(I − e^{−ηΘt}) per mode (η = 1 here: ηt is the time variable).
    lam0 = sp.Symbol("l", nonnegative=True)
    gain_expr = symbolic.mode_gain(lam0).subs(symbolic.eta, 1)
    error_expr = discrete_symbolic.flow_mode_error().subs(symbolic.eta, 1)
    for i, time in enumerate(eta_t):
        for j, lam in enumerate(_LAMBDAS):
            if np.isinf(time):
                want_gain = 0.0 if lam == 0 else 1 / lam  # the pseudo-inverse convention
                want_error = 1.0 if lam == 0 else 0.0
            else:
                want_gain = _mp_eval(gain_expr, {lam0: lam, symbolic.t: time})
                want_error = _mp_eval(error_expr, {symbolic.lam: lam, symbolic.t: time})
            # expm1, exp and / each round once (measured ≤ 1 ulp); 8 ulp allows other libms.
            assert gains[i, j] == pytest.approx(want_gain, rel=8 * EPS, abs=0), (lam, time)
            assert errors[i, j] == pytest.approx(want_error, rel=8 * EPS, abs=1e-300), (lam, time)


def test_gd_filters_match_their_sympy_derivation():
    eta = 0.5
    lams = np.r_[0.0, np.logspace(-14, np.log10(3.9), 12)]  # ηλ up to 1.95 (stable)
    steps = np.array([0, 1, 7, 1000, 10**7])
    gains, errors = gd_gain(lams, eta, steps), gd_error(lams, eta, steps)
    lam0 = sp.Symbol("l", nonnegative=True)
    gain_expr = discrete_symbolic.mode_gain(lam0)
    error_expr = discrete_symbolic.mode_error()
    for i, k in enumerate(steps):
        for j, lam in enumerate(lams):
            at = {symbolic.eta: eta, discrete_symbolic.k: k}
            want_gain = _mp_eval(gain_expr, {lam0: lam, **at})
            want_error = _mp_eval(error_expr, {symbolic.lam: lam, **at})
            # The rounding of log1p is multiplied by k·|log(1 − ηλ)| in the exponent; measured
            # ≤ 9 ulp over this grid (k up to 1e7), so 64 ulp bounds it with margin.
            assert gains[i, j] == pytest.approx(want_gain, rel=64 * EPS, abs=0), (lam, k)
            assert errors[i, j] == pytest.approx(want_error, rel=64 * EPS, abs=1e-300), (lam, k)


def test_rounding_negatives_are_clipped_and_real_negatives_rejected():
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    tiny = (Q * np.array([-1e-17, 1e-3, 0.1, 0.5, 1.0, 2.0])) @ Q.T  # −1e-17 ≪ n·ε·λ_max ≈ 2.7e-15
    spectrum = psd_spectrum((tiny + tiny.T) / 2)
    assert spectrum.eigenvalues[0] == 0.0 and np.all(spectrum.eigenvalues >= 0)
    bad = (Q * np.array([-1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0])) @ Q.T
    with pytest.raises(InputError, match="not positive semi-definite"):
        psd_spectrum((bad + bad.T) / 2)
    # the same kernel made positive definite by diag_reg is accepted
    assert psd_spectrum((bad + bad.T) / 2, diag_reg=1e-3).eigenvalues[0] > 0
