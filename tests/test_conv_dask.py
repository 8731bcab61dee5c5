"""Convolutional NNGP/NTK on backend="dask": lazy blocks against the direct mpmath evaluation.

The reference is `conv_reference.py` (every image pair and pixel pair at once, explicit index
lists, no shared code), on the images of `test_conv_kernels` (a duplicate, a shifted and a
negated copy, a cross-set duplicate). Tolerance 1e-12 relative to √(Kᵢᵢ Kⱼⱼ), as for the NumPy
path: a dask block is the same tiled engine run on a slice of the pairs, so its float64
rounding is the same ~1e-15 per layer. Chunk edges that do not divide n leave ragged blocks.
"""

from __future__ import annotations

import pickle
from functools import cache

import numpy as np
import pytest
from conftest import relative_entry_error
from conv_reference import reference_kernels
from test_conv_kernels import CASES, TOL, images

import ntk_sym
from ntk_sym import kernels as dispatch
from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.numeric.gram import TiledEngine

da = pytest.importorskip("dask.array")

DASK_CASES = ["gap, SAME, biases", "flatten (diagonal), VALID"]


@cache
def _reference(case: str):
    X1, X2 = images()
    return reference_kernels(CASES[case][1], np.concatenate([X1, X2]))


def _net(case: str):
    return ntk_sym.serial(*CASES[case][0])


def _assert_close(got, exact, diag1, diag2, tol=TOL):
    assert relative_entry_error(got, exact, diag1, diag2).max() < tol


@pytest.mark.parametrize("case", DASK_CASES)
def test_symmetric_blocks_match_direct_reference(case):
    X1, X2 = images()
    X = np.concatenate([X1, X2])  # 7 images: chunks of 3 leave a block of one
    K, T = _net(case).kernels(X, backend="dask", chunks=3, tile=2)
    assert isinstance(T, da.Array) and T.chunks == ((3, 3, 1), (3, 3, 1))
    assert T.dtype == np.float64
    K, T = K.compute(), T.compute()
    for got, exact in zip((K, T), _reference(case), strict=True):
        diag = np.diag(exact)
        _assert_close(got, exact, diag, diag)
        assert np.array_equal(got, got.T)
    # identical images (0 and 1, 0 and 6) take the diagonal exactly, inside and across blocks
    assert T[0, 1] == T[0, 0] and T[0, 6] == T[0, 0] and K[6, 0] == K[0, 0]


@pytest.mark.parametrize("case", DASK_CASES)
def test_cross_blocks_match_direct_reference(case):
    X1, X2 = images()
    n = len(X1)
    K, T = _net(case).kernels(X1, X2, backend="dask", chunks=(2, 1))
    assert T.chunks == ((2, 2, 1), (1, 1))
    K, T = K.compute(), T.compute()
    for got, exact in zip((K, T), _reference(case), strict=True):
        diag = np.diag(exact)
        _assert_close(got, exact[:n, n:], diag[:n], diag[n:])
    assert T[0, 1] == _net(case).ntk(X1)[0, 0]  # X2[1] is X1[0]


def test_one_kernel_alone_and_float32():
    case = "gap, SAME, biases"
    X1, X2 = images()
    X = np.concatenate([X1, X2])
    K_ref, T_ref = _reference(case)
    d_K, d_T = np.diag(K_ref), np.diag(T_ref)
    net = _net(case)
    _assert_close(net.ntk(X, backend="dask", chunks=4).compute(), T_ref, d_T, d_T)
    _assert_close(net.nngp(X, backend="dask", chunks=4).compute(), K_ref, d_K, d_K)
    T32 = net.ntk(X, backend="dask", chunks=4, dtype=np.float32)
    assert T32.dtype == np.float32
    T32 = T32.compute()
    assert T32.dtype == np.float32
    # float32 tiles: ~1e-7 rounding per operation, a few dozen operations per entry
    _assert_close(T32, T_ref, d_T, d_T, tol=2e-5)


def test_blocks_below_the_diagonal_are_transposes(monkeypatch):
    """For X2 = X1 only the 6 blocks on and above the diagonal of a 3 × 3 grid are filled."""
    from ntk_sym.numeric.conv import gram as conv_gram

    calls = []

    def counting_fill(*args, **options):
        calls.append(options["symmetric"])
        return conv_gram.fill(*args, **options)

    monkeypatch.setattr(dispatch, "CONV_ENGINE", TiledEngine(conv_gram.points, counting_fill))
    X = np.concatenate(images())
    T = _net("gap, SAME, biases").ntk(X, backend="dask", chunks=3)
    T.compute(scheduler="synchronous")
    assert sorted(calls) == [False, False, False, True, True, True]


def test_graph_pickles_for_distributed_workers():
    """dask.distributed ships tasks by pickle: the graph must hold no closures."""
    X1, X2 = images()
    net = _net("flatten (diagonal), VALID")
    T = net.ntk(X1, X2, backend="dask", chunks=2)
    again = pickle.loads(pickle.dumps(T))
    np.testing.assert_array_equal(again.compute(), T.compute())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"chunks": 0}, InputError, "chunks must be a positive integer"),
        ({"chunks": (2,)}, InputError, "chunks must be a positive integer"),
        ({"chunks": 2.5}, InputError, "chunks must be a positive integer"),
        ({"chunks": True}, InputError, "chunks must be a positive integer"),
        ({"chunks": (2, 3)}, InputError, "square"),
        ({"threads": 2}, NTKSymError, "threads do not apply to backend='dask'"),
        ({"progress": True}, NTKSymError, "progress do not apply"),
        ({"out": (None, np.empty((5, 5)))}, NTKSymError, "out do not apply"),
        ({"dtype": np.float16}, InputError, "float64 or float32"),
    ],
)
def test_bad_options_are_named(options, error, match):
    X1, _ = images()
    with pytest.raises(error, match=match):
        _net("gap, SAME, biases").kernels(X1, backend="dask", **options)


def test_chunks_need_the_dask_backend():
    X1, _ = images()
    with pytest.raises(NTKSymError, match="chunks applies to backend='dask' only"):
        _net("gap, SAME, biases").ntk(X1, chunks=2)
