"""The Hermite series dual: coefficients, the Mehler sum and its bound, the gaps, the network
kernels, and the errors for bad input, each against an independent reference."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ntk_sym.compile import compile_dual
from ntk_sym.compile.backends import compile_phi
from ntk_sym.errors import ExpressionError
from ntk_sym.numeric.hermite import Coefficients
from ntk_sym.symbolic.activations import get, resolve
from ntk_sym.symbolic.hermite import (
    Q,
    hermite_coefficients,
    is_odd,
    kink_points,
    numeric_coefficients,
    polynomial_coefficients,
)
from ntk_sym.symbolic.symbols import X
from ntk_sym.symbolic.verify import checked_expectation

x = sp.Symbol("x")


def _float_coefficients(act, q, terms):
    phi, dphi = compile_phi(act)
    kinks = tuple(float(k) for k in kink_points(act.expr) | kink_points(act.derivative))
    return Coefficients(phi, dphi, kinks, act.name).compute(np.asarray(q, float), terms)


@pytest.mark.parametrize(
    "name,expr,variances",
    [
        ("tanh", None, (0.5, 50.0)),
        ("elu", None, (1.0, 7.0)),
        ("shifted relu", sp.Max(x, -1) + x**2 / 10, (2.0,)),
    ],
)
def test_float_coefficients_match_mpmath(name, expr, variances):
    """c_k(q) by the float64 rule against 20-digit mpmath integration split at the kinks
    (enough to judge 1e-14).

    Tolerance 1e-14·√T: the rules are refined to a relative change of 1e-12 (errors then
    ~1e-24), so what remains is rounding (~1e-16, measured ≤ 5e-16) over ~1000 nodes.
    Large variances (tanh at 50: poles 0.22 from the real axis in z) and kinks away from 0
    (max(x, −1), split per point) are the hard cases.
    """
    act = get(name) if expr is None else resolve(expr)
    H = _float_coefficients(act, variances, 41)
    for i, q in enumerate(variances):
        orders = (0, 1, 2, 17, 40)
        reference = numeric_coefficients(act.expr, orders, q, dps=20)
        scale = float(np.sqrt(H.T[i]))
        for k, value in zip(orders, reference, strict=True):
            assert abs(H.c[k, i] - float(value)) <= 1e-14 * scale, (k, q)


def test_polynomial_coefficients_are_exact():
    """c_k(q) of a cubic against SymPy's own Gaussian integrals (a symbolic identity)."""
    q = sp.Symbol("q", positive=True)
    z = sp.Symbol("z", real=True)
    expr = 2 * X**3 - X + sp.Rational(1, 3)
    coeffs = polynomial_coefficients(expr, 5)
    density = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    body = expr.subs(X, sp.sqrt(q) * z)
    for k, c in enumerate(coeffs):
        direct = sp.integrate(body * sp.hermite_prob(k, z) * density, (z, -sp.oo, sp.oo))
        direct = direct / sp.sqrt(sp.factorial(k))
        assert sp.simplify(c.subs(sp.Symbol("q", positive=True), q) - direct) == 0
    assert coeffs[4] == 0 and coeffs[3] != 0
    # Mehler: Σ c_k² = 𝔼[φ(u)²], here with u ~ N(0, 2) by Isserlis' moments
    total = sum(c.subs(Q, 2) ** 2 for c in coeffs)
    moments = {0: 1, 2: 2, 4: 12, 6: 120}
    square = sp.Poly(sp.expand(expr**2), X)
    pairs = zip(square.monoms(), square.coeffs(), strict=True)
    direct = sum(a * moments.get(m[0], 0) for m, a in pairs)
    assert sp.simplify(total - direct) == 0


def test_symbolic_coefficients_by_integration_and_refusal():
    """e^{x}: c_k(q) = q^{k/2} e^{q/2}/√k! (generating function of He_k), found by SymPy."""
    q = sp.Symbol("q", positive=True)
    coeffs = hermite_coefficients(sp.exp(X), 3)
    for k, c in enumerate(coeffs):
        expected = q ** sp.Rational(k, 2) * sp.exp(q / 2) / sp.sqrt(sp.factorial(k))
        assert sp.simplify(c.subs(sp.Symbol("q", positive=True), q) - expected) == 0
    with pytest.raises(ExpressionError, match="numeric_coefficients"):
        hermite_coefficients(sp.tanh(X), 2)


