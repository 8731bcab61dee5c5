"""Finite networks: forward pass, backprop against finite differences, factorised empirical NTK
against the explicit (finite-difference) Jacobian product, ensembles, seeds and input errors."""

import numpy as np
import pytest

import ntk_sym
from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.finite import init

RNG = np.random.default_rng(1234)
X3 = RNG.standard_normal((5, 3))


def reference_forward(net, weights, biases, x):
    """The defining equations, written out for one network of the NTK parameterization."""
    spec = ntk_sym.mlp_spec(net)
    phi = {"tanh": np.tanh, "relu": lambda h: np.maximum(h, 0.0)}[spec.activation.name]
    a = x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = spec.w_std / np.sqrt(a.shape[1]) * a @ w.T + spec.b_std * b
        a = phi(h) if layer < spec.depth else h
    return a[:, 0]


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_forward_follows_the_defining_equations(act):
    net = ntk_sym.mlp(act, depth=3, w_std=1.4, b_std=0.3)
    fnet = init(net, width=17, seed=3, input_dim=3)
    ws = [w[0] for w in fnet.weights]
    bs = [b[0] for b in fnet.biases]
    # Same arithmetic in a different order: agreement to rounding.
    np.testing.assert_allclose(fnet.apply(X3), reference_forward(net, ws, bs, X3), rtol=1e-12)


def test_standard_parameterization_has_the_same_forward_pass():
    kwargs = dict(depth=2, w_std=1.3, b_std=0.2)
    ntk = init(ntk_sym.mlp("erf", **kwargs), width=33, seed=5)
    std = init(ntk_sym.mlp("erf", parameterization="standard", **kwargs), width=33, seed=5)
    # Same draws, the σ/√fan_in factor moved from the multiplier into the weight: rounding only.
    np.testing.assert_allclose(std.apply(X3), ntk.apply(X3), rtol=1e-12)


def parameters(fnet):
    return [p for pair in zip(fnet.weights, fnet.biases, strict=True) for p in pair]


def fd_jacobian(fnet, x, h=1e-6):
    """∂f(xᵢ)/∂θ_p by central differences, θ flattened over all layers: (n, #θ)."""
    columns = []
    for p in parameters(fnet):
        flat = p.reshape(-1)
        for k in range(flat.size):
            keep = flat[k]
            flat[k] = keep + h
            up = fnet.apply(x)
            flat[k] = keep - h
            down = fnet.apply(x)
            flat[k] = keep
            columns.append((up - down) / (2 * h))
    return np.stack(columns, axis=1)


def rate_vector(fnet):
    """Learning-rate weights by definition: 1, or 1/fan_in on weights of the standard param."""
    rates = []
    for w, b in zip(fnet.weights, fnet.biases, strict=True):
        standard = ntk_sym.mlp_spec(fnet.net).parameterization == "standard"
        rates += [1.0 / w.shape[-1] if standard else 1.0] * w.size + [1.0] * b.size
    return np.array(rates)


CASES = [
    ("tanh", "ntk", 2),
    ("erf", "standard", 2),
    ("relu", "ntk", 3),
    ("relu", "standard", 1),
    ("softplus", "ntk", 0),
]


