"""Activations without a closed form: the quadrature engine against independent references."""

import numpy as np
import pytest
import sympy as sp

import ntk_sym

x = sp.Symbol("x")


@pytest.mark.parametrize(
    "expr,name,params",
    [
        (sp.erf(x), "erf", {}),
        (2 * sp.erf(x / 2) + 0.3, "erf", {"a": 2.0, "b": 0.5, "c": 0.3}),
        (sp.sin(x), None, {}),
    ],
)
def test_quadrature_reproduces_closed_forms(expr, name, params):
    """The same network through quadrature (expression) and through the closed form (catalogue).

    Tolerance 1e-12 relative: the trapezoidal rule converges exponentially for these entire
    functions; at the variances met here (≤ 3) its error is at rounding level.
    """
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 4))
    X = np.vstack([X, X[0], -X[1]])
    net_q = ntk_sym.mlp(expr, depth=3, w_std=1.3, b_std=0.2)
    if name is None:  # sin: T = ½ e^{-(q11+q22)/2} (e^{q12} − e^{−q12}) written out here
        K_q = net_q.nngp(X)
        G = 1.3**2 * X @ X.T / 4 + 0.04
        for _ in range(3):
            d = np.diag(G)
            G = 1.3**2 * np.exp(-(d[:, None] + d[None, :]) / 2) * np.sinh(G) + 0.04
        np.testing.assert_allclose(K_q, G, rtol=1e-12, atol=0)
        return
    net_c = ntk_sym.mlp(name, depth=3, w_std=1.3, b_std=0.2, **params)
    K_q, T_q = net_q.kernels(X)
    K_c, T_c = net_c.kernels(X)
    np.testing.assert_allclose(K_q, K_c, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(T_q, T_c, rtol=1e-12, atol=1e-14)


def test_tanh_depth_two_against_mpmath_integration():
    """The issue's bar: tanh's depth-2 NNGP and NTK within 1e-8 at default settings, against an
    independent nested Gauss–Legendre integration in mpmath (15 digits suffice to judge 1e-8;
    observed agreement ~1e-15)."""
    X = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, -0.5]])
    net = ntk_sym.mlp("tanh", depth=2, w_std=1.5, b_std=0.1)
    K_ref, T_ref = (a.astype(float) for a in net.kernels(X, backend="mpmath", dps=15))
    K, T = net.kernels(X)
    assert np.abs(K - K_ref).max() < 1e-8 * np.abs(K_ref).max()
    assert np.abs(T - T_ref).max() < 1e-8 * np.abs(T_ref).max()


def test_quadrature_degree_is_a_parameter_and_coarse_rules_are_worse():
    X = np.array([[0.3, -1.2, 0.8], [1.1, 0.4, -0.5]])
    net = ntk_sym.mlp("tanh", depth=2, w_std=1.5, b_std=0.1)
    fine = net.ntk(X, degree=256)
    assert np.abs(net.ntk(X) - fine).max() < 1e-12 * np.abs(fine).max()
    assert np.abs(net.ntk(X, degree=24) - fine).max() > 1e-6 * np.abs(fine).max()
