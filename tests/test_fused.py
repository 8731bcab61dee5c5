"""The fused hidden layer (numba, `ntk_sym.compile.fused`) and the NumPy path it replaces.

Both paths are held to the accuracy tests' criterion against the 60-digit mpmath recursion
(1e-12 relative to √(KᵢᵢKⱼⱼ) on the adversarial inputs): the fused loop is the default, so
`test_kernels_accuracy` covers it; here the NumPy path (numba missing, and CuPy's) is run on
the same cases, and the compiled loop itself is checked against the formula it implements.
"""

import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.compile import duals, fused, layers
from ntk_sym.symbolic.stable import C
from ntk_sym.symbolic.symbols import theta
from tests.conftest import relative_entry_error

TOL = 1e-12


def _clear_compiled() -> None:
    duals._CACHE.clear()
    layers.compile_network.cache_clear()
    fused.fused_layer.cache_clear()
    fused._numba.cache_clear()


@pytest.fixture
def numpy_path(monkeypatch):
    """The engine as it runs without numba: every angle form compiled with ``fused=None``."""
    _clear_compiled()
    monkeypatch.setattr(fused, "_numba", lambda: None)
    yield
    monkeypatch.undo()
    _clear_compiled()


CASES = [
    ("relu", {}, 2, 1.5, 0.1, "ntk"),
    ("relu", {}, 20, 1.2, 0.3, "ntk"),
    ("relu", {}, 3, 1.3, 0.2, "standard"),
    ("leaky_relu", {"alpha": 0.2}, 5, 1.5, 0.1, "ntk"),
    ("abs", {}, 5, 1.0, 0.1, "ntk"),
    ("arccos", {"order": 2}, 3, 1.0, 0.1, "ntk"),
    # Ṫ = 0 (no Θ term); degree-0 duals are non-smooth in θ, so the pair 1e-9 apart keeps only
    # ~1e-11 (test_kernels_accuracy's step test): the tolerance of this case is 1e-10
    ("step", {}, 3, 1.2, 0.1, "ntk"),
]
TOLERANCE = {"step": 1e-10}


def _check(net, X1, X2, tol):
    K, T = net.kernels(X1, X2)
    K_ref, T_ref = (a.astype(float) for a in net.kernels(X1, X2, backend="mpmath", dps=60))
    diags = [np.diag(a).astype(float) for X in (X1, X2)
             for a in net.kernels(X, backend="mpmath", dps=60)]
    assert relative_entry_error(K, K_ref, diags[0], diags[2]).max() < tol
    assert relative_entry_error(T, T_ref, diags[1], diags[3]).max() < tol


@pytest.mark.parametrize("name,params", [(c[0], c[1]) for c in CASES])
def test_angle_forms_get_the_fused_loop(name, params):
    """With numba every angle-form dual has the loop, so `test_kernels_accuracy` (relu at
    depths 1–20, leaky ReLU, abs, arc-cosine, standard parameterization, step) runs it."""
    phi = ntk_sym.mlp_spec(ntk_sym.mlp(name, **params)).activation
    assert duals.compile_dual(phi).angle_form.fused is not None


@pytest.mark.parametrize("name,params,depth,w_std,b_std,parameterization", CASES)
def test_numpy_path_matches_mpmath(numpy_path, nasty_inputs, name, params, depth, w_std, b_std,
                                   parameterization):
    net = ntk_sym.mlp(name, depth=depth, w_std=w_std, b_std=b_std,
                      parameterization=parameterization, **params)
    assert duals.compile_dual(ntk_sym.mlp_spec(net).activation).angle_form.fused is None
    _check(net, *nasty_inputs, TOLERANCE.get(name, TOL))


def test_nngp_only_and_float32_through_the_fused_loop():
    """NNGP alone skips the NTK's output; float32 tiles stay within float32 rounding of the
    float64 kernels (1e-5 relative: ~100 ulps of 6e-8 over 5 layers)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 7))
    net = ntk_sym.mlp("relu", depth=5, w_std=1.5, b_std=0.1)
    K, T = net.kernels(X)
    np.testing.assert_array_equal(net.nngp(X), K)
    K32, T32 = net.kernels(X, dtype=np.float32)
    d = np.diag(T)
    assert relative_entry_error(T32.astype(float), T, d, d).max() < 1e-5


def test_compiled_loop_computes_its_formula(tmp_path, monkeypatch):
    """The loop of a made-up angle form against the module docstring's formula in NumPy."""
    monkeypatch.setenv("NTK_SYM_CACHE", str(tmp_path))
    S = sp.Symbol("s", nonnegative=True)
    J = 3 * S + (sp.pi - theta) * C**2
    K = sp.pi - theta / 2
    loop = fused.fused_layer(J, K, (theta, C, S))
    assert loop is not None and list((tmp_path / "fused").glob("layer_*.py"))
    rng = np.random.default_rng(0)
    th = rng.uniform(0.1, 3.0, (5, 6))
    cos, sin, ntk = np.cos(th), np.sin(th), rng.uniform(size=(5, 6))
    u1, w1, i1 = rng.uniform(0.5, 1, (3, 5))
    u2, w2, i2 = rng.uniform(0.5, 1, (3, 6))
    b, s = 0.3, 2.0
    out = [np.empty((5, 6)) for _ in range(4)]
    near = loop(th, cos, sin, ntk, u1, u2, w1, w2, i1, i2, b, s, True, 0.5, *out)
    scaled = np.outer(u1, u2) * (3 * sin + (np.pi - th) * cos**2)
    cov = scaled + b
    ntk_ref = scaled / s + 1 + np.outer(w1, w2) * (np.pi - th / 2) * ntk
    cos_ref = cov * np.outer(i1, i2)
    np.testing.assert_allclose(out[0], cov, rtol=1e-15)
    np.testing.assert_allclose(out[1], ntk_ref, rtol=1e-15)
    np.testing.assert_allclose(out[2], cos_ref, rtol=1e-15)
    sin2 = 1 - cos_ref**2
    np.testing.assert_allclose(out[3], np.sqrt(np.maximum(sin2, 0)), rtol=1e-14, atol=1e-15)
    assert near == np.count_nonzero(sin2 < 0.5)


def test_unwritable_cache_compiles_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NTK_SYM_CACHE", str(blocker))
    S = sp.Symbol("s", nonnegative=True)
    loop = fused.fused_layer(S + 2 * (sp.pi - theta) * C, 2 * (sp.pi - theta), (theta, C, S))
    assert loop is not None
