"""The Funk–Hecke spectrum on the sphere against published values, Monte Carlo Gram matrices,
the Mercer expansion and its own exact/mpmath routes."""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.errors import NTKSymError
from ntk_sym.sphere import gegenbauer_normalised, multiplicity, spectrum


def test_bietti_mairal_depth1_relu_on_s2():
    # Bietti & Mairal (2019): κ_BM(u) = uκ₀(u) + κ₁(u) = 2Θ at σ_w = 1 (module docstring)
    spec = ntk_sym.mlp("relu", 1).spectrum(3, 4)
    assert spec.exact
    assert [2 * mu for mu in spec.eigenvalues] == [
        sp.Rational(1, 2),
        sp.Rational(1, 3),
        sp.Rational(5, 64),
        0,
        sp.Rational(1, 192),
    ]
    assert spec.multiplicities == (1, 3, 5, 7, 9)


def test_bietti_mairal_scales_as_w_std_to_the_fourth():
    # Θ = σ_w⁴ κ_BM/2 at every σ_w (homogeneous ReLU duals, module docstring): at σ_w² = 2 the
    # eigenvalues are exactly twice Bietti & Mairal's, at σ_w = 3/2 exactly 81/16 of σ_w = 1's
    bm = [sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(5, 64), 0, sp.Rational(1, 192)]
    he = ntk_sym.mlp("relu", 1, w_std=float(np.sqrt(2))).spectrum(3, 4)
    assert he.exact and list(he.eigenvalues) == [2 * mu for mu in bm]
    wide = ntk_sym.mlp("relu", 1, w_std=1.5).spectrum(3, 4)
    assert list(wide.eigenvalues) == [sp.Rational(81, 32) * mu for mu in bm]


@pytest.mark.parametrize(("dim", "kernel"), [(2, "ntk"), (3, "ntk"), (4, "nngp")])
def test_mpmath_agrees_with_exact(dim, kernel):
    # σ_w = 1.25 is a binary fraction, so the float the mpmath path sees is the exact value
    net = ntk_sym.mlp("leaky_relu", 1, w_std=1.25, alpha=0.2)
    exact = spectrum(net, dim, 5, kernel)
    numeric = spectrum(net, dim, 5, kernel, exact=False, dps=30)
    assert exact.exact and not numeric.exact
    for a, b in zip(exact.eigenvalues, numeric.eigenvalues, strict=True):
        # 30-digit quadrature: agreement far below float64 resolution
        assert abs(sp.N(a, 35) - sp.Float(b, 35)) < 1e-25


def test_odd_degrees_vanish_only_without_bias():
    # depth-1 ReLU: κ(t) = t·(odd + 1/2) + (even + t/2) has no odd part beyond degree 1
    exact = ntk_sym.mlp("relu", 1).spectrum(3, 7)
    assert all(exact.eigenvalues[k] == 0 for k in (3, 5, 7))
    numeric = ntk_sym.mlp("relu", 1).spectrum(3, 7, exact=False, dps=20)
    assert all(abs(numeric.eigenvalues[k]) <= numeric.zero_tolerance for k in (3, 5, 7))
    assert all(abs(numeric.eigenvalues[k]) > numeric.zero_tolerance for k in (0, 1, 2, 4, 6))
    biased = ntk_sym.mlp("relu", 1, b_std=0.5).spectrum(3, 6)
    assert not biased.exact
    # with bias the odd eigenvalues are of the size of their even neighbours, not rounding
    assert all(biased.eigenvalues[k] > 0.1 * biased.eigenvalues[k + 1] for k in (3, 5))
    # and so they are at depth 2 without bias: the parity structure is that of one layer only
    deep = ntk_sym.mlp("relu", 2).spectrum(3, 4, dps=15)
    assert deep.eigenvalues[3] > 0.1 * deep.eigenvalues[4]


