"""The tiled Gram engine: tiling, symmetry, threads, out=/memmaps, float32, memory, dask, CuPy.

The float64 values themselves are checked against the 60-digit reference in
test_kernels_accuracy.py; here the references are an untiled evaluation (one tile), the mpmath
recursion for float32, and the NumPy path for the dask and CuPy backends.
"""

import sys
import tracemalloc

import numpy as np
import pytest

import ntk_sym
from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.numeric.gram import tile_grid
from tests.conftest import relative_entry_error

#: Tile results differ from the untiled ones only through the first-layer matrix product, whose
#: BLAS blocking depends on the tile shape: a few ulps of cos θ₁, carried through the layers
#: (observed ≤ 8e-16 relative to √(Kᵢᵢ Kⱼⱼ) at depth 5).
TILE_TOL = 1e-14


def _inputs(n: int, d: int = 6, seed: int = 3) -> np.ndarray:
    """Random rows with an exact duplicate, a parallel copy, an antipodal one and a near one."""
    X = np.random.default_rng(seed).normal(size=(n, d))
    X[5], X[7], X[9], X[11] = X[2], 4.0 * X[1], -X[3], X[0] + 1e-9
    return X


X1, X2 = _inputs(23), _inputs(17, seed=4)
X2[4] = X1[2]  # a row shared by both sets

NETS = [
    ntk_sym.mlp("relu", depth=5, w_std=1.5, b_std=0.1),
    ntk_sym.mlp("erf", depth=4, w_std=1.3, b_std=0.2),
    ntk_sym.mlp("abs", depth=3, w_std=1.0, b_std=0.0, parameterization="standard"),
]


def _diag_scale(net, A, B):
    return np.diag(net.ntk(A, tile=1000)), np.diag(net.ntk(B, tile=1000))


def test_tile_grid_covers_every_entry_once():
    counts = np.zeros((10, 7), int)
    for rows, cols in tile_grid(10, 7, 3, symmetric=False):
        counts[rows, cols] += 1
    assert np.all(counts == 1)
    upper = np.zeros((10, 10), int)
    for rows, cols in tile_grid(10, 10, 4, symmetric=True):
        upper[rows, cols] += 1
        assert cols.start >= rows.start
    assert np.all(upper[np.triu_indices(10)] == 1) and np.all(upper <= 1)


@pytest.mark.parametrize("net", NETS, ids=lambda n: ntk_sym.mlp_spec(n).activation.name)
@pytest.mark.parametrize("tile", [1, 3, 7, 16])
def test_tiled_equals_untiled(net, tile):
    """Ragged tiles (23 × 17 in tiles of 3, 7, 16) against a single tile."""
    K0, T0 = net.kernels(X1, X2, tile=1000)
    K, T = net.kernels(X1, X2, tile=tile)
    d1, d2 = _diag_scale(net, X1, X2)
    assert relative_entry_error(T, T0, d1, d2).max() < TILE_TOL
    K1, K2 = np.diag(net.nngp(X1, tile=1000)), np.diag(net.nngp(X2, tile=1000))
    assert relative_entry_error(K, K0, K1, K2).max() < TILE_TOL
    # the shared row is an exact duplicate, in whatever tile it falls
    assert T[2, 4] == T0[2, 4] == net.ntk(X1[2:3], tile=1000)[0, 0]


@pytest.mark.parametrize("net", NETS, ids=lambda n: ntk_sym.mlp_spec(n).activation.name)
@pytest.mark.parametrize("tile", [4, 9, 64])
def test_symmetric_path_is_exactly_symmetric_and_matches_the_general_one(net, tile):
    K, T = net.kernels(X1, tile=tile)
    assert np.array_equal(K, K.T) and np.array_equal(T, T.T)
    K_full, T_full = net.kernels(X1, X1.copy(), tile=tile)
    d = np.diag(T_full)
    assert relative_entry_error(T, T_full, d, d).max() < TILE_TOL
    # exact duplicates (rows 2 and 5) are bit-for-bit the diagonal on both paths
    assert T[2, 5] == T[2, 2] == T_full[2, 5]


