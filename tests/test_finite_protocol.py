"""The one finite network class against independent references, for vector and image networks:

* its empirical NTK against the rate-weighted outer product of parameter gradients obtained by
  central differences of the output along a random orthonormal basis of parameter space;
* one step of its training loop against the first-order prediction of ½‖f − y‖² and Θ̂;
* the Monte Carlo mean over networks of Θ̂ and K̂ against the infinite-width kernels;
* user-defined twins (`ntk_sym.finite.FiniteLayer`), one without and one with parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.errors import NTKSymError
from ntk_sym.finite import (
    FiniteConv,
    FiniteGlobalAvgPool,
    FiniteLayer,
    FiniteLayerNorm,
    FiniteResidual,
    gradient_descent,
    init,
)
from ntk_sym.finite.layers import FiniteDense
from ntk_sym.layers import (
    AvgPool,
    Conv,
    Dense,
    Erf,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    Relu,
    Residual,
    Tanh,
)
from ntk_sym.symbolic.maps import KernelState, Layer

RNG = np.random.default_rng(2024)
VECTORS = RNG.standard_normal((4, 3))
IMAGES = RNG.standard_normal((3, 5, 5, 2))


# -- user-defined twins -----------------------------------------------------------------------
@dataclass(frozen=True)
class FiniteScale(FiniteLayer):
    """y = c·x: no parameters, the protocol's defaults for init, rates and tangent_backward."""

    c: float

    def forward(self, params, x):
        return self.c * x, None

    def backward(self, params, cache, delta):
        return self.c * delta, ()


@dataclass(frozen=True)
class Scale(Layer):
    """out = c·x, so every kernel entry is multiplied by c²."""

    c: float = 1.0

    def apply(self, state, symbols=None):
        c2 = sp.nsimplify(self.c) ** 2
        return KernelState(c2 * state.s11, c2 * state.s12, c2 * state.s22, c2 * state.ntk)

    def finite(self) -> FiniteScale:
        return FiniteScale(self.c)


@dataclass(frozen=True)
class FiniteGain(FiniteLayer):
    """y = g ⊙ x with a trained per-feature gain g ~ 1 + N(0, 1)/2: parameters, the default
    per-point empirical-NTK term."""

    has_parameters = True

    def init(self, rng, in_shape, width, size):
        return (1.0 + 0.5 * rng.standard_normal((size, *in_shape)),), in_shape

    def forward(self, params, x):
        return params[0][:, None] * x, x

    def backward(self, params, x, delta):
        return params[0][:, None] * delta, ((delta * x).sum(axis=1),)


# -- the networks -------------------------------------------------------------------------------
SMOOTH = {
    "residual, layernorm, standard": (
        ntk_sym.serial(Dense(1.3, 0.2, "standard"), Tanh(), Residual(Dense(1.1, 0.3), Erf(),
                       Dense(0.9, 0.1)), LayerNorm(), Dense(1.2, 0.1)),
        VECTORS,
    ),
    "cnn gap, hidden dense": (
        ntk_sym.serial(Conv(3, 1.2, 0.3), Erf(), AvgPool(2, 1), Conv(2, padding="CIRCULAR"),
                       Erf(), GlobalAvgPool(), Dense(1.1, 0.2), Tanh(), Dense()),
        IMAGES,
    ),
    "cnn flatten, strides": (
        ntk_sym.serial(Conv(3, strides=2), Tanh(), Flatten(), Dense(1.0, 0.4)),
        IMAGES,
    ),
    # twins composed directly: the kernel side has no map yet for these in image networks
    "cnn residual, layernorm over channels": (
        (FiniteConv(3, w_std=1.2, b_std=0.1), Erf().finite(),
         FiniteResidual((FiniteConv(3), Tanh().finite(), FiniteConv((1, 1), b_std=0.2))),
         FiniteLayerNorm(), FiniteGlobalAvgPool(), FiniteDense(1.1, 0.3)),
        IMAGES,
    ),
    "user layers": (
        (FiniteDense(1.4, 0.1), FiniteScale(0.7), Erf().finite(), FiniteGain(),
         FiniteDense(1.1, 0.2)),
        VECTORS,
    ),
}


