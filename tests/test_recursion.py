"""The symbolic recursion: equations, unrolled kernels, and Price's theorem on the layer maps."""

import numpy as np
import sympy as sp

import ntk_sym
from ntk_sym.symbolic.recursion import d, xx, xy, yy


def test_unrolled_kernel_evaluates_to_the_engine():
    """The closed form in (x·x', ‖x‖², ‖x'‖², d) composed by SymPy, evaluated at 40 digits, against
    the float64 engine (1e-13: a few ulps of O(1) entries)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3, 4))
    for name, depth, w, b in [("relu", 2, 1.5, 0.1), ("erf", 2, 1.2, 0.3), ("abs", 1, 1.0, 0.0)]:
        net = ntk_sym.mlp(name, depth=depth, w_std=w, b_std=b)
        K_sym, T_sym = net.unrolled()
        K, T = net.kernels(X)
        for i, j in [(0, 1), (1, 2), (0, 0)]:
            subs = {xy: X[i] @ X[j], xx: X[i] @ X[i], yy: X[j] @ X[j], d: 4}
            # on the diagonal a determinant is 0 up to the 40-digit rounding: drop the ±1e-40i
            assert abs(float(sp.re(K_sym.evalf(40, subs=subs))) - K[i, j]) < 1e-13
            assert abs(float(sp.re(T_sym.evalf(40, subs=subs))) - T[i, j]) < 1e-13


def test_depth_one_relu_ntk_is_the_textbook_formula():
    """Θ⁽²⁾ for ReLU, σ_w = 1, σ_b = 0: (x·x'/d)(π − θ)/(2π) + ‖x‖‖x'‖(sin θ + (π − θ)cos θ)/(2πd)
    with cos θ = x·x'/(‖x‖‖x'‖); checked as a symbolic identity."""
    _, T = ntk_sym.mlp("relu", depth=1).unrolled()
    theta = sp.acos(xy / sp.sqrt(xx * yy))
    expected = (xy / d) * (sp.pi - theta) / (2 * sp.pi) + sp.sqrt(xx * yy) * (
        sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)
    ) / (2 * sp.pi * d)
    assert sp.simplify(T - expected) == 0


def test_activation_maps_follow_price():
    """An activation layer's Θ map is Ṫ Θ with Ṫ = ∂T/∂Σ₁₂ of its Σ map (Price's theorem), for
    closed-form activations: read off the chain of ``mlp(φ, 2)``."""
    for name in ["relu", "erf", "leaky_relu", "abs"]:
        eqs = ntk_sym.mlp(name, depth=2).recursion()
        sigma, theta = eqs[4], eqs[5]  # layer 2, the first activation
        prev = {str(s): s for s in sigma.rhs.free_symbols | theta.rhs.free_symbols}
        c, t = prev[r"\Sigma^{(1)}"], prev[r"\Theta^{(1)}"]
        a, e = prev[r"\Sigma^{(1)}_{11}"], prev[r"\Sigma^{(1)}_{22}"]
        slope = sp.diff(sigma.rhs, c)
        diff = slope * t - theta.rhs
        assert sp.simplify(diff) == 0 or all(
            abs(complex(diff.subs({a: 1.3, e: 0.7, c: r, t: 0.9}))) < 1e-12
            for r in (-0.5, 0.1, 0.8)
        )


def test_quadrature_activation_has_named_maps_and_no_unrolled_form():
    x = sp.Symbol("x")
    net = ntk_sym.mlp(sp.tanh(x), depth=2)
    eqs = net.recursion()
    assert any(f.func.__name__.startswith("T_") for f in eqs[4].rhs.atoms(sp.Function))
    try:
        net.unrolled()
    except ntk_sym.errors.NTKSymError as err:
        assert "no closed-form" in str(err)
    else:
        raise AssertionError("unrolled() must refuse an activation without a closed form")


def test_compiled_kernels_are_cached_across_network_objects(monkeypatch):
    """A second network with the same activation does no symbolic work: compilation is patched
    to fail after the first call."""
    from ntk_sym.compile import duals as compile_module

    X = np.eye(3)
    ntk_sym.mlp("leaky_relu", depth=2, alpha=0.3).ntk(X)

    def forbidden(*args, **kwargs):
        raise AssertionError("recompiled a cached activation")

    monkeypatch.setattr(compile_module, "_compile_angle", forbidden)
    ntk_sym.mlp("leaky_relu", depth=4, w_std=2.0, alpha=0.3).ntk(X)


def test_latex_has_every_layer_map():
    """mlp(erf, 2) is Dense, erf, Dense, erf, Dense: the input and five layers, two rows each."""
    tex = ntk_sym.mlp("erf", depth=2).latex()
    assert tex.startswith("\\begin{aligned}") and tex.count("&=") == 2 + 2 * 5
    assert "\\operatorname{asin}" in tex or "\\arcsin" in tex