@pytest.mark.parametrize("act,param,depth", CASES)
def test_backprop_matches_finite_differences(act, param, depth):
    net = ntk_sym.mlp(act, depth=depth, w_std=1.2, b_std=0.4, parameterization=param)
    fnet = init(net, width=6, seed=11, input_dim=3)
    jac = fd_jacobian(fnet, X3)
    g = RNG.standard_normal(X3.shape[0])
    grads = fnet.vjp(X3, g)
    flat = np.concatenate(
        [p.ravel() for pair in zip(grads.weights, grads.biases, strict=True) for p in pair]
    )
    # Central differences with h = 1e-6 on O(1) outputs: truncation ~h², rounding ~1e-16/h = 1e-10.
    np.testing.assert_allclose(flat, g @ jac, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("act,param,depth", CASES)
def test_factorised_ntk_equals_explicit_jacobian_product(act, param, depth):
    net = ntk_sym.mlp(act, depth=depth, w_std=1.2, b_std=0.4, parameterization=param)
    fnet = init(net, width=6, seed=12, input_dim=3)
    x2 = RNG.standard_normal((4, 3))
    j1, j2 = fd_jacobian(fnet, X3), fd_jacobian(fnet, x2)
    explicit = (j1 * rate_vector(fnet)) @ j2.T
    # Jacobians from finite differences (~1e-9 absolute each) summed over ~100 parameters.
    np.testing.assert_allclose(fnet.empirical_ntk(X3, x2), explicit, rtol=1e-6, atol=1e-6)
    sym = fnet.empirical_ntk(X3)
    assert np.allclose(sym, sym.T, rtol=0, atol=1e-13)  # a Gram matrix, to rounding


def test_dirac_activation_ntk_is_the_readout_gram():
    # φ' = 0 a.e. (step): only the readout layer's parameters move f, so Θ̂ = K̂ exactly.
    fnet = init(ntk_sym.mlp("step", depth=2, w_std=1.1, b_std=0.5), width=40, seed=2)
    np.testing.assert_allclose(fnet.empirical_ntk(X3), fnet.empirical_nngp(X3), rtol=1e-14)


def test_depth_zero_kernels_are_the_input_layer_kernel():
    net = ntk_sym.mlp("relu", depth=0, w_std=1.5, b_std=0.3)
    fnet = init(net, width=8, seed=0)
    sigma1 = 1.5**2 * X3 @ X3.T / 3 + 0.3**2
    # Θ⁽¹⁾ = Σ⁽¹⁾ = σ_w² x·x'/d + σ_b² holds exactly for the linear model: rounding only.
    np.testing.assert_allclose(fnet.empirical_ntk(X3), sigma1, rtol=1e-13)
    np.testing.assert_allclose(fnet.empirical_nngp(X3), sigma1, rtol=1e-13)


def test_ensemble_members_are_independent_networks():
    net = ntk_sym.mlp("tanh", depth=2, w_std=1.3, b_std=0.1)
    ens = init(net, width=16, seed=9, ensemble=3)
    out, ntk = ens.apply(X3), ens.empirical_ntk(X3)
    assert out.shape == (3, 5) and ntk.shape == (3, 5, 5)
    for k in range(3):
        member = ens.member(k)
        # Batched and unbatched matrix products: rounding only.
        np.testing.assert_allclose(member.apply(X3), out[k], rtol=1e-12)
        np.testing.assert_allclose(member.empirical_ntk(X3), ntk[k], rtol=1e-12)
    assert not np.allclose(out[0], out[1])


def test_seeds_reproduce_and_the_lazy_first_layer_does_not_depend_on_call_order():
    net = ntk_sym.mlp("relu", depth=2)
    a = init(net, width=32, seed=4)
    b = init(net, width=32, seed=4, input_dim=3)
    c = init(net, width=32, seed=np.random.default_rng(4))
    assert np.array_equal(a.apply(X3), b.apply(X3))
    assert c.apply(X3).shape == (5,)
    assert not np.array_equal(init(net, width=32, seed=5).apply(X3), a.apply(X3))


def test_bad_inputs_are_named():
    fnet = init(ntk_sym.mlp("relu", depth=1), width=8, seed=0, input_dim=3)
    with pytest.raises(InputError, match="2-D"):
        fnet.apply(np.ones(3))
    with pytest.raises(InputError, match="non-finite"):
        fnet.apply(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(InputError, match="features"):
        fnet.apply(np.ones((2, 4)))
    with pytest.raises(NTKSymError, match="width"):
        init(ntk_sym.mlp("relu"), width=0)
    with pytest.raises(NTKSymError, match="seed"):
        init(ntk_sym.mlp("relu"), width=4, seed=-1)
    with pytest.raises(NTKSymError, match="Network"):
        init("relu", width=4)


def test_copies_draw_the_same_pending_first_layer():
    fnet = init(ntk_sym.mlp("relu", depth=1), width=8, seed=0)
    twin = fnet.copy()
    assert np.array_equal(twin.apply(X3), fnet.apply(X3))
    with pytest.raises(NTKSymError, match="first layer"):
        init(ntk_sym.mlp("relu", depth=1), width=8, seed=0, ensemble=2).member(0)