def _groups(layers, tree):
    """(twin, its parameters or gradients) for every twin with parameters, Residuals opened."""
    for layer, item in zip(layers, tree, strict=True):
        if isinstance(layer, FiniteResidual):
            yield from _groups(layer.block, item)
        elif layer.has_parameters:
            yield layer, item


def _arrays_and_rates(fnet):
    """Every parameter array with its learning-rate weight by definition: 1/fan_in on the
    weights of a standard Dense, 1 everywhere else."""
    out = []
    for twin, group in _groups(fnet.layers, fnet.params):
        standard = isinstance(twin, FiniteDense) and twin.standard
        out += [(a, 1.0 / a.shape[-1] if standard and k == 0 else 1.0)
                for k, a in enumerate(group)]
    return out


def _finite_difference_ntk(fnet, x1, x2, h=1e-6, seed=0):
    """Σ_k (f(θ + h√R q_k) − f(θ − h√R q_k))(…)ᵀ/(2h)² over an orthonormal basis q_k of a random
    rotation Q: Σ_k J√R q_k q_kᵀ √R J'ᵀ = J R J'ᵀ since Q Qᵀ = I."""
    arrays = _arrays_and_rates(fnet)
    sizes = [a.size for a, _ in arrays]
    scale = np.concatenate([np.full(a.size, np.sqrt(r)) for a, r in arrays])
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((sum(sizes), sum(sizes))))
    both = np.concatenate([x1, x2])
    columns = []
    for k in range(q.shape[1]):
        step = np.split(h * scale * q[:, k], np.cumsum(sizes)[:-1])
        for sign in (1.0, -1.0):
            for (a, _), s in zip(arrays, step, strict=True):
                a += sign * s.reshape(a.shape)
            columns.append(fnet.apply(both))
            for (a, _), s in zip(arrays, step, strict=True):
                a -= sign * s.reshape(a.shape)
    diffs = (np.array(columns[0::2]) - np.array(columns[1::2])) / (2 * h)  # (P, n1 + n2)
    return diffs[:, : len(x1)].T @ diffs[:, len(x1):]


@pytest.mark.parametrize("name", SMOOTH)
def test_empirical_ntk_is_the_gradient_outer_product(name):
    """Θ̂(X1, X2) of the layer-by-layer pullbacks against J R J'ᵀ from central differences along
    the P directions of a random orthonormal basis. Each difference quotient is off by ~h²|f'''|
    + 1e-16/h ≈ 1e-10 (h = 1e-6, O(1) outputs); a sum of P ≈ 100-200 such products of O(1)
    terms is off by ≲ 1e-8, so rtol 1e-6 and atol 1e-7 leave a margin without hiding any wrong
    term (a missing layer or rate changes entries at O(0.01-1))."""
    net, x = SMOOTH[name]
    fnet = init(net, width=3, seed=5)
    x2 = x[:2] + 0.3 * np.random.default_rng(1).standard_normal(x[:2].shape)
    fnet.apply(x)
    explicit = _finite_difference_ntk(fnet, x, x2)
    np.testing.assert_allclose(fnet.empirical_ntk(x, x2), explicit, rtol=1e-6, atol=1e-7)
    sym = fnet.empirical_ntk(x)
    np.testing.assert_allclose(sym, _finite_difference_ntk(fnet, x, x), rtol=1e-6, atol=1e-7)
    assert np.allclose(sym, sym.T, rtol=0, atol=1e-13)  # a Gram matrix, to rounding


TRAINED = {
    "mlp, residual, layernorm": (
        ntk_sym.serial(Dense(1.3, 0.2), Tanh(), Residual(Dense(1.1, 0.3), Erf(), Dense()),
                       LayerNorm(), Dense(1.2, 0.1)),
        VECTORS,
    ),
    "cnn": (ntk_sym.serial(Conv(3, 1.2, 0.1), Erf(), Conv(3), Tanh(), GlobalAvgPool(),
                           Dense(1.1, 0.2)), IMAGES),
}