def test_kinks_and_parity():
    assert kink_points(get("elu").expr) == {0}
    assert kink_points(sp.Max(X, -1)) == {-1}
    assert kink_points(sp.tanh(X)) == set()
    assert is_odd(sp.tanh(X)) and not is_odd(get("softplus").expr)


def _pair_values(name, q1, q2, rho):
    """(T12, Ṫ12, g₋, g₊) of the compiled series at one pair."""
    dual = compile_dual(get(name))
    q = np.array([q1, q2])
    E = dual.per_point(q)
    T, Td = dual.diag(q)
    cos = np.array([[rho]])
    sin = np.sqrt((1 - cos) * (1 + cos))
    a, b = q[:1, None], q[None, 1:]
    extra = (E[:, :1], E[:, 1:])
    T12, Td12, _ = dual.pair(a, b, None, cos, sin, T[:1, None], T[None, 1:], extra=extra)
    gm, gp = dual.gaps(q[:1], q[1:], None, cos[0], sin[0], T[:1], T[1:], T12[0], extra=extra)
    return float(T12[0, 0]), float(Td12[0, 0]), float(gm[0]), float(gp[0]), T


@pytest.mark.parametrize(
    "name,q1,q2,rho",
    [
        ("tanh", 1.0, 2.0, 0.6),
        ("tanh", 7.0, 1.2, -0.3),
        ("tanh", 1.5, 1.5, 1 - 1e-7),  # near-duplicate: past the bulk, full series or 2-D rule
        ("softplus", 0.8, 1.9, -(1 - 1e-5)),
        ("silu", 2.0, 0.7, 0.93),
        ("elu", 1.3, 0.9, 0.5),
        ("elu", 1.1, 1.1, 1 - 1e-8),
    ],
)
def test_pair_against_30_digit_quadrature(name, q1, q2, rho):
    """T12 and Ṫ12 against `verify`'s polar quadrature at 20 digits (tolerance 1e-14 relative
    to √(T11 T22): the default bound is 1e-14 per layer), and the gaps to 1e-13 relative to
    themselves near ρ = ±1, where they are small (cancellation-free)."""
    act = get(name)
    T12, Td12, gm, gp, T = _pair_values(name, q1, q2, rho)
    with mp.workdps(20):
        cov = (mp.mpf(q1), mp.mpf(rho) * mp.sqrt(mp.mpf(q1) * q2), mp.mpf(q2))
        kinked = bool(kink_points(act.expr) | kink_points(act.derivative))
        f = sp.lambdify(X, act.expr, "mpmath")
        g = sp.lambdify(X, act.derivative, "mpmath")
        ref_T, _, _ = checked_expectation(f, *cov, kinked=kinked, tol=mp.mpf(10) ** -17)
        ref_Td, _, _ = checked_expectation(g, *cov, kinked=kinked, tol=mp.mpf(10) ** -17)
        diagonal = [_second_moment(f, mp.mpf(v), kinked) for v in (q1, q2)]
    scale = np.sqrt(T[0] * T[1])
    assert abs(T12 - float(ref_T)) <= 1e-14 * scale
    assert abs(Td12 - float(ref_Td)) <= 1e-14 * np.sqrt(
        float(compile_dual(act).diag(np.array([q1]))[1][0])
        * float(compile_dual(act).diag(np.array([q2]))[1][0])
    )
    with mp.workdps(20):
        root = mp.sqrt(diagonal[0] * diagonal[1])
        exact = (root - ref_T, root + ref_T)
    for gap, value in zip((gm, gp), exact, strict=True):
        assert abs(gap - float(value)) <= 1e-11 * float(value) + 1e-17 * scale


def _second_moment(f, q, kinked):
    """𝔼[f(√q z)²] by 1-D mpmath integration (split at 0 for kinked f)."""

    def integrand(z):
        return f(mp.sqrt(q) * z) ** 2 * mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)

    return mp.quad(integrand, [-mp.inf, 0, mp.inf] if kinked else [-mp.inf, mp.inf])
