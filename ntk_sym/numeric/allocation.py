"""Keep freed tile memory inside the process, so that new tile arrays do not page-fault (glibc).

A tile allocates and frees on the order of a hundred arrays of one size: 192² float64 = 288 KiB
for the MLP engine, ~2 MiB for the convolutional one. glibc's malloc serves blocks above its mmap
threshold by a fresh mapping, and gives the free top of the heap back to the system once it
exceeds its trim threshold; with the default, self-adjusting thresholds (128 KiB, then ~the
largest block freed, and twice that for trimming) a tile's few freed arrays already cross the
trim threshold, so most new arrays start on pages the kernel has to fault in and zero. Measured
on the benchmark machine (benchmarks/README.md): forming one tile's angle, 5 array operations,
took 699 µs that way against 227 µs with the memory kept; a whole ReLU tile of depth 5 took
8.3 ms against 4.8 ms.

`keep_freed_memory` sets M_MMAP_THRESHOLD to 32 MiB (glibc's largest allowed value: tile arrays
come from the heap, output matrices and other large arrays are still mapped and returned on
free) and M_TRIM_THRESHOLD to 1 GiB (freed heap is kept for reuse). The process's peak memory
does not grow: what is kept was in use at the peak. Once set, glibc stops adjusting the
thresholds itself, for the rest of the process. It is called once per process, when the engine
first fills tiles; on other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

#: glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2)
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30


@cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (module docstring); True if they were set."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.restype, mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