@pytest.mark.parametrize("name", TRAINED)
def test_one_small_step_follows_the_half_squared_loss(name):
    """One step of `gradient_descent` (loss ½‖f(X) − y‖²) moves the training outputs by
    −ηΘ̂(f − y) and the loss by −η (f − y)ᵀΘ̂(f − y), up to O(η²): the remainder divided by η
    shrinks tenfold from η to η/10 (accepted 8-12, room for the O(η³) term and rounding). A
    loss normalised by N, or a step without the rates, would miss the prediction at O(1)."""
    net, x = TRAINED[name]
    y = np.cos(np.arange(len(x)))
    fnet = init(net, width=8, seed=3)
    f0 = fnet.apply(x)
    theta = fnet.empirical_ntk(x)
    move = -theta @ (f0 - y)
    loss_rate = -(f0 - y) @ theta @ (f0 - y)
    output_err, loss_err = [], []
    for lr in (1e-3, 1e-4):
        traj = gradient_descent(fnet, x, y, lr=lr, steps=1)
        np.testing.assert_allclose(traj.loss[0], 0.5 * np.sum((f0 - y) ** 2), rtol=1e-14)
        output_err.append(np.max(np.abs((traj.train[1] - traj.train[0]) / lr - move)))
        loss_err.append(abs((traj.loss[1] - traj.loss[0]) / lr - loss_rate))
        assert traj.loss[1] < traj.loss[0]
    assert 8 < output_err[0] / output_err[1] < 12, output_err
    assert 8 < loss_err[0] / loss_err[1] < 12, loss_err
    assert output_err[0] < 1e-3 * np.max(np.abs(move)) * 10


def test_several_outputs_train_on_the_summed_loss():
    """With K outputs the loss is ½ Σ_ik (f_k(x_i) − Y_ik)², so one step lowers it by
    η Σ_θ r_θ ‖∂ℒ/∂θ‖² + O(η²) (the gradients from `vjp` with cotangent f − Y, themselves checked
    against central differences of ℒ along a random direction: error ~1e-10)."""
    net = ntk_sym.serial(Conv(3), Erf(), GlobalAvgPool(), Dense(1.0, 0.2))
    fnet = init(net, width=6, seed=1, outputs=3)
    Y = np.random.default_rng(2).standard_normal((len(IMAGES), 3))
    f = fnet.apply(IMAGES)
    assert f.shape == (len(IMAGES), 3)
    grads = fnet.vjp(IMAGES, f - Y)
    pairs = _arrays_and_rates(fnet)
    flat = [g for _, group in _groups(fnet.layers, grads.tree) for g in group]
    v = [np.random.default_rng(k).standard_normal(a.shape) for k, (a, _) in enumerate(pairs)]
    h = 1e-6

    def loss_at(sign):
        for (a, _), d in zip(pairs, v, strict=True):
            a += sign * h * d
        value = 0.5 * np.sum((fnet.apply(IMAGES) - Y) ** 2)
        for (a, _), d in zip(pairs, v, strict=True):
            a -= sign * h * d
        return value

    directional = sum(np.sum(g * d) for g, d in zip(flat, v, strict=True))
    np.testing.assert_allclose(directional, (loss_at(1) - loss_at(-1)) / (2 * h), rtol=1e-7)
    rate = -sum(r * np.sum(g**2) for g, (_, r) in zip(flat, pairs, strict=True))
    errors = []
    for lr in (1e-3, 1e-4):
        traj = gradient_descent(fnet, IMAGES, Y, lr=lr, steps=1)
        assert traj.train.shape == (2, len(IMAGES), 3)
        errors.append(abs((traj.loss[1] - traj.loss[0]) / lr - rate))
    assert 8 < errors[0] / errors[1] < 12, errors


