"""The verification machinery itself: its quadrature against textbook Gaussian expectations,
and its ability to catch a wrong closed form."""

from __future__ import annotations

import mpmath as mp
import pytest
import sympy as sp

from ntk_sym.errors import NTKSymError
from ntk_sym.symbolic.activations import Activation, get
from ntk_sym.symbolic.symbols import X, q11, q12, q22
from ntk_sym.symbolic.verify import (
    VerificationError,
    checked_expectation,
    covariance_points,
    dirac_expectation,
    dirac_terms,
    kinks,
    verify,
)


def _rho(spec: str) -> mp.mpf:
    """A correlation in the current precision; "near" means 1 − 10⁻⁶."""
    if spec.lstrip("-") == "near":
        return (-1 if spec.startswith("-") else 1) * (1 - mp.mpf(10) ** -6)
    return mp.mpf(spec)


def _cov(v1, rho, v2):
    return mp.mpf(v1), rho * mp.sqrt(mp.mpf(v1) * mp.mpf(v2)), mp.mpf(v2)


@pytest.mark.parametrize("spec", ["0.3", "near", "-near"])
def test_sheppard_orthant_probability(spec):
    """P(u > 0, v > 0) = 1/4 + asin(ρ)/(2π) (Sheppard 1899), a discontinuous integrand."""
    with mp.workdps(30):
        rho = _rho(spec)
        q = _cov("0.5", rho, "2.5")
        value, _, _ = checked_expectation(lambda x: 1 if x > 0 else 0, *q, kinked=True, tol=1e-25)
        exact = mp.mpf(1) / 4 + mp.asin(rho) / (2 * mp.pi)
        # tol 1e-25 on successive rules; 1e-24 allows the last rule's own error to be 10x that.
        assert abs(value - exact) <= 1e-24 * exact


@pytest.mark.parametrize("spec", ["-0.7", "near"])
def test_isserlis_fourth_moment(spec):
    """𝔼[u² v²] = q11 q22 + 2 q12² for the smooth integrand x²."""
    with mp.workdps(30):
        rho = _rho(spec)
        q = _cov("1.7", rho, "0.4")
        value, _, _ = checked_expectation(lambda x: x**2, *q, kinked=False, tol=1e-25)
        exact = q[0] * q[2] + 2 * q[1] ** 2
        assert abs(value - exact) <= 1e-24 * exact  # as above


def test_moment_generating_function():
    """𝔼[e^{u+v}] = exp((q11 + 2 q12 + q22)/2): an integrand growing along the tail."""
    with mp.workdps(30):
        q = _cov("3", mp.mpf("0.9"), "2")
        value, _, _ = checked_expectation(mp.exp, *q, kinked=False, tol=1e-25)
        exact = mp.exp((q[0] + 2 * q[1] + q[2]) / 2)
        assert abs(value - exact) <= 1e-24 * exact  # as above


def test_a_wrong_closed_form_is_caught_and_measured():
    """A linear unit whose dual is off by a relative 1e-9 fails, and the error is reported."""
    wrong = Activation("bad_identity", X, dual=q12 * (1 + sp.Rational(1, 10**9)))
    report = verify(wrong, n_points=3, strict=False)
    assert not report.passed
    # The reported error is the injected one to within the quadrature accuracy (rtol/10 = 1e-16).
    assert abs(report.errors["dual"] - 1e-9) < 1e-15
    with pytest.raises(VerificationError, match="FAILED"):
        verify(wrong, n_points=3)


def test_a_wrong_derivative_reference_is_caught():
    mgf = sp.exp((q11 + 2 * q12 + q22) / 2)
    wrong = Activation("bad_exp", sp.exp(X), dual=mgf, derivative_reference=1.001 * mgf)
    report = verify(wrong, n_points=2, strict=False)
    assert report.errors["dual"] < 1e-15 and report.errors["price"] < 1e-15
    assert abs(report.errors["reference"] - 1e-3) < 1e-9  # 1.001 vs 1: a relative 1e-3
    assert not report.passed


def test_report_names_points_and_notes():
    report = verify(get("step"), n_points=4)
    assert report.passed and len(report.points) == 4
    assert any("Dirac" in note for note in report.notes)
    text = str(report)
    assert "passed" in text and "step" in text


def test_unflagged_dirac_derivative_fails():
    unflagged = Activation("heaviside", sp.Heaviside(X), dual=get("step").dual)
    report = verify(unflagged, n_points=2, strict=False)
    assert not report.passed and "dirac_flag" in report.errors


def test_covariance_points():
    with mp.workdps(30):
        points = covariance_points(6, seed=3)
        rhos = [c / mp.sqrt(a * b) for a, c, b in points]
        near = _rho("near")
        # ρ is rebuilt from q12/√(q11 q22) at 30 digits: a few units in the last place.
        assert abs(rhos[0] - near) < 1e-28 and abs(rhos[1] + near) < 1e-28
        assert points[1][0] != points[1][2]  # unequal variances
        assert all(
            -1 < r < 1 and a > 0 and b > 0 for r, (a, _, b) in zip(rhos, points, strict=True)
        )
        assert covariance_points(6, seed=3) == points  # seeded


def test_kinks_and_diracs():
    assert kinks(sp.tanh(X)) == set()
    assert kinks(sp.Max(X, 0) ** 2) == {0}
    assert kinks(get("abrelu", a=0.1, b=2).derivative) == {0}
    with pytest.raises(NTKSymError, match="x = 0 only"):
        kinks(sp.Max(X, 1))
    assert dirac_terms(sp.diff(sp.sign(X), X)) == [(2, 0)]
    assert dirac_terms(sp.Heaviside(X)) is None
    with pytest.raises(NTKSymError, match="regular part"):
        dirac_terms(sp.DiracDelta(X) + X)
    with mp.workdps(30):
        q = _cov(2, mp.mpf("0.5"), 1)
        density = 1 / (2 * mp.pi * mp.sqrt(q[0] * q[2] - q[1] ** 2))
        assert abs(dirac_expectation([(2, 0)], *q) - 4 * density) < 1e-28


def test_argument_errors():
    with pytest.raises(NTKSymError, match="no closed-form dual"):
        verify("tanh")
    with pytest.raises(NTKSymError, match="n_points"):
        verify("relu", n_points=0)
    with pytest.raises(NTKSymError, match="rtol"):
        verify("relu", rtol=1e-40)
    with pytest.raises(NTKSymError, match="positive definite"):
        checked_expectation(mp.exp, mp.mpf(1), mp.mpf(1), mp.mpf(1), kinked=False, tol=1e-10)
