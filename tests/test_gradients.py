"""Analytic σ-gradients of any layer list, and the scikit-learn kernels built on them.

Independent reference: central differences of the network's own kernels (`net.kernels`, the
vector engine or the conv engine, which share no code with the tangent evaluator) in the log σ
of one layer at a time, or of all layers together (tied). Step h = 1e-5 in log σ: truncation
~h²·|∂³K| ≈ 1e-10 and rounding ~1e-16/h ≈ 1e-11 relative to the kernel scale √(K_ii K_jj), so
1e-6 leaves four digits of margin for rounding in the engines (tanh: the Hermite series or the
2-D rule, each ~1e-12).
"""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import sympy as sp

from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.gradients import diagonal_gradients, kernel_gradients
from ntk_sym.layers import (
    AvgPool,
    Conv,
    Dense,
    Erf,
    Flatten,
    Gelu,
    GlobalAvgPool,
    Identity,
    LayerNorm,
    Relu,
    Residual,
    Tanh,
    serial,
)
from ntk_sym.symbolic.maps import KernelMap, KernelState
from tests.conftest import relative_entry_error

FD_STEP, GRAD_RTOL = 1e-5, 1e-6

#: A residual block with tanh, LayerNorm, Identity and unequal σ's per layer.
RESIDUAL_LN_TANH = serial(
    Dense(1.3, 0.2), Tanh(), Residual(Dense(0.9, 0.1), Relu(), Dense(1.1, 0.3)), LayerNorm(),
    Identity(), Dense(1.2, 0.4), Erf(), Dense(1.0, 0.1),
)  # fmt: skip
CNTK_GAP = serial(Conv((3, 3), 1.3, 0.2), Relu(), Conv((3, 3), 1.1, 0.1), Relu(),
                  GlobalAvgPool(), Dense(1.2, 0.1))  # fmt: skip
CNTK_POOL = serial(Conv((3, 3), 1.2, 0.3), Gelu(), AvgPool(2), Conv((2, 2), 0.9, 0.0, "VALID"),
                   Relu(), Flatten(), Dense(1.1, 0.2))  # fmt: skip
CNTK_TANH = serial(Conv(3, 1.3, 0.2, "CIRCULAR"), Tanh(), Flatten(), Dense(1.2, 0.1))


def _vectors(seed: int = 0) -> np.ndarray:
    """Rows of mixed norms with an exact duplicate (rows 1 and 4)."""
    X = np.random.default_rng(seed).normal(size=(6, 4)) * [[1.0], [0.5], [2], [1], [1], [3]]
    X[4] = X[1]
    return X


def _images(seed: int = 0) -> np.ndarray:
    """Four 5×5×2 images: a duplicate (0 and 2) and one with a zero band (zero patches)."""
    X = np.random.default_rng(seed).normal(size=(4, 5, 5, 2))
    X[2] = X[0]
    X[1, :2] = 0.0
    return X


def _scaled(layers, factor: float, which: str, where: str | None, prefix: str = ""):
    """The layers with σ_which of the layer at `where` (every Dense/Conv if None) × factor."""
    out = []
    for i, m in enumerate(layers, 1):
        here = f"{prefix}{i}"
        if m.kind == "residual":
            out.append(Residual(*_scaled(m.block, factor, which, where, f"{here}.")))
        elif hasattr(m, "w_std") and where in (None, here):
            out.append(replace(m, **{which: getattr(m, which) * factor}))
        else:
            out.append(m)
    return out


def _at_sigmas(layers, w_std: float, b_std: float):
    """The layers with every Dense and Conv at (w_std, b_std)."""
    return [
        Residual(*_at_sigmas(m.block, w_std, b_std)) if m.kind == "residual"
        else replace(m, w_std=w_std, b_std=b_std) if hasattr(m, "w_std") else m
        for m in layers
    ]  # fmt: skip


def _central_difference(net, X, which: str, where: str | None) -> tuple[np.ndarray, ...]:
    up = serial(*_scaled(net.layers, np.exp(FD_STEP), which, where)).kernels(X)
    down = serial(*_scaled(net.layers, np.exp(-FD_STEP), which, where)).kernels(X)
    return tuple((u - d) / (2 * FD_STEP) for u, d in zip(up, down, strict=True))


