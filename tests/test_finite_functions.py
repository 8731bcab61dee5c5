"""φ and φ' compiled from SymPy for NumPy: values against mpmath, φ' against differences."""

import mpmath
import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.errors import ExpressionError
from ntk_sym.finite import activation_functions, compile_expression
from ntk_sym.symbolic.symbols import X

POINTS = np.array([-2.7, -1.3, -0.4, 0.3, 0.9, 1.7, 3.1])  # away from kinks at 0


@pytest.mark.parametrize("name", ntk_sym.activations.names())
def test_phi_matches_mpmath_evaluation(name):
    act = ntk_sym.activations.get(name)
    phi, _ = activation_functions(act)
    reference = [float(sp.N(act.expr.subs(X, sp.Float(p, 30)), 30)) for p in POINTS]
    # float64 evaluation of a few elementary operations: a few ulps of relative error.
    np.testing.assert_allclose(phi(POINTS), reference, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ntk_sym.activations.names())
def test_dphi_matches_central_differences(name):
    act = ntk_sym.activations.get(name)
    phi, dphi = activation_functions(act)
    h = 1e-5
    numeric = (phi(POINTS + h) - phi(POINTS - h)) / (2 * h)
    expected = np.zeros_like(POINTS) if act.dirac_derivative else numeric
    # Central differences: truncation h²|φ'''|/6 ≲ 1e-10 plus rounding ε|φ|/h ≲ 1e-10.
    np.testing.assert_allclose(dphi(POINTS), expected, rtol=1e-8, atol=1e-8)


def test_erf_is_float64_accurate_over_a_wide_range():
    x = np.linspace(-7.0, 7.0, 2001)
    erf = compile_expression(sp.erf(X), "erf")
    reference = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in x])
    # math.erf is accurate to about an ulp; 4 ulps of margin.
    np.testing.assert_allclose(erf(x), reference, rtol=4 * np.finfo(float).eps, atol=1e-300)


def test_dirac_derivatives_are_zero_and_shapes_are_kept():
    _, dstep = activation_functions(ntk_sym.activations.get("step"))
    _, dident = activation_functions(ntk_sym.activations.get("identity"))
    grid = np.ones((3, 4))
    assert np.array_equal(dstep(grid), np.zeros((3, 4)))
    assert np.array_equal(dident(grid), np.ones((3, 4)))


def test_unsupported_function_is_reported():
    with pytest.raises(ExpressionError, match="g"):
        compile_expression(sp.Function("g")(X), "φ")


def test_overflow_to_infinity_is_an_error_not_a_silent_inf():
    softplus, _ = activation_functions(ntk_sym.activations.get("softplus"))
    with pytest.raises(ExpressionError, match="not finite"):
        softplus(np.array([1000.0]))
    sigmoid, _ = activation_functions(ntk_sym.activations.get("sigmoid"))
    # exp(1000) overflows inside the expression but the sigmoid's limit, 0, is finite.
    assert sigmoid(np.array([-1000.0]))[0] == 0.0
