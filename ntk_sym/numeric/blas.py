"""Keep BLAS single-threaded inside the engine's worker threads (best effort, OpenBLAS only).

Each tile does one small matrix product (the first-layer Gram block). When several worker
threads call a multi-threaded OpenBLAS at once, its threads oversubscribe the cores and spin:
measured on the 2-core benchmark machine, a (256 × 101)·(101 × 256) product took 15-75 ms instead
of 1-2 ms. OpenBLAS ≥ 0.3.27 has a per-thread setting, `openblas_set_num_threads_local`, which
this module calls in the worker thread; with another BLAS, or none found, it does nothing.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np


@cache
def _set_local() -> tuple[Callable[[int], int], ...]:
    # every OpenBLAS loaded: NumPy's, and SciPy's own copy (its BLAS rank-1 updates)
    found = []
    for path in _openblas_candidates():
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
        found.append(fn)
    return tuple(found)


def _openblas_candidates() -> list[str]:
    # the libraries already loaded into this process, then the copy bundled with NumPy wheels
    found = []
    try:
        with open("/proc/self/maps") as maps:
            found = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        pass
    bundled = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    return found + sorted(glob.glob(bundled))


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS calls from the current thread use one thread inside the block, and the thread's
    previous setting afterwards, in every OpenBLAS loaded (no-op if unsupported). The engine runs
    every tile in one, the calling thread too when threads=1: a multi-threaded BLAS on a busy
    machine spins on the small tile products (measured: 256 × 101 × 256 products 20× slower
    under load)."""
    previous = [fn(1) for fn in _set_local()]
    try:
        yield
    finally:
        for fn, before in zip(_set_local(), previous, strict=True):
            fn(before)