def _check_against_differences(net, X, tied: bool) -> None:
    g = kernel_gradients(net, X, tied=tied)
    K, T = net.kernels(X)
    # the primal kernels are the engine's to its rounding (series/2-D rule for tanh: ~1e-12)
    assert relative_entry_error(g.ntk, T, np.diag(T), np.diag(T)).max() < 1e-10
    assert relative_entry_error(g.nngp, K, np.diag(K), np.diag(K)).max() < 1e-10
    for column, name in enumerate(g.parameters):
        *position, which = name.split()
        where = None if tied else position[1]
        fd_nngp, fd_ntk = _central_difference(net, X, which, where)
        for analytic, fd, values in ((g.d_nngp, fd_nngp, K), (g.d_ntk, fd_ntk, T)):
            assert np.all(np.isfinite(analytic[..., column]))
            err = relative_entry_error(analytic[..., column], fd, np.diag(values), np.diag(values))
            assert err.max() < GRAD_RTOL, (name, err.max())


@pytest.mark.parametrize("tied", [True, False])
def test_residual_layernorm_tanh_network_matches_central_differences(tied):
    _check_against_differences(RESIDUAL_LN_TANH, _vectors(), tied)


@pytest.mark.parametrize(
    "net, tied",
    [(CNTK_GAP, True), (CNTK_GAP, False), (CNTK_POOL, True), (CNTK_POOL, False),
     (CNTK_TANH, False)],
    ids=["gap-tied", "gap", "pool-tied", "pool", "tanh"],
)
def test_cntk_matches_central_differences(net, tied):
    _check_against_differences(net, _images(), tied)


def test_standard_parameterization_and_mixed_activations():
    net = serial(Dense(1.4, 0.3, "standard"), Gelu(), Dense(1.1, 0.2, "standard"), Relu(),
                 Dense(0.8, 0.5, "standard"))  # fmt: skip
    _check_against_differences(net, _vectors(1), tied=False)


def test_parameter_names_and_the_tied_sum():
    g = kernel_gradients(RESIDUAL_LN_TANH, _vectors(), tied=False)
    assert g.parameters == tuple(
        f"layer {w} {p}" for w in ("1", "3.1", "3.3", "6", "8") for p in ("w_std", "b_std")
    )
    tied = kernel_gradients(RESIDUAL_LN_TANH, _vectors())
    assert tied.parameters == ("w_std", "b_std") and tied.d_ntk.shape == (6, 6, 2)
    per_layer = g.d_ntk.reshape(6, 6, -1, 2).sum(axis=2)
    np.testing.assert_allclose(tied.d_ntk, per_layer, rtol=1e-12, atol=1e-14)


def test_cross_gram_and_diagonal_agree_with_the_square_one():
    X = _images()
    full = kernel_gradients(CNTK_GAP, X)
    cross = kernel_gradients(CNTK_GAP, X[:3], X[1:])
    np.testing.assert_allclose(cross.d_ntk, full.d_ntk[:3, 1:], rtol=1e-12, atol=1e-14)
    diag = diagonal_gradients(CNTK_GAP, X)
    index = np.arange(len(X))
    np.testing.assert_allclose(diag.d_nngp, full.d_nngp[index, index], rtol=1e-12)
    np.testing.assert_allclose(diag.ntk, full.ntk[index, index], rtol=1e-12)


@dataclass(frozen=True)
class _Scale(KernelMap):
    """A layer defined by its map alone: out = c·x, no parameters."""

    c: float = 1.0

    def apply(self, state, symbols=None):
        c2 = sp.nsimplify(self.c) ** 2
        return KernelState(c2 * state.s11, c2 * state.s12, c2 * state.s22, c2 * state.ntk)