# -- Monte Carlo mean against the limit ---------------------------------------------------------
LIMITS = {
    "cnn": (ntk_sym.serial(Conv(3, 1.3, 0.2), Relu(), Conv(3), Erf(), GlobalAvgPool(),
                           Dense(1.1, 0.3)), RNG.standard_normal((3, 4, 4, 2)), 96),
    # Every activation follows a Dense, whose units are Gaussian in the limit: the kernel map
    # of an activation assumes Gaussian inputs (after LayerNorm of ReLU features they are not)
    "residual, layernorm": (
        ntk_sym.serial(Dense(1.2, 0.1), Erf(), Residual(Dense(1.1, 0.2), Relu(), Dense(0.9)),
                       LayerNorm(), Dense(1.3, 0.2), Tanh(), Dense(1.1, 0.1)),
        VECTORS,
        384,
    ),
}


@pytest.mark.parametrize("name", LIMITS)
def test_monte_carlo_mean_of_the_empirical_kernels_is_the_limit(name):
    """The mean of Θ̂ and K̂ over many networks of width n = 64 against `net.ntk`/`net.nngp`.
    The mean differs from the limit by O(1/n) and scatters with the standard error (SE) of the
    draws; every entry must lie within 4 SE + 1/n of the largest entry. Measured: every entry
    within 2.4 SE, the largest deviations 1.2% (CNN, SE 1% over 96 networks) and 2.1%
    (residual, SE ≤ 1.5% over 384) of the largest entry. A wrong layer (a missing σ_w², wrong
    rates, the LayerNorm gain) moves the kernels by tens of percent."""
    net, x, members = LIMITS[name]
    width = 64
    limits = {"ntk": net.ntk(x), "nngp": net.nngp(x)}
    samples = {"ntk": [], "nngp": []}
    for chunk in range(members // 16):
        ens = init(net, width, seed=np.random.SeedSequence([7, chunk]), ensemble=16)
        samples["ntk"].append(ens.empirical_ntk(x))
        samples["nngp"].append(ens.empirical_nngp(x))
    for kind, limit in limits.items():
        values = np.concatenate(samples[kind])
        mean, sem = values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(len(values))
        allowed = 4 * sem + np.abs(limit).max() / width
        assert np.all(np.abs(mean - limit) < allowed), (kind, mean, limit, sem)


# -- user layers ----------------------------------------------------------------------------
def test_a_user_layer_twin_plugs_into_finite_init():
    """serial(…, Scale(c), Dense(σ_w)) is serial(…, Dense(c·σ_w)) for the finite network: the
    readout sees (σ_w/√n) W (c a) = (cσ_w/√n) W a, with the same draws (Scale has no
    parameters, so the generators stay the same), so outputs and Θ̂ agree to rounding."""
    c = 1.3
    scaled = ntk_sym.serial(Dense(1.2, 0.1), Tanh(), Scale(c), Dense(0.9, 0.2))
    folded = ntk_sym.serial(Dense(1.2, 0.1), Tanh(), Dense(0.9 * c, 0.2))
    a, b = init(scaled, 32, seed=4), init(folded, 32, seed=4)
    np.testing.assert_allclose(a.apply(VECTORS), b.apply(VECTORS), rtol=1e-13)
    np.testing.assert_allclose(a.empirical_ntk(VECTORS), b.empirical_ntk(VECTORS), rtol=1e-12)
    assert isinstance(a.layers[2], FiniteScale)
    # the same gradients for the same parameters, so training stays together to rounding
    traj = gradient_descent(a, VECTORS, np.ones(len(VECTORS)), lr=0.1, steps=3)
    other = gradient_descent(b, VECTORS, np.ones(len(VECTORS)), lr=0.1, steps=3)
    np.testing.assert_allclose(traj.train, other.train, rtol=1e-11)


def test_a_layer_without_a_twin_is_named():
    @dataclass(frozen=True)
    class Bare(Layer):
        def apply(self, state, symbols=None):
            return state

    net = ntk_sym.serial(Dense(), Residual(Dense(), Bare()), Dense())
    with pytest.raises(NTKSymError, match=r"layer 2\.2 \(.*Bare.*\) has no finite twin"):
        init(net, 4)
