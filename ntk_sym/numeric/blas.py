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
from collections.abc import Callable
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


def single_threaded_blas() -> None:
    """Make BLAS calls from the current thread use one thread (no-op if unsupported)."""
    for fn in _set_local():
        fn(1)