def test_a_layer_defined_by_its_map_alone_has_its_tangent():
    """Scale(c) then Dense(σ_w) has the kernels of Dense(c·σ_w), and the same derivatives in
    log σ_w (d log(cσ_w) = d log σ_w): the tangent map comes from `apply` by differentiation."""
    X = _vectors()
    scaled = serial(Dense(1.2, 0.1), Relu(), _Scale(1.3), Dense(1.1, 0.2))
    folded = serial(Dense(1.2, 0.1), Relu(), Dense(1.1 * 1.3, 0.2))
    a, b = kernel_gradients(scaled, X, tied=False), kernel_gradients(folded, X, tied=False)
    assert a.parameters == ("layer 1 w_std", "layer 1 b_std", "layer 4 w_std", "layer 4 b_std")
    for x, y in ((a.ntk, b.ntk), (a.d_ntk, b.d_ntk), (a.d_nngp, b.d_nngp)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


def test_bad_networks_and_inputs_get_clear_errors():
    with pytest.raises(InputError, match="images"):
        kernel_gradients(CNTK_GAP, _vectors())
    with pytest.raises(InputError, match="GlobalAvgPool or Flatten"):
        kernel_gradients(serial(Conv((3, 3)), Relu(), Dense()), _images())
    X = _vectors()
    X[2] = 0.0
    with pytest.raises(NTKSymError, match=r"layer 3 \(LayerNorm\).*zero variance"):
        kernel_gradients(serial(Dense(), Tanh(), LayerNorm(), Dense()), X)


# -- scikit-learn ------------------------------------------------------------------------------
sklearn = pytest.importorskip("sklearn")

from scipy.optimize import minimize  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import WhiteKernel  # noqa: E402

from ntk_sym.sklearn import NNGP, NTK  # noqa: E402


def _theta_differences(kernel, X) -> np.ndarray:
    out = []
    for i in range(len(kernel.theta)):
        step = FD_STEP * np.eye(len(kernel.theta))[i]
        up = kernel.clone_with_theta(kernel.theta + step)(X)
        down = kernel.clone_with_theta(kernel.theta - step)(X)
        out.append((up - down) / (2 * FD_STEP))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize(
    "cls, net, shape",
    [(NTK, RESIDUAL_LN_TANH, None), (NNGP, RESIDUAL_LN_TANH, None), (NTK, CNTK_GAP, (5, 5, 2)),
     (NNGP, CNTK_POOL, (5, 5, 2))],
)  # fmt: skip
def test_sklearn_kernel_of_any_network(cls, net, shape):
    X = _vectors() if shape is None else _images().reshape(4, -1)
    kernel = cls(network=net, w_std=1.2, b_std=0.3, input_shape=shape)
    assert kernel.get_params()["network"] is net
    assert clone(kernel) == kernel
    # every Dense and Conv layer takes the kernel's σ's
    tied = serial(*_at_sigmas(net.layers, 1.2, 0.3))
    images = X if shape is None else X.reshape(len(X), *shape)
    expected = getattr(tied, cls._kind)(images)
    np.testing.assert_array_equal(kernel(X), expected)
    np.testing.assert_allclose(kernel.diag(X), np.diag(expected), rtol=1e-12)
    K, G = kernel(X, eval_gradient=True)
    np.testing.assert_allclose(K, expected, rtol=1e-10, atol=1e-14)
    fd = _theta_differences(kernel, X)
    for i in range(G.shape[-1]):
        assert relative_entry_error(G[..., i], fd[..., i], np.diag(K), np.diag(K)).max() < GRAD_RTOL


def test_sklearn_rebuilds_every_layer_inside_residual_blocks():
    kernel = NTK(network=RESIDUAL_LN_TANH, w_std=1.7, b_std=0.05)
    sigmas = []

    def walk(layers):
        for m in layers:
            if m.kind == "residual":
                walk(m.block)
            elif hasattr(m, "w_std"):
                sigmas.append((m.w_std, m.b_std))

    walk(kernel.kernel_network().layers)
    assert sigmas == [(1.7, 0.05)] * 5


def _few_steps(objective, theta, bounds):
    """scikit-learn's L-BFGS-B with the analytic gradient, stopped after a few iterations (the
    test asks that the σ's move uphill, not for the optimum; that keeps it to seconds)."""
    result = minimize(objective, theta, method="L-BFGS-B", jac=True, bounds=bounds,
                      options={"maxiter": 6})  # fmt: skip
    return result.x, result.fun


def test_gp_on_digits_with_a_cntk_learns_the_sigmas():
    """100 digits (8×8×1), a two-layer CNTK: the evidence's analytic gradient against central
    differences of the evidence itself, and the optimiser moving both σ's uphill."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:100] / 16.0, (y[:100] - 4.5) / 3.0
    cntk = serial(Conv((3, 3)), Relu(), Conv((3, 3)), Relu(), Flatten(), Dense())
    kernel = NTK(network=cntk, w_std=1.0, b_std=0.5, input_shape=(8, 8, 1)) + WhiteKernel(0.5)
    gp = GaussianProcessRegressor(kernel, optimizer=_few_steps, random_state=0)
    gp.fit(X, y)
    theta = kernel.theta
    lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
    for i in range(len(theta)):
        step = 1e-5 * np.eye(len(theta))[i]
        fd = (gp.log_marginal_likelihood(theta + step) - gp.log_marginal_likelihood(theta - step))
        fd /= 2e-5
        # the evidence is O(100): 1e-6 of max(1, |gradient|) is well above its rounding ~1e-9
        assert abs(grad[i] - fd) < 1e-6 * max(1.0, abs(fd)), (i, grad[i], fd)
    assert gp.log_marginal_likelihood_value_ > lml + 1.0
    fitted = gp.kernel_.k1
    assert fitted.w_std != 1.0 and fitted.b_std != 0.5
