"""Lazy NNGP/NTK Gram matrices as dask arrays, built from the same tiles as the NumPy path.

Each dask block is one task that fills its (rows × cols) part with the engine's ``fill`` (tiled,
one thread: dask supplies the parallelism), so the graph runs on the local scheduler or,
unchanged, on a dask.distributed cluster. Any tiled engine given as a `gram.TiledEngine` works:
the MLP/layer engine (`gram.MLP_ENGINE`) and the convolutional one
(`conv.gram.CONV_ENGINE`). The per-point quantities (O(n·depth), with the images for a CNN) are
computed eagerly and shipped once; a worker builds the engine's program itself from a picklable
factory (compiled programs are cached per process). Only the kernels asked for are the tasks'
outputs. For X2 = X1 only blocks on and above the diagonal are tasks; the others are their
transposes. Dask is imported only when this backend is asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError, NTKSymError
from .gram import TiledEngine, check_dtype

#: Builds the engine's program where a task runs. A picklable callable (for example a
#: ``functools.partial`` of a module-level function) rather than the program itself, whose
#: compiled closures do not pickle to dask.distributed workers; compile caching makes repeats
#: free.
ProgramFactory = Callable[[], object]

#: Default block edge: two float64 blocks of 2048² are 64 MiB per task.
DEFAULT_CHUNK = 2048


def gram_dask(
    make_program: ProgramFactory,
    engine: TiledEngine,
    X1: np.ndarray,
    X2: np.ndarray | None,
    *,
    chunks: int | tuple[int, int] | None = None,
    dtype: type = np.float64,
    tile: int | None = None,
    label: str = "",
    want: tuple[bool, bool] = (True, True),
):
    """(NNGP, NTK) between the inputs X1 and X2 (None: X1) of `engine`'s program, as lazy dask
    arrays of shape (n1, n2) with blocks of `chunks` (rows, cols); None for a kernel not in
    `want`."""
    try:
        import dask
        import dask.array as da
    except ImportError as err:
        raise NTKSymError(
            f"backend='dask' needs dask: pip install 'ntk_sym[dask]' (import failed: {err})"
        ) from None
    dtype = check_dtype(dtype)
    rows_chunk, cols_chunk = _chunk_sizes(chunks)
    symmetric = X2 is None
    if symmetric and rows_chunk != cols_chunk:
        raise InputError(f"a symmetric Gram matrix needs square chunks, got {chunks!r}")
    program = make_program()
    P1 = engine.points(program, X1, dtype)  # non-finite values are reported per block
    P2 = P1 if symmetric else engine.points(program, X2, dtype)
    count = sum(want)
    p1 = dask.delayed(P1, traverse=False)
    p2 = p1 if symmetric else dask.delayed(P2, traverse=False)
    starts1, starts2 = range(0, len(P1), rows_chunk), range(0, len(P2), cols_chunk)
    grid: list[list[tuple]] = []
    for i in starts1:
        row = []
        for j in starts2:
            r, c = slice(i, min(i + rows_chunk, len(P1))), slice(j, min(j + cols_chunk, len(P2)))
            shape = (r.stop - r.start, c.stop - c.start)
            if symmetric and j < i:
                row.append(None)  # the transpose of block (j, i), filled in below
                continue
            task = dask.delayed(_block, pure=True, nout=count)(
                engine.fill, make_program, p1, p2, r, c, symmetric and i == j, dtype, tile, label,
                want,
            )
            row.append(tuple(da.from_delayed(t, shape, dtype=dtype) for t in task))
        grid.append(row)
    for a, row in enumerate(grid):
        for b, cell in enumerate(row):
            if cell is None:
                row[b] = tuple(m.T for m in grid[b][a])
    arrays = iter([da.block([[cell[k] for cell in row] for row in grid]) for k in range(count)])
    return tuple(next(arrays) if w else None for w in want)


def _block(
    fill: Callable,
    make_program: ProgramFactory,
    P1: object,
    P2: object,
    rows: slice,
    cols: slice,
    symmetric: bool,
    dtype: np.dtype,
    tile: int | None,
    label: str,
    want: tuple[bool, bool],
) -> tuple[np.ndarray, ...]:
    """One dask task: the wanted (NNGP, NTK) blocks rows × cols, tiled in this thread."""
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    nngp, ntk = (np.empty(shape, dtype) if w else None for w in want)
    fill(
        make_program(),
        P1.rows(rows.start, rows.stop),
        P2.rows(cols.start, cols.stop),
        nngp,
        ntk,
        symmetric=symmetric,
        tile=tile,
        threads=1,
        label=label,
    )
    return tuple(m for m in (nngp, ntk) if m is not None)


def _chunk_sizes(chunks: int | tuple[int, int] | None) -> tuple[int, int]:
    if chunks is None:
        return DEFAULT_CHUNK, DEFAULT_CHUNK
    pair = (chunks, chunks) if np.isscalar(chunks) else tuple(chunks)
    if len(pair) != 2 or not all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) and c > 0 for c in pair
    ):
        raise InputError(f"chunks must be a positive integer or a pair of them, got {chunks!r}")
    return int(pair[0]), int(pair[1])