def test_mercer_expansion_reproduces_the_kernel():
    # κ(t) = Σ μ_k N(d, k) P_{k,d}(t); an erf kernel is analytic, so the terms fall
    # geometrically and the tail beyond k_max is bounded by a few times the last terms
    net = ntk_sym.mlp("erf", 2, b_std=0.3)
    dim, k_max, t = 3, 16, mp.mpf("0.4")
    spec = spectrum(net, dim, k_max, dps=15)
    with mp.workdps(15):
        terms = [
            mu * n * p
            for mu, n, p in zip(
                spec.eigenvalues,
                spec.multiplicities,
                gegenbauer_normalised(dim, k_max, t),
                strict=True,
            )
        ]
        series = mp.fsum(terms)
    # an independent evaluation: the reference kernel of two explicit points with cosine 0.4
    x = np.array([[np.sqrt(3.0), 0.0, 0.0], [0.4 * np.sqrt(3.0), np.sqrt(3.0 * 0.84), 0.0]])
    ref = net.ntk(x, backend="mpmath", dps=15)[0, 1]
    last = zip(spec.eigenvalues[-2:], spec.multiplicities[-2:], strict=True)
    tail = 10 * sum(abs(mu) * n for mu, n in last)
    # plus the float64 points, which carry the cosine 0.4 to ~1e-16
    assert abs(series - ref) < tail + 1e-14
    assert tail < 1e-4 * abs(ref)  # the check is not vacuous


def _sphere_points(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim))
    return np.sqrt(dim) * x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "net",
    [ntk_sym.mlp("relu", 1), ntk_sym.mlp("relu", 2, b_std=0.5)],
    ids=["relu1-exact", "relu2-bias-mpmath"],
)
def test_gram_eigenvalues_grouped_by_multiplicity(net):
    """The eigenvalues of K/n for n uniform points cluster in blocks of N(d, k) around μ_k.

    Tolerance: each eigenvalue fluctuates at first order by O(μ_k/√n), visible as the spread s_k
    (relative standard deviation) within its block. By the addition theorem
    Σ_m Y_km(x)² = N(d, k) this first-order term sums to zero over a block, so the block mean
    deviates only at second order, O(1/n): measured over seeds at n = 1000 … 4000 it was below
    s_k/3. The mean must therefore lie within max(s_k, 1/√n) of μ_k (1/√n for the single k = 0
    mode, whose spread is 0); a wrong normalisation or quadrature would miss by far more.
    """
    n, dim = 1500, 3
    spec = net.spectrum(dim, 8)
    mu = spec.floats()
    order = [k for k in sorted(range(len(mu)), key=lambda k: -mu[k]) if mu[k] > 1e-3]
    gram = net.ntk(_sphere_points(n, dim, seed=1)) / n
    eigenvalues = np.linalg.eigvalsh(gram)[::-1]
    start = 0
    for k in order[:6]:
        block = eigenvalues[start : start + spec.multiplicities[k]]
        start += spec.multiplicities[k]
        spread = block.std() / mu[k]
        assert abs(block.mean() / mu[k] - 1) <= max(spread, 1 / np.sqrt(n)), k


def test_relu_decay_is_k_to_the_minus_dim():
    # Bietti & Mairal: μ_k ~ k^{-d} for the ReLU NTK on S^{d-1}; the fit over k = 6 … 18
    # carries O(1/k) pre-asymptotic corrections (measured 2.96–3.00 for depths 1–3, d = 3)
    spec = ntk_sym.mlp("relu", 2, b_std=0.5).spectrum(3, 18, dps=15)
    assert abs(spec.decay_rate - 3) < 0.1
    nngp = ntk_sym.mlp("relu", 1).spectrum(3, 18, kernel="nngp", exact=False, dps=15)
    # the arc-cosine kernel of order 1 is smoother: k^{-(d+2)}
    assert abs(nngp.decay_rate - 5) < 0.2


def test_multiplicities():
    # N(d, k) = dim of degree-k harmonics = C(k+d-1, d-1) - C(k+d-3, d-1)
    for dim in range(2, 7):
        for k in range(8):
            count = sp.binomial(k + dim - 1, dim - 1) - (
                sp.binomial(k + dim - 3, dim - 1) if k >= 2 else 0
            )
            assert multiplicity(dim, k) == count


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 1, "k_max": 3}, "dim"),
        ({"dim": 3.5, "k_max": 3}, "dim"),
        ({"dim": 3, "k_max": -1}, "k_max"),
        ({"dim": 3, "k_max": 3, "kernel": "gp"}, "kernel"),
        ({"dim": 3, "k_max": 3, "dps": 5, "exact": False}, "dps"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(NTKSymError, match=message):
        ntk_sym.mlp("relu", 1).spectrum(**kwargs)


def test_exact_refused_where_not_elementary():
    with pytest.raises(NTKSymError, match="exact"):
        ntk_sym.mlp("erf", 1).spectrum(3, 2, exact=True)
    with pytest.raises(NTKSymError, match="k_max"):
        ntk_sym.mlp("relu", 1).spectrum(3, 3).decay()