def test_threads_give_identical_results():
    """Tiles are independent and written once: the thread count cannot change a bit."""
    net = NETS[0]
    X = _inputs(70)
    K1, T1 = net.kernels(X, tile=8, threads=1)
    for threads in (2, 3):
        K, T = net.kernels(X, tile=8, threads=threads)
        assert np.array_equal(K, K1) and np.array_equal(T, T1)


def test_out_fills_memmaps_on_disk(tmp_path):
    net = NETS[0]
    out = tuple(
        np.lib.format.open_memmap(tmp_path / f"{k}.npy", mode="w+", dtype=float, shape=(23, 17))
        for k in ("nngp", "ntk")
    )
    K, T = net.kernels(X1, X2, tile=5, out=out)
    assert K is out[0] and T is out[1]
    for m in out:
        m.flush()
    K_ref, T_ref = net.kernels(X1, X2, tile=5)
    # same tiles, same arithmetic: bit-for-bit
    assert np.array_equal(np.load(tmp_path / "nngp.npy"), K_ref)
    assert np.array_equal(np.load(tmp_path / "ntk.npy"), T_ref)


def test_out_may_skip_a_kernel():
    net = NETS[0]
    ntk_only = np.empty((23, 23))
    K, T = net.kernels(X1, out=(None, ntk_only))
    assert K is None and T is ntk_only
    assert np.array_equal(T, net.ntk(X1))


def test_out_is_validated():
    net = NETS[0]
    with pytest.raises(InputError, match="shape"):
        net.kernels(X1, X2, out=(np.empty((23, 17)), np.empty((17, 23))))
    with pytest.raises(InputError, match="pair"):
        net.kernels(X1, X2, out=np.empty((23, 17)))
    with pytest.raises(InputError, match="neither"):
        net.kernels(X1, X2, out=(None, None))
    with pytest.raises(InputError, match="float32"):
        net.kernels(X1, X2, out=(np.empty((23, 17)), np.empty((23, 17))), dtype=np.float32)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_float32_accuracy_against_the_reference(name):
    """float32 tiles (per-point quantities rounded once from float64): measured ≤ 6e-7 relative
    to √(Kᵢᵢ Kⱼⱼ) at depth 5 (~10 float32 ulps); asserted < 5e-6 to leave room for other
    inputs, and > 1e-9 to confirm the arithmetic really is single precision."""
    net = ntk_sym.mlp(name, depth=5, w_std=1.5, b_std=0.1)
    X = _inputs(12)
    K, T = net.kernels(X, dtype=np.float32)
    assert K.dtype == T.dtype == np.float32
    K_ref, T_ref = (A.astype(float) for A in net.kernels(X, backend="mpmath", dps=60))
    err = relative_entry_error(T.astype(float), T_ref, np.diag(T_ref), np.diag(T_ref)).max()
    assert 1e-9 < err < 5e-6
    err = relative_entry_error(K.astype(float), K_ref, np.diag(K_ref), np.diag(K_ref)).max()
    assert 1e-9 < err < 5e-6


