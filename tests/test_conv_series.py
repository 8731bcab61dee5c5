"""Convolutional networks with activations without a closed form: the Hermite series dual.

Three independent routes to the same kernels: the series (per-(image, position) coefficients,
summed on the engine's grids), the 2-D trapezoidal rule (``degree=``) and the direct reference
(`conv_reference.py`: every image and pixel pair at once, φ and φ' written out by hand, a
product Gauss–Hermite rule good to ~4e-15 at the variances ≤ 1 used here).

Tolerances, relative to √(KᵢᵢKⱼⱼ): series against the reference 1e-12 (the series' default
tol is 1e-14 per layer, the propagated bound of these networks ~1e-13, the reference ~1e-14
per layer, float64 rounding ~1e-15 per layer); series against the 2-D rule the same 1e-12
(the rule's own error at these variances is ~1e-15, measured 4e-16).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_entry_error
from conv_reference import reference_kernels

import ntk_sym
from ntk_sym.compile.conv import compile_conv
from ntk_sym.errors import NTKSymError, ToleranceError
from ntk_sym.layers import (
    AvgPool,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    Relu,
    Silu,
    Softplus,
    Tanh,
)
from ntk_sym.numeric.conv import mehler
from ntk_sym.numeric.conv.engine import point_data

TOL = 1e-12


def images(shape=(3, 3, 2), n=4, scale=0.6, seed=5):
    """n random images, scaled so that every variance stays ≤ 1 (the reference's range), with
    a duplicate of the first and a negated copy (θ = 0 and π at the first layer)."""
    rng = np.random.default_rng(seed)
    base = scale * rng.standard_normal((n - 2, *shape))
    return np.concatenate([base, base[:1], -base[:1]])


CASES = {
    "tanh, gap, biases": (
        (Conv((2, 2), 1.2, 0.2), Tanh(), Conv((2, 2), 1.1), Tanh(), GlobalAvgPool(),
         Dense(1.0, 0.1)),
        [("conv", (2, 2), (1, 1), "SAME", 1.2, 0.2), ("tanh",),
         ("conv", (2, 2), (1, 1), "SAME", 1.1, 0.0), ("tanh",), ("gap",), ("dense", 1.0, 0.1)],
    ),
    "softplus, flatten (diagonal grids), VALID": (
        (Conv(2, 0.9, padding="VALID"), Softplus(), Conv((2, 1), 0.8, 0.1), Relu(), Flatten(),
         Dense()),
        [("conv", (2, 2), (1, 1), "VALID", 0.9, 0.0), ("softplus",),
         ("conv", (2, 1), (1, 1), "SAME", 0.8, 0.1), ("relu",), ("flatten",),
         ("dense", 1.0, 0.0)],
    ),
    "silu, circular, avgpool, after the readout": (
        (Conv((2, 2), 1.0, 0.3, padding="CIRCULAR"), Silu(), AvgPool((2, 2), 1), GlobalAvgPool(),
         Dense(1.3, 0.2), Tanh(), Dense()),
        [("conv", (2, 2), (1, 1), "CIRCULAR", 1.0, 0.3), ("silu",), ("avgpool", (2, 2), (1, 1)),
         ("gap",), ("dense", 1.3, 0.2), ("tanh",), ("dense", 1.0, 0.0)],
    ),
}


@pytest.fixture(scope="module")
def references():
    X = images()
    return X, {case: reference_kernels(desc, X) for case, (_, desc) in CASES.items()}


def _worst(got, exact, rows=None, cols=None):
    d = np.diag(exact)
    d1, d2 = (d if rows is None else d[rows]), (d if cols is None else d[cols])
    sub = exact if rows is None else exact[np.ix_(rows, cols)]
    return float(relative_entry_error(got, sub, d1, d2).max())


@pytest.mark.parametrize("case", list(CASES))
def test_series_matches_direct_reference_and_the_2d_rule(case, references):
    X, refs = references
    net = ntk_sym.serial(*CASES[case][0])
    series = net.kernels(X, tile=2)
    for got, exact in zip(series, refs[case], strict=True):
        assert _worst(got, exact) < TOL
    rows, cols = np.arange(3), np.arange(3, len(X))
    for got, exact in zip(net.kernels(X[rows], X[cols], tile=2), refs[case], strict=True):
        assert _worst(got, exact, rows, cols) < TOL
    rule = net.kernels(X, degree=96)
    for a, b in zip(series, rule, strict=True):
        assert _worst(a, b) < TOL


def test_error_bound_covers_the_actual_error(references):
    """A coarse tolerance makes the truncation visible above the reference's accuracy: the
    certified first-order bound must cover the actual error (the reference's own ~1e-14 added)."""
    X, refs = references
    net = ntk_sym.serial(*CASES["tanh, gap, biases"][0])
    nngp, ntk, bound = net.kernels(X, tol=1e-5, error_bound=True)
    exact_nngp, exact_ntk = refs["tanh, gap, biases"]
    assert bound.nngp is not None and bound.ntk is not None
    assert all(max(layer) <= 1e-5 for layer in bound.layers)
    assert bound.layer_names == ("layer 2 (tanh)", "layer 4 (tanh)")
    for got, exact, certified in ((nngp, exact_nngp, bound.nngp), (ntk, exact_ntk, bound.ntk)):
        error = _worst(got, exact)
        assert 1e-13 < error <= certified + 1e-13
        assert certified < 1e-2  # first order, per-point ratios: loose but not vacuous


def test_bound_is_not_propagated_through_pooled_variances():
    X = images()
    net = ntk_sym.serial(*CASES["silu, circular, avgpool, after the readout"][0])
    *_, bound = net.kernels(X, error_bound=True)
    assert bound.nngp is None and bound.ntk is None and "pooling" in bound.reason
    assert len(bound.layers) == 2 and max(max(b) for b in bound.layers) <= 1e-14
    assert "per-layer truncation" in str(bound)


def test_report_collects_the_layers_bounds():
    X = images()
    net = ntk_sym.serial(*CASES["tanh, gap, biases"][0])
    report: dict = {}
    net.kernels(X, report=report, tile=2)
    names = {name for name, _ in report["bounds"]}
    assert names == {"layer 2 (tanh)", "layer 4 (tanh)"}
    assert all(b[0] <= 1e-14 and b[1] <= 1e-14 for _, b in report["bounds"])


def test_float32_out_and_dask_agree_with_float64(tmp_path):
    X = images(shape=(4, 4, 1), n=7)
    net = ntk_sym.serial(Conv(3), Tanh(), Conv(3), Tanh(), GlobalAvgPool(), Dense())
    nngp, ntk = net.kernels(X)
    n = len(X)
    # float32 tiles: ~1e-6 relative (float32 rounding over a few layers), asserted at 1e-5
    single = net.kernels(X, dtype=np.float32)
    for a, b in zip(single, (nngp, ntk), strict=True):
        assert a.dtype == np.float32 and _worst(a.astype(float), b) < 1e-5
    target = np.lib.format.open_memmap(tmp_path / "ntk.npy", mode="w+", shape=(n, n))
    got = net.kernels(X, out=(None, target), tile=3)
    assert got[0] is None and got[1] is target
    assert _worst(np.asarray(target), ntk) < 1e-14  # same arithmetic, other tiles
    pytest.importorskip("dask")
    lazy = net.kernels(X, backend="dask", chunks=4)
    for a, b in zip(lazy, (nngp, ntk), strict=True):
        assert _worst(a.compute(), b) < 1e-14


@pytest.mark.parametrize("diag, zipped", [(False, False), (True, False), (False, True),
                                          (True, True)])
def test_compiled_loop_equals_numpy_sums(diag, zipped, monkeypatch):
    """The compiled loop against the NumPy broadcasts on every grid layout, with bulk pairs,
    pairs beyond ρ_bulk (all orders, own bounds, some left to the caller) and duplicates."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(1)
    P, t1, t2, K = 3, 4, 1 if zipped else 5, 9
    shape = (P, 1 if diag else P, t1, t2)
    rho = rng.uniform(-1, 1, shape)
    rho[0, 0, 0, 0], rho[-1, -1, -1, -1] = 0.97, -0.995
    c = [rng.standard_normal((K, P, t)) * 0.5 ** np.arange(K)[:, None, None] for t in (t1, t1
         if zipped else t2)]
    d = [rng.standard_normal((K, P, t)) * 0.6 ** np.arange(K)[:, None, None] for t in (t1, t1
         if zipped else t2)]
    var = [rng.uniform(0.5, 1.5, (P, x.shape[-1])) for x in c]
    var[1][0, 0] = var[0][0, 0]
    rho[0, 0, 0, 0] = 1.0  # a duplicate: equal variances, ρ = 1
    T = [rng.uniform(1, 2, v.shape) for v in var]
    Td = [rng.uniform(1, 2, v.shape) for v in var]
    tails = [tuple(rng.uniform(0, 1e-6, v.shape) for v in var) for _ in range(2)]
    orders = (mehler.SeriesOrders(1, 2, 7, K - 1), mehler.SeriesOrders(0, 1, 6, K - 1))
    kwargs = dict(diag=diag, zipped=zipped, odd=True, rho_bulk=0.9, tol=1e-9, negligible=1e-13)
    args = (rho, c, d, var, T, Td, tails, orders)
    compiled = mehler.grid_series(*args, **kwargs)
    monkeypatch.setattr(mehler, "_compiled_loop", lambda: None)
    plain = mehler.grid_series(*args, **kwargs)
    for a, b in zip(compiled[:3], plain[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert compiled[4] == plain[4] > 0  # some far pairs are left to the 2-D rule
    np.testing.assert_allclose(compiled[3], plain[3], rtol=1e-13)


def test_chunks_with_different_term_counts_are_joined():
    """Images in separate chunks whose series stop at different orders (small and large
    variances) get one set of coefficients: the chunk with fewer terms is recomputed."""
    X = np.concatenate([0.1 * images(n=3, seed=1), 3.0 * images(n=3, seed=2)])
    net = ntk_sym.serial(Conv(2), Tanh(), GlobalAvgPool(), Dense())
    program = compile_conv(net.layers, X.shape[1:])
    with np.errstate(invalid="ignore"):  # as in `gram`: rounding beyond |cos θ| = 1, redone
        whole, chunked = point_data(program, X), point_data(program, X, chunk=3)
        terms = {e.shape[0] for e in point_data(program, X[:3]).extra if e is not None}
        assert terms != {e.shape[0] for e in point_data(program, X[3:]).extra if e is not None}
    for a, b in zip(whole.extra, chunked.extra, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape
            # the chunks' 1-D rules differ from the whole set's: each converged to 1e-12
            # relative change (`hermite.REFINE_TOL`), the coefficients agree to ~1e-13
            np.testing.assert_allclose(a[:-2], b[:-2], rtol=0, atol=1e-12)
            assert np.ptp(b[-2]) == 0 and b[-2].flat[0] <= a[-2].flat[0]  # the finest step


def test_bad_tolerance_and_options():
    X = images()
    net = ntk_sym.serial(Conv(2), Tanh(), GlobalAvgPool(), Dense())
    with pytest.raises(ToleranceError, match="tol"):
        net.kernels(X, tol=1e-20)
    with pytest.raises(NTKSymError, match="tol applies to the Hermite series"):
        net.kernels(X, tol=1e-10, degree=64)
    with pytest.raises(NTKSymError, match="report"):
        net.kernels(X, backend="dask", report={})
