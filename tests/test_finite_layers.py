"""The finite layer twins: each pullback against finite differences of its forward map, LayerNorm's
Jacobian against its derivation, backprop and the factorised empirical NTK of residual, LayerNorm
and mixed-activation networks against an explicit finite-difference Jacobian, and layer-list
errors."""

import numpy as np
import pytest
from finite_reference import Act, Norm, Res, StandIn
from finite_reference import Dense as DenseRecord

import ntk_sym
from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.finite import init
from ntk_sym.finite.layers import (
    FiniteDense,
    FiniteElementwise,
    FiniteIdentity,
    FiniteLayerNorm,
    FiniteResidual,
)
from ntk_sym.layers import Dense, Erf, Identity, LayerNorm, Relu, Residual, Softplus, Tanh
from ntk_sym.symbolic.activations import get

RNG = np.random.default_rng(77)
X3 = RNG.standard_normal((5, 3))
H = 1e-6  # central-difference step: truncation ~H² |f'''|, rounding ~1e-16/H, both ≲ 1e-10


def local_jacobian(forward, h: np.ndarray) -> np.ndarray:
    """∂forward(h)/∂h for one point h (n,) by central differences: (n_out, n)."""
    cols = []
    for j in range(h.size):
        step = np.zeros_like(h)
        step[j] = H
        cols.append((forward(h + step) - forward(h - step)) / (2 * H))
    return np.stack(cols, axis=1)


def test_layernorm_jacobian_is_the_derived_projection():
    h = RNG.standard_normal(7)
    norm = np.linalg.norm(h)
    unit = h / norm
    # J = ∂(√n h/‖h‖)/∂h = (√n/‖h‖)(I − ĥĥᵀ), derived by the quotient rule.
    derived = np.sqrt(7) / norm * (np.eye(7) - np.outer(unit, unit))
    twin = FiniteLayerNorm()
    numeric = local_jacobian(lambda v: twin.forward((), v[None, None, :])[0][0, 0], h)
    np.testing.assert_allclose(numeric, derived, rtol=1e-7, atol=1e-8)
    # the pullback is Jᵀδ
    delta = RNG.standard_normal(7)
    _, saved = twin.forward((), h[None, None, :])
    pulled = twin.backward((), saved, delta[None, None, :])[0][0, 0]
    np.testing.assert_allclose(pulled, derived.T @ delta, rtol=1e-12, atol=1e-14)


def test_layernorm_output_has_unit_mean_square_and_refuses_zero_variance():
    y, _ = FiniteLayerNorm().forward((), RNG.standard_normal((2, 4, 9)) * 5.0)
    np.testing.assert_allclose(np.mean(y**2, axis=-1), 1.0, rtol=1e-14)
    h = RNG.standard_normal((1, 3, 9))
    h[0, 1] = 0.0
    with pytest.raises(InputError, match="LayerNorm.*zero"):
        FiniteLayerNorm().forward((), h)


