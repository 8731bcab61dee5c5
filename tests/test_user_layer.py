"""A layer defined by its kernel map alone (`ntk_sym.layers.Layer`), in every place a layer goes.

The reference is an independent network of built-in layers with the same kernels. For
out = c·x, Scale(c) maps (Σ, Θ) to (c²Σ, c²Θ), so, with Dense(σ_w, σ_b): Σ' = σ_w²Σ + σ_b²,
Θ' = Σ' + σ_w²Θ (NTK parameterization),

* Dense(σ_w, σ_b) then Scale(c): c²Σ' = (cσ_w)²Σ + (cσ_b)² and c²Θ' = c²Σ' + (cσ_w)²Θ, which
  is Dense(cσ_w, cσ_b);
* Scale(c) then Dense(σ_w, σ_b): σ_w²(c²Σ) + σ_b² and Σ' + σ_w²(c²Θ), which is Dense(cσ_w, σ_b).

A Conv is a Dense on the window mean of Σ and Θ, so the same holds with Conv in place of Dense.
Tolerances: the user network and the reference round differently ((√s)² against s, the
unfused Activation → Scale → Dense against the fused hidden layer), a few ulps per layer:
1e-13 relative to √(Kᵢᵢ Kⱼⱼ) on float64, 1e-12 against the 60-digit mpmath path (the
accuracy suite's criterion), 1e-5 on float32 (the engine's float32 accuracy is ~1e-6).
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

from ntk_sym.errors import NTKSymError
from ntk_sym.finite import init
from ntk_sym.layers import (
    Conv,
    Dense,
    GlobalAvgPool,
    KernelState,
    Layer,
    LayerNorm,
    Relu,
    Residual,
    serial,
)
from tests.conftest import relative_entry_error


@dataclass(frozen=True)
class Scale(Layer):
    """out = c·x, no parameters to train."""

    c: float = 1.0

    def apply(self, state, symbols=None):
        c2 = sp.nsimplify(self.c) ** 2
        return KernelState(c2 * state.s11, c2 * state.s12, c2 * state.s22, c2 * state.ntk)


@dataclass(frozen=True)
class RmsNorm(Layer):
    """LayerNorm's map written as a user layer: Σ' = Σ₁₂/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂)."""

    def apply(self, state, symbols=None):
        root = sp.sqrt(state.s11 * state.s22)
        return KernelState(sp.Integer(1), state.s12 / root, sp.Integer(1), state.ntk / root)


C, W, B = 1.3, 1.5, 0.1


def _close(approx, exact, tol, diagonals=None):
    """max |K̂ᵢⱼ − Kᵢⱼ| / √(Kᵢᵢ Kⱼⱼ) < tol over the kernels in `approx` and `exact` (square
    matrices, or give each kernel's (Kᵢᵢ, Kⱼⱼ) in `diagonals`)."""
    errors = []
    for k, (a, e) in enumerate(zip(approx, exact, strict=True)):
        e = np.asarray(e, dtype=float)
        d1, d2 = (np.diag(e),) * 2 if diagonals is None else diagonals[k]
        errors.append(relative_entry_error(np.asarray(a, float), e, d1, d2).max())
    assert max(errors) < tol, errors


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((6, 4))
    return np.vstack([base, base[0], 4.0 * base[1], -base[2]])  # duplicate, parallel, antipodal


def test_scale_between_activation_and_dense_equals_the_scaled_dense(X):
    net = serial(Dense(W, B), Relu(), Scale(C), Dense(W, B))
    ref = serial(Dense(W, B), Relu(), Dense(C * W, B))
    _close(net.kernels(X), ref.kernels(X), 1e-13)


def test_scale_after_dense_equals_the_scaled_dense_with_bias(X):
    net = serial(Dense(W, B), Scale(C), Relu(), Dense(W, B), Relu(), Dense())
    ref = serial(Dense(C * W, C * B), Relu(), Dense(W, B), Relu(), Dense())
    _close(net.kernels(X), ref.kernels(X), 1e-13)


def test_scale_at_the_input_and_twice_in_a_row(X):
    net = serial(Scale(C), Dense(W, B), Relu(), Scale(2.0), Scale(0.5), Dense())
    ref = serial(Dense(C * W, B), Relu(), Dense())
    _close(net.kernels(X), ref.kernels(X), 1e-13)


def test_scale_inside_a_residual_block(X):
    net = serial(Dense(), Relu(), Residual(Dense(), Relu(), Dense(W, B), Scale(C)), Dense())
    ref = serial(Dense(), Relu(), Residual(Dense(), Relu(), Dense(C * W, C * B)), Dense())
    _close(net.kernels(X), ref.kernels(X), 1e-13)


def test_scale_on_the_mpmath_path_at_60_digits(nasty_inputs):
    """The map lambdified for mpmath: against the reference network at 60 digits, and float64
    against that. The two 60-digit paths round differently, and the pair 1e-9 apart costs the
    covariance-form recursion ~30 digits (1 − ρ ~ 1e-18, squared), so they agree to ~1e-32
    relative; 1e-25 is far beyond anything float64 could match by accident."""
    X1, X2 = nasty_inputs
    net = serial(Dense(W, B), Relu(), Scale(C), Dense(W, B), Relu(), Dense(W, B), Scale(C),
                 Relu(), Dense())
    ref = serial(Dense(W, B), Relu(), Dense(1.95, B), Relu(), Dense(1.95, 0.13), Relu(), Dense())
    mine = net.kernels(X1, X2, backend="mpmath", dps=60)
    exact = ref.kernels(X1, X2, backend="mpmath", dps=60)
    scale = max(abs(v) for v in exact[1].ravel())
    for a, e in zip(mine, exact, strict=True):
        assert max(abs(u - v) for u, v in zip(a.ravel(), e.ravel(), strict=True)) < 1e-25 * scale
    diag = [ref.kernels(Z, backend="mpmath", dps=60) for Z in (X1, X2)]
    for k, (approx, e) in enumerate(zip(net.kernels(X1, X2), exact, strict=True)):
        d1, d2 = (np.diag(dk[k]).astype(float) for dk in diag)
        assert relative_entry_error(approx, e.astype(float), d1, d2).max() < 1e-12


def test_a_nonlinear_user_map_equals_the_hand_written_layer(X):
    """RmsNorm is LayerNorm's map without its hand-written step: the generic step recomputes
    the angle from the new Σ, and still agrees to rounding on well-separated and identical
    inputs (the duplicate row is copied from the diagonal)."""
    net = serial(Dense(W, B), Relu(), Dense(), RmsNorm(), Relu(), Dense())
    ref = serial(Dense(W, B), Relu(), Dense(), LayerNorm(), Relu(), Dense())
    K, T = net.kernels(X)
    _close((K, T), ref.kernels(X), 1e-12)
    assert K[0, 6] == K[0, 0] and T[0, 6] == T[0, 0]


def test_scale_in_a_convolutional_network():
    images = np.random.default_rng(3).standard_normal((4, 5, 5, 2))
    net = serial(Conv(3, W, B), Scale(C), Relu(), Scale(C), Conv(3, W, B), Relu(),
                 GlobalAvgPool(), Dense())
    ref = serial(Conv(3, C * W, C * B), Relu(), Conv(3, C * W, B), Relu(), GlobalAvgPool(),
                 Dense())
    _close(net.kernels(images), ref.kernels(images), 1e-13)


def test_float32_out_and_tiles(X):
    net = serial(Dense(W, B), Relu(), Scale(C), Dense(W, B))
    ref = serial(Dense(W, B), Relu(), Dense(C * W, B))
    X2 = X[:5] + 0.25
    K_ref, T_ref = ref.kernels(X, X2)
    diagonals = [tuple(np.diag(k[j]) for k in (ref.kernels(X), ref.kernels(X2))) for j in (0, 1)]
    K32, T32 = net.kernels(X, X2, dtype=np.float32, tile=3)
    assert K32.dtype == T32.dtype == np.float32
    _close((K32, T32), (K_ref, T_ref), 1e-5, diagonals)
    out = np.zeros((len(X), len(X2)))
    got = net.ntk(X, X2, out=out, tile=4)
    assert got is out
    _close((out,), (T_ref,), 1e-13, diagonals[1:])


def test_recursion_and_latex_show_the_layer():
    net = serial(Dense(W, B), Relu(), Scale(C), Dense())
    tex = net.latex()
    assert r"\mathrm{Scale}(c = 1.3)" in tex
    eqs = net.recursion()
    s2, s3 = sp.Symbol(r"\Sigma^{(2)}", real=True), sp.Symbol(r"\Sigma^{(3)}", real=True)
    t2 = sp.Symbol(r"\Theta^{(2)}", real=True)
    assert sp.simplify(eqs[6].rhs - sp.Rational(169, 100) * s2) == 0 and eqs[6].lhs == s3
    assert sp.simplify(eqs[7].rhs - sp.Rational(169, 100) * t2) == 0


def test_label_lists_the_fields_and_kind_is_generic():
    @dataclass(frozen=True)
    class Shift(Layer):
        w_std: float = 2.0
        mode: str = "fast"

        def apply(self, state, symbols=None):
            return state

    assert Shift().label() == r"\mathrm{Shift}(\mathrm{w\_std} = 2,\ \mathrm{mode} = \mathrm{fast})"
    assert Scale.kind == "layer" and Dense.kind == "dense"

    @dataclass(frozen=True)
    class Doubled(Dense):  # a built-in kind with a new map is compiled from that map
        def apply(self, state, symbols=None):
            out = Dense.apply(self, state, symbols)
            return KernelState(*(4 * v for v in out))

    assert Doubled.kind == "layer"
    X = np.random.default_rng(1).standard_normal((3, 2))
    K = serial(Dense(), Relu(), Doubled()).nngp(X)
    assert np.allclose(K, 4 * serial(Dense(), Relu(), Dense()).nngp(X), rtol=1e-14)


def test_a_user_layer_without_finite_twin_says_so():
    net = serial(Dense(), Relu(), Scale(C), Dense())
    with pytest.raises(NTKSymError, match=r"layer 3 \(.*Scale.*\) has no finite twin"):
        init(net, 8)


# -- bad user layers ---------------------------------------------------------------------------
def _layer(apply, hashable=True):
    cls = type("Bad", (Layer,), {"apply": apply})
    return dataclass(frozen=hashable)(cls)()


@pytest.mark.parametrize(
    "apply, message",
    [
        (lambda self, s, symbols=None: KernelState(math.sqrt(s.s11), s.s12, s.s22, s.ntk),
         "Bad: apply.state. failed on a symbolic KernelState"),
        (lambda self, s, symbols=None: (s.s11, s.s12, s.s22, s.ntk),
         "Bad: apply returned tuple, not a KernelState"),
        (lambda self, s, symbols=None: KernelState(s.s11, s.s12, s.s22, "oops"),
         "not a SymPy expression"),
        (lambda self, s, symbols=None: KernelState(s.s11, sp.Symbol("x") * s.s12, s.s22, s.ntk),
         "depends on x, which are not part of the kernel state"),
        (lambda self, s, symbols=None: KernelState(s.s11, sp.Function("f")(s.s12), s.s22, s.ntk),
         "undefined function"),
        (lambda self, s, symbols=None: KernelState(s.s11, s.s12 / sp.Integer(0), s.s22, s.ntk),
         "is not finite"),
        (lambda self, s, symbols=None: KernelState(s.s11, s.s12 + s.ntk, s.s22, s.ntk),
         "depends on Θ"),
        (lambda self, s, symbols=None: KernelState(2 * s.s11, s.s12, s.s22, s.ntk),
         "diagonal"),
    ],
)
def test_bad_maps_are_refused_at_construction_naming_the_layer(apply, message):
    with pytest.raises(NTKSymError, match=f"layer 3: {message}" if "Bad" in message else message):
        serial(Dense(), Relu(), _layer(apply), Dense())


def test_a_layer_without_apply_and_an_unhashable_layer_are_refused():
    with pytest.raises(NTKSymError, match="Bare defines no apply"):
        serial(Dense(), dataclass(frozen=True)(type("Bare", (Layer,), {}))(), Dense())
    unhashable = _layer(lambda self, s, symbols=None: s, hashable=False)
    with pytest.raises(NTKSymError, match=r"layer 1\.2 \(Bad\) is not hashable"):
        serial(Residual(Dense(), unhashable), Dense())


def test_non_finite_values_at_run_time_are_refused_naming_the_layer():
    """log Σ₁₂ is a valid map where Σ₁₂ > 0 only: antipodal inputs leave its domain."""
    log_layer = _layer(
        lambda self, s, symbols=None: KernelState(sp.log(s.s11), sp.log(s.s12), sp.log(s.s22),
                                                  s.ntk))
    net = serial(Dense(), log_layer, Dense())
    X = np.array([[1.0, 2.0], [-1.0, -2.0]])
    with pytest.raises(NTKSymError, match=r"layer 2 \(Bad\): the layer's map gave non-finite"):
        net.ntk(X)
    with pytest.raises(NTKSymError, match="Bad: the map gave a value that is not a finite real"):
        net.ntk(X, backend="mpmath", dps=20)