@pytest.mark.parametrize("depth", [2, 20])
def test_peak_memory_is_the_output_plus_per_point_data_plus_tiles(depth):
    """No output-sized temporaries at any depth (the whole-matrix recursion holds several)."""
    n, tile = 800, 32
    X = np.random.default_rng(0).normal(size=(n, 10))
    net = ntk_sym.mlp("relu", depth=depth, w_std=1.4, b_std=0.1)
    net.kernels(X[:4])  # compile outside the measurement
    tracemalloc.start()
    net.kernels(X, tile=tile, threads=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    output = 2 * n * n * 8
    # bounds: 8 float64 per-point arrays per layer (PointData and the diagonal recursion) and
    # 64 tile-sized temporaries; measured extra: 0.41 MB at depth 2, 0.85 MB at depth 20
    per_point, tiles = 8 * n * (depth + 1) * 8, 64 * tile * tile * 8
    assert output < peak < output + per_point + tiles


def test_progress_goes_to_stderr_only_when_asked(capsys):
    net = NETS[0]
    net.kernels(X1, tile=4)
    assert capsys.readouterr() == ("", "")
    net.kernels(X1, tile=4, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "100%" in captured.err and "tile/s" in captured.err


@pytest.mark.parametrize(
    "options,match",
    [
        ({"dtype": np.float16}, "float64 or float32"),
        ({"tile": 0}, "tile"),
        ({"threads": 0}, "threads"),
        ({"chunks": 8}, "backend='dask'"),
    ],
)
def test_bad_options_are_named(options, match):
    with pytest.raises((InputError, NTKSymError), match=match):
        NETS[0].kernels(X1, **options)


def test_non_finite_tiles_are_an_error():
    net = ntk_sym.mlp("relu", depth=60, w_std=1e3)  # variances grow like (5e5)^60: overflow
    with pytest.raises(NTKSymError, match="non-finite"):
        net.kernels(X1, tile=4)


# -- dask ----------------------------------------------------------------------------------


def test_dask_is_lazy_and_equals_numpy_on_the_local_scheduler():
    da = pytest.importorskip("dask.array")
    net = NETS[1]
    K, T = net.kernels(X1, X2, backend="dask", chunks=(8, 5), tile=3)
    assert isinstance(T, da.Array) and T.chunks == ((8, 8, 7), (5, 5, 5, 2))
    K0, T0 = net.kernels(X1, X2)
    d1, d2 = _diag_scale(net, X1, X2)
    assert relative_entry_error(T.compute(), T0, d1, d2).max() < TILE_TOL
    Ks, Ts = net.kernels(X1, backend="dask", chunks=6)
    Ts = Ts.compute()
    assert np.array_equal(Ts, Ts.T)
    assert relative_entry_error(Ts, net.ntk(X1), d1, d1).max() < TILE_TOL


def test_dask_on_a_local_cluster_of_two_processes():
    pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    import dask

    net = NETS[0]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        K, T = net.kernels(X1, X2, backend="dask", chunks=(10, 6))
        Ks, Ts = net.kernels(X1, backend="dask", chunks=7)
        K, T, Ts = dask.compute(K, T, Ts)
    K0, T0 = net.kernels(X1, X2)
    d1, d2 = _diag_scale(net, X1, X2)
    assert relative_entry_error(T, T0, d1, d2).max() < TILE_TOL
    assert relative_entry_error(K, K0, *(np.diag(net.nngp(A)) for A in (X1, X2))).max() < TILE_TOL
    assert np.array_equal(Ts, Ts.T)
    assert relative_entry_error(Ts, net.ntk(X1), d1, d1).max() < TILE_TOL


def test_dask_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # makes `import dask` fail
    with pytest.raises(NTKSymError, match=r"ntk_sym\[dask\]"):
        NETS[0].kernels(X1, backend="dask")


def test_dask_rejects_options_it_cannot_honour():
    pytest.importorskip("dask")
    with pytest.raises(NTKSymError, match="out"):
        NETS[0].kernels(X1, backend="dask", out=(np.empty((23, 23)), np.empty((23, 23))))


def test_dask_symmetric_needs_square_chunks():
    pytest.importorskip("dask")
    with pytest.raises(InputError, match="square"):
        NETS[0].kernels(X1, backend="dask", chunks=(4, 5))


# -- CuPy ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("net", NETS, ids=lambda n: ntk_sym.mlp_spec(n).activation.name)
def test_cupy_equals_numpy(net):
    """Same compiled maps and tiles on the GPU; only the libraries' rounding differs."""
    pytest.importorskip("cupy")
    K0, T0 = net.kernels(X1, X2)
    K, T = net.kernels(X1, X2, backend="cupy", tile=8)
    assert isinstance(T, np.ndarray)
    d1, d2 = _diag_scale(net, X1, X2)
    # different libm/CUDA transcendental implementations: a few ulps per layer, far below 1e-12
    assert relative_entry_error(T, T0, d1, d2).max() < 1e-12
    Ks, Ts = net.kernels(X1, backend="cupy")
    assert np.array_equal(Ts, Ts.T)
    assert relative_entry_error(Ts, net.ntk(X1), d1, d1).max() < 1e-12
