"""Tiled Gram matrices: square tiles, a thread pool, symmetry, any output array (memmaps too).

The (n1, n2) kernel matrices are filled tile by tile by `engine.kernel_tile`, so the working memory
is the output matrices asked for (one for ``net.ntk`` or ``net.nngp``) plus O(tile²) temporaries
per thread, whatever the depth; the per-point quantities (`engine.PointData`) are computed once.
For X2 = X1 only the tiles on and above the diagonal are computed, and each is mirrored, so the
result is exactly symmetric. NumPy's ufuncs
release the GIL, so tiles run in parallel on a thread pool. That tile loop, `fill_tiles`, is the
convolutional engine's too (`ntk_sym.numeric.conv.gram`); each engine supplies its tile function.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import NamedTuple

import numpy as np

from ..errors import InputError, NTKSymError
from .allocation import keep_freed_memory
from .blas import single_threaded_blas
from .engine import PointData, Program, kernel_tile, point_data
from .progress import progress_bar

#: Tile edge per array backend. A hidden layer keeps ~12 tile-sized arrays alive at once; at
#: 192² (288 KiB each, ~3.4 MiB in all) they stay in a core's 4 MiB L2 cache, so a busy shared
#: L3 does not slow the tiles down (benchmarks/README.md: 192 beat 256 in every interleaved round
#: on the loaded machine), while the ~100 NumPy calls per tile stay a few ns per entry. A GPU
#: needs large tiles to be busy.
DEFAULT_TILE = {"numpy": 192, "cupy": 4096}
#: Output dtypes; float64 is the default and the accurate one (see `gram`).
DTYPES = (np.float64, np.float32)


def tile_grid(n1: int, n2: int, tile: int, symmetric: bool) -> list[tuple[slice, slice]]:
    """Row and column slices of the tiles covering (n1, n2); only i ≤ j when `symmetric`."""
    starts1, starts2 = range(0, n1, tile), range(0, n2, tile)
    return [
        (slice(i, min(i + tile, n1)), slice(j, min(j + tile, n2)))
        for i in starts1
        for j in starts2
        if not symmetric or j >= i
    ]


def gram(
    program: Program,
    X1: np.ndarray,
    X2: np.ndarray | None = None,
    *,
    engine: TiledEngine | None = None,
    xp: types.ModuleType = np,
    dtype: type = np.float64,
    tile: int | None = None,
    threads: int | None = None,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    progress: bool = False,
    label: str = "kernels",
    want: tuple[bool, bool] = (True, True),
    report: dict | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(NNGP, NTK) Gram matrices (n1, n2) of float64 inputs, as host (NumPy) arrays.

    engine: the tiled engine that runs `program` (a `TiledEngine`): `MLP_ENGINE` (default) or
        the convolutional engine's `ntk_sym.numeric.conv.gram.CONV_ENGINE` (images X1, X2).
    want: which of (NNGP, NTK) to compute; the other is None (an NNGP alone skips the NTK's
        arithmetic, an NTK alone still needs the covariances but stores only the NTK).

    dtype: float64 (default; ~1e-15 relative to √(Kᵢᵢ Kⱼⱼ)) or float32 (per-point quantities
        in float64, tiles in float32: ~1e-6 relative, see benchmarks/README.md).
    tile: tile edge (default `DEFAULT_TILE` of the backend; for the convolutional engine the
        image-pair edge `ntk_sym.numeric.conv.gram.default_tile`); results do not depend on it
        beyond the rounding of the first-layer matrix product.
    threads: worker threads (default: all cores for NumPy, 1 for CuPy).
    out: a pair of writable arrays (n1, n2) of `dtype` to fill, e.g. `numpy.memmap`s or
        `numpy.lib.format.open_memmap` files for matrices larger than memory; returned. Either
        may be None: that kernel is then not wanted (None in its place).
    progress: a tqdm bar on stderr (`progress.progress_bar`).
    report: a dict to receive ``"bounds"`` and ``"points"`` (see `fill`; both engines).
    """
    engine = MLP_ENGINE if engine is None else engine
    dtype = check_dtype(dtype)
    P1 = engine.points(program, X1, dtype, xp)
    P2 = P1 if X2 is None else engine.points(program, X2, dtype, xp)
    nngp, ntk = _outputs(out, (len(P1), len(P2)), dtype, want)
    bounds = {} if report is None else {"report": report}
    engine.fill(
        program,
        P1,
        P2,
        nngp,
        ntk,
        symmetric=X2 is None,
        xp=xp,
        tile=tile,
        threads=threads,
        progress=progress,
        label=label,
        **bounds,
    )
    return nngp, ntk


def points(program: Program, X: np.ndarray, dtype: np.dtype, xp: types.ModuleType = np
           ) -> PointData:
    """The per-point data of the rows of X, computed in float64 and rounded to `dtype` once."""
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite tiles are reported by `fill`
        return point_data(program, xp.asarray(X), xp).astype(dtype)