@pytest.mark.parametrize(
    "twin",
    [
        FiniteElementwise.of(get("erf")),
        FiniteElementwise.of(get("tanh")),
        FiniteElementwise.of(get("softplus")),
        FiniteLayerNorm(),
        FiniteIdentity(),
    ],
    ids=["erf", "tanh", "softplus", "layernorm", "identity"],
)
def test_each_pullback_is_the_transposed_jacobian(twin):
    h = RNG.standard_normal(6)
    delta = RNG.standard_normal(6)
    jac = local_jacobian(lambda v: twin.forward((), v[None, None, :])[0][0, 0], h)
    _, saved = twin.forward((), h[None, None, :])
    pulled = twin.backward((), saved, delta[None, None, :])[0][0, 0]
    np.testing.assert_allclose(pulled, jac.T @ delta, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("standard", [False, True])
def test_dense_pullback_is_the_transposed_jacobian(standard):
    twin = FiniteDense(1.3, 0.4, standard)
    params, out_shape = twin.init(np.random.default_rng(0), (5,), 4, 1)
    assert out_shape == (4,)
    a = RNG.standard_normal(5)
    jac = local_jacobian(lambda v: twin.forward(params, v[None, None, :])[0][0, 0], a)
    delta = RNG.standard_normal(4)
    _, cache = twin.forward(params, a[None, None, :])
    pulled = twin.backward(params, cache, delta[None, None, :])[0][0, 0]
    np.testing.assert_allclose(pulled, jac.T @ delta, rtol=1e-7, atol=1e-8)


ARCHITECTURES = {
    "mixed": ntk_sym.serial(Dense(1.2, 0.4), Relu(), Dense(1.1, 0.2), Erf(), Dense(1.3, 0.3)),
    "residual": ntk_sym.serial(
        Dense(1.2, 0.3),
        Tanh(),
        Residual(Dense(0.9, 0.1), Erf(), Dense(1.1, 0.2)),
        Residual(Softplus(), Dense(0.7, 0.0)),
        Dense(1.0, 0.2),
    ),
    "layernorm": ntk_sym.serial(
        Dense(1.5, 0.2), LayerNorm(), Tanh(), Dense(1.2, 0.1), Relu(), LayerNorm(), Dense()
    ),
    "standard": ntk_sym.serial(
        Dense(1.3, 0.2, "standard"),
        Erf(),
        Residual(Dense(1.1, 0.3, "standard")),
        LayerNorm(),
        Dense(1.2, 0.1),
    ),
    "input-side": ntk_sym.serial(Tanh(), LayerNorm(), Identity(), Dense(1.4, 0.5), Relu(), Dense()),
}


def parameters(fnet):
    return [p for pair in zip(fnet.weights, fnet.biases, strict=True) for p in pair]


def fd_jacobian(fnet, x):
    """∂f(xᵢ)/∂θ_p by central differences, θ flattened over all Dense layers: (n, #θ)."""
    columns = []
    for p in parameters(fnet):
        flat = p.reshape(-1)
        for k in range(flat.size):
            keep = flat[k]
            flat[k] = keep + H
            up = fnet.apply(x)
            flat[k] = keep - H
            down = fnet.apply(x)
            flat[k] = keep
            columns.append((up - down) / (2 * H))
    return np.stack(columns, axis=1)


def dense_twins(layers):
    """The Dense twins in forward order, Residual blocks opened."""
    for layer in layers:
        if isinstance(layer, FiniteResidual):
            yield from dense_twins(layer.block)
        elif isinstance(layer, FiniteDense):
            yield layer


def rate_vector(fnet):
    """Learning-rate weights by definition: 1, or 1/fan_in on weights of a standard Dense."""
    rates = []
    twins = list(dense_twins(fnet.layers))
    for dense, w, b in zip(twins, fnet.weights, fnet.biases, strict=True):
        rates += [1.0 / w.shape[-1] if dense.standard else 1.0] * w.size + [1.0] * b.size
    return np.array(rates)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_backprop_matches_finite_differences(name):
    fnet = init(ARCHITECTURES[name], width=6, seed=11, input_dim=3)
    jac = fd_jacobian(fnet, X3)
    g = RNG.standard_normal(X3.shape[0])
    grads = fnet.vjp(X3, g)
    flat = np.concatenate(
        [p.ravel() for pair in zip(grads.weights, grads.biases, strict=True) for p in pair]
    )
    # Central differences on O(1) outputs: truncation ~H², rounding ~1e-16/H = 1e-10.
    np.testing.assert_allclose(flat, g @ jac, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_factorised_ntk_equals_explicit_jacobian_product(name):
    fnet = init(ARCHITECTURES[name], width=6, seed=12, input_dim=3)
    x2 = RNG.standard_normal((4, 3))
    j1, j2 = fd_jacobian(fnet, X3), fd_jacobian(fnet, x2)
    explicit = (j1 * rate_vector(fnet)) @ j2.T
    # Jacobians from finite differences (~1e-9 absolute each) summed over ~200 parameters.
    np.testing.assert_allclose(fnet.empirical_ntk(X3, x2), explicit, rtol=1e-6, atol=1e-6)
    sym = fnet.empirical_ntk(X3)
    assert np.allclose(sym, sym.T, rtol=0, atol=1e-13)  # a Gram matrix, to rounding


def test_nngp_is_the_covariance_over_the_readout_weights():
    # K̂ = σ_w² ⟨a, a'⟩/n + σ_b², a the readout's input: by definition the covariance of
    # f = (σ_w/√n) w·a + σ_b b over w, b ~ N(0, 1), checked by drawing many readouts.
    net = ARCHITECTURES["residual"]
    fnet = init(net, width=8, seed=5, input_dim=3)
    a = fnet.forward(X3).readout_input[0]
    readout = fnet.layers[-1]
    draws = np.random.default_rng(6).standard_normal((200_000, a.shape[1] + 1))
    f = readout.w_std / np.sqrt(a.shape[1]) * draws[:, :-1] @ a.T + readout.b_std * draws[:, -1:]
    empirical = f.T @ f / len(f)
    # Monte Carlo covariance of 2e5 draws: standard error ≈ √2·K/√2e5 ≈ 0.3% of K; 2% is > 5 SE.
    np.testing.assert_allclose(empirical, fnet.empirical_nngp(X3), rtol=0.02, atol=0.02)


def test_the_layers_twins_are_the_finite_networks_of_the_same_description():
    # Twins built here from plain records against those of ntk_sym.layers (`.finite()`):
    # same draws, same arithmetic, so the same network bit for bit.
    records = StandIn(
        DenseRecord(1.3, 0.2, True),
        Act("erf"),
        Res((DenseRecord(1.1, 0.3), Act("relu"), DenseRecord(0.9, 0.1))),
        Norm(),
        DenseRecord(1.2, 0.1),
    )
    a, b = init(records, 12, seed=8), init(records.serial, 12, seed=8)
    np.testing.assert_array_equal(a.apply(X3), b.apply(X3))
    np.testing.assert_array_equal(a.empirical_ntk(X3), b.empirical_ntk(X3))


def test_same_seed_and_layers_give_the_same_network_as_the_mlp_description():
    mlp = ntk_sym.mlp("erf", depth=2, w_std=1.3, b_std=0.2)
    hand = (FiniteDense(1.3, 0.2), FiniteElementwise.of(get("erf"))) * 2 + (FiniteDense(1.3, 0.2),)
    a, b = init(mlp, 16, seed=3), init(hand, 16, seed=3)
    np.testing.assert_array_equal(a.apply(X3), b.apply(X3))
    np.testing.assert_array_equal(a.empirical_ntk(X3), b.empirical_ntk(X3))


def test_impossible_layer_lists_are_named():
    with pytest.raises(NTKSymError, match="empty"):
        init((), width=4)
    with pytest.raises(NTKSymError, match="readout.*FiniteElementwise"):
        init((FiniteDense(), FiniteElementwise.of(get("relu"))), width=4)
    with pytest.raises(NTKSymError, match="layer 1.*not a finite layer"):
        init((FiniteDense(), "relu", FiniteDense()), width=4)
    with pytest.raises(NTKSymError, match="Residual with an empty block"):
        init((FiniteDense(), FiniteResidual(()), FiniteDense()), width=4)
    with pytest.raises(NTKSymError, match="w_std"):
        FiniteDense(w_std=0.0)
    # A Residual before any Dense sees the input's d features; a Dense block maps them to the
    # width, so block(x) + x does not fit unless d equals the width.
    early = (FiniteResidual((FiniteDense(),)), FiniteDense())
    with pytest.raises(InputError, match="layer 0.*Residual.*width 3 to 8"):
        init(early, width=8).apply(X3)
    assert init(early, width=3).apply(X3).shape == (5,)
    with pytest.raises(InputError, match="LayerNorm"):
        init((FiniteLayerNorm(), FiniteDense()), width=4).apply(np.zeros((2, 3)))
