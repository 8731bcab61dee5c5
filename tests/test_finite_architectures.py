"""Finite residual, LayerNorm and mixed-activation networks against their infinite-width limit:
ensemble means within their Monte Carlo error, and the empirical kernels' convergence at slope −½.

The limit comes from the hand-written recursion of `finite_reference` (checked against the
package's MLP kernels below), the finite networks from the same description's twins.
"""

import numpy as np
import pytest
from finite_reference import Act, Dense, Norm, Res, StandIn

import ntk_sym
from ntk_sym.finite import validation as V

X6 = np.random.default_rng(0).standard_normal((6, 3))

NETS = {
    "mixed": StandIn(Dense(1.5, 0.2), Act("relu"), Dense(1.3, 0.1), Act("erf"), Dense(1.2, 0.3)),
    "residual": StandIn(
        Dense(1.4, 0.2),
        Act("relu"),
        Res((Dense(1.0, 0.1), Act("erf"), Dense(0.8, 0.1))),
        Dense(1.2, 0.2),
    ),
    "layernorm": StandIn(
        Dense(1.5, 0.2), Act("relu"), Norm(), Dense(1.4, 0.1), Norm(), Act("erf"), Dense(1.2, 0.2)
    ),
}


@pytest.mark.parametrize("act,param", [("relu", "ntk"), ("erf", "standard")])
def test_hand_recursion_reproduces_the_package_mlp_kernels(act, param):
    standard = param == "standard"
    layers = [Dense(1.4, 0.3, standard), Act(act)] * 2 + [Dense(1.4, 0.3, standard)]
    net = ntk_sym.mlp(act, depth=2, w_std=1.4, b_std=0.3, parameterization=param)
    # Two float64 evaluations of the same recursion (tiled engine vs whole matrices): rounding.
    for ours, package in zip(StandIn(*layers).kernels(X6), net.kernels(X6), strict=True):
        np.testing.assert_allclose(ours, package, rtol=1e-12, atol=1e-14)


def ensemble_z(net, width: int, seeds: int) -> dict[str, np.ndarray]:
    """(ensemble mean − limit)/(standard error of the mean) of the NNGP and the NTK, on the
    distinct entries of X6's Gram matrix."""
    limits = dict(zip(("nngp", "ntk"), net.kernels(X6), strict=True))
    draws = {"nngp": [], "ntk": []}
    for ens in V.ensembles(net, width, seeds, X6.shape[1], seed=1):
        draws["nngp"].append(ens.empirical_nngp(X6))
        draws["ntk"].append(ens.empirical_ntk(X6))
    upper = np.triu_indices(X6.shape[0])
    z = {}
    for kernel, chunks in draws.items():
        values = np.concatenate(chunks)
        sem = values.std(axis=0, ddof=1) / np.sqrt(seeds)
        z[kernel] = ((values.mean(axis=0) - limits[kernel]) / sem)[upper]
    return z


EXACT = {
    # One hidden layer: the readout's input has exactly the limit's law, so E K̂ = K and E Θ̂ = Θ
    # at every width; a residual block Dense → Residual(φ, Dense) keeps that (the block's Dense
    # is independent of the skip).
    "erf": StandIn(Dense(1.3, 0.2), Act("erf"), Dense(1.2, 0.3)),
    "residual": StandIn(Dense(1.4, 0.2), Res((Act("relu"), Dense(0.9, 0.1))), Dense(1.1, 0.2)),
}


# The ensemble mean of S networks has Monte Carlo error sem = sd/√S; by the CLT over S ≥ 256
# networks each z is ≈ N(0, 1), so max |z| over the 21 entries exceeds 4.5 with probability
# ≈ 21 · 7e-6. A wrong convention (a σ_b² missing, a variance off by a factor) moves the mean
# by many standard errors: at S = 2000 the relative sem is 0.5-25% of the entries.
@pytest.mark.parametrize("name", EXACT)
def test_ensemble_mean_is_exactly_the_limit_for_one_hidden_layer(name):
    for z in ensemble_z(EXACT[name], width=64, seeds=2000).values():
        assert np.max(np.abs(z)) < 4.5


# Deeper networks have an O(1/n) bias, E K̂ − K ~ c'/n, against a Monte Carlo error ~ c/√(nS):
# at width 64 and S = 2000 the mixed net's NNGP is off by up to 6 sem (measured), at width 512
# by ≤ 2.6. At width 256 with S = 256 the bias is ≈ 0.3 sem (c'/c ≈ 0.3 measured), so the same
# 4.5 bound as above applies.
@pytest.mark.parametrize("name", NETS)
def test_ensemble_mean_matches_the_limit_within_its_standard_error(name):
    for z in ensemble_z(NETS[name], width=256, seeds=256).values():
        assert np.max(np.abs(z)) < 4.5


# Kernel fluctuations at initialisation are O(n^{-1/2}) (CLT over each layer's n units), so the
# mean relative Frobenius error has log–log slope −½. The fit's own standard error (delta method
# over the 64 seeds per width, `WidthScaling.slope_sem`) is 0.02-0.04 here and calibrated:
# over 6 seed sets per net the z-scores (slope + ½)/slope_sem had |z| ≤ 2.2. The band
# |slope + ½| ≤ 4 sem is then ±0.1-0.17 around −½: it rejects n^{-1} and a non-vanishing error.
@pytest.mark.parametrize("name", NETS)
def test_empirical_kernels_converge_at_rate_one_over_sqrt_width(name):
    res = V.kernel_convergence(NETS[name], X6, widths=(64, 128, 256, 512), seeds=64)
    for scaling in (res.ntk, res.nngp):
        assert scaling.slope_sem < 0.06  # the band below is informative
        assert abs(scaling.slope + 0.5) <= 4 * scaling.slope_sem
    assert res.ntk.mean[-1] < 0.15 and res.nngp.mean[-1] < 0.15  # measured 0.06-0.09 at 512


@pytest.mark.slow
@pytest.mark.parametrize("name", NETS)
def test_empirical_kernel_convergence_full_sizes(name):
    widths = (64, 128, 256, 512, 1024, 2048, 4096)
    res = V.kernel_convergence(NETS[name], X6, widths=widths, seeds=32)
    for scaling in (res.ntk, res.nngp):
        assert abs(scaling.slope + 0.5) <= 4 * scaling.slope_sem
        assert abs(scaling.slope + 0.5) <= 0.1