def fill(
    program: Program,
    P1: PointData,
    P2: PointData,
    nngp: np.ndarray,
    ntk: np.ndarray,
    *,
    symmetric: bool,
    xp: types.ModuleType = np,
    tile: int | None = None,
    threads: int | None = None,
    progress: bool = False,
    label: str = "kernels",
    report: dict | None = None,
) -> None:
    """Write the (NNGP, NTK) blocks between P1 and P2 into the host arrays nngp and ntk (either
    may be None: that kernel is not computed).

    symmetric: P2 is P1; only tiles on and above the diagonal are computed, then mirrored.
    report: a dict that receives ``"bounds"``, the (layer name, bound) every dual with
        ``reports_bound`` returned, over all tiles and layers, and ``"points"``, (P1, P2).
    """
    backend = "cupy" if xp.__name__ == "cupy" else "numpy"
    want = (nngp is not None, ntk is not None)
    bounds: list = []

    def compute(rows: slice, cols: slice) -> list:
        *block, tile_bounds = kernel_tile(
            program, P1.rows(rows.start, rows.stop), P2.rows(cols.start, cols.stop), xp, want
        )
        bounds.extend(tile_bounds)
        return block

    fill_tiles(
        compute,
        nngp,
        ntk,
        (len(P1), len(P2)),
        symmetric=symmetric,
        xp=xp,
        size=DEFAULT_TILE[backend] if tile is None else tile,
        threads=threads,
        progress=progress,
        label=label,
    )
    if report is not None:
        report["bounds"], report["points"] = bounds, (P1, P2)


def fill_tiles(
    compute: Callable[[slice, slice], Sequence],
    nngp: np.ndarray | None,
    ntk: np.ndarray | None,
    shape: tuple[int, int],
    *,
    symmetric: bool,
    xp: types.ModuleType = np,
    size: int,
    threads: int | None = None,
    progress: bool = False,
    label: str = "kernels",
) -> None:
    """The tile loop of every engine: write ``compute(rows, cols)``, the (NNGP, NTK) blocks of
    one tile as `xp` arrays, into the host arrays nngp and ntk of `shape` (a None target is not
    wanted; its block is ignored), `size`² tiles at a time on `threads` workers (default: all
    cores for NumPy, 1 for CuPy), each with single-threaded BLAS.

    symmetric: the matrix is K(X, X); only tiles on and above the diagonal are computed, the
        upper triangle of a diagonal tile is kept and every tile is mirrored, so the result is
        exactly symmetric.
    Raises `NTKSymError` naming `label` at the first tile with a non-finite value.
    """
    backend = "cupy" if xp.__name__ == "cupy" else "numpy"
    size = _positive_int(size, "tile")
    workers = ((os.cpu_count() or 1) if backend == "numpy" else 1) if threads is None else threads
    workers = _positive_int(workers, "threads")
    tiles = tile_grid(*shape, size, symmetric)

    def work(rows: slice, cols: slice) -> None:
        # errstate is per thread: overflow is reported below, by the finiteness check
        with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            block = compute(rows, cols)
        for target, values in zip((nngp, ntk), block, strict=True):
            if target is None:  # this kernel is not wanted
                continue
            values = values.get() if backend == "cupy" else values
            if not np.all(np.isfinite(values)):
                raise NTKSymError(
                    f"{label} produced non-finite kernel values (overflow of the variances, or "
                    "an activation whose Gaussian expectations diverge at these variances)"
                )
            if symmetric and rows == cols:
                # a diagonal tile: keep its upper triangle and mirror it
                values = np.triu(values) + np.triu(values, 1).T
            target[rows, cols] = values
            if symmetric and rows != cols:
                target[cols, rows] = values.T

    with progress_bar(len(tiles), label, progress, unit="tile") as bar:
        for _ in _run(work, tiles, workers):
            bar.update()


class TiledEngine(NamedTuple):
    """A tiled engine for `gram` and the block schedulers (`ntk_sym.numeric.dask`), as two
    module-level (picklable) functions: ``points(program, X, dtype, xp)``, the per-point data
    of the inputs X with ``rows(start, stop)`` and ``len``, and ``fill(program, P1, P2, nngp,
    ntk, *, symmetric, xp, tile, threads, progress, label)``, which writes the blocks between P1
    and P2."""

    points: Callable
    fill: Callable


#: The MLP/layer engine (`ntk_sym.numeric.engine`) as a `TiledEngine`.
MLP_ENGINE = TiledEngine(points, fill)


def _run(work, tiles: list[tuple[slice, slice]], workers: int) -> Iterator[None]:
    """Call work(*t) for every tile, yielding after each; the first error cancels the rest."""
    keep_freed_memory()  # tiles allocate and free arrays of one size over and over
    if workers == 1:
        for t in tiles:
            yield work(*t)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, *t) for t in tiles]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _outputs(
    out: tuple[np.ndarray | None, np.ndarray | None] | None,
    shape: tuple[int, int],
    dtype: np.dtype,
    want: tuple[bool, bool],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if out is None:
        return tuple(np.empty(shape, dtype) if w else None for w in want)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise InputError("out must be a pair (nngp_out, ntk_out) of arrays")
    if out[0] is None and out[1] is None:
        raise InputError("out=(None, None) keeps neither kernel")
    for name, arr in zip(("nngp", "ntk"), out, strict=True):
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype:
            got = (getattr(arr, "shape", None), getattr(arr, "dtype", type(arr).__name__))
            raise InputError(
                f"out[{name}] must be a NumPy array (or memmap) of shape {shape} and dtype "
                f"{np.dtype(dtype).name}, got shape/dtype {got}"
            )
        if not arr.flags.writeable:
            raise InputError(f"out[{name}] is read-only")
    return out[0], out[1]


def check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise InputError(f"dtype must be float64 or float32: {err}") from None
    if dt not in [np.dtype(d) for d in DTYPES]:
        raise InputError(f"dtype must be float64 or float32, got {dt.name}")
    return dt


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


__all__ = ["DEFAULT_TILE", "DTYPES", "MLP_ENGINE", "TiledEngine", "fill", "fill_tiles", "gram",
           "points", "tile_grid"]
