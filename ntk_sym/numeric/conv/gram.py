"""Tiled convolutional Gram matrices: tiles of image pairs, threads, symmetry, out=/memmaps.

A tile of t₁ × t₂ image pairs holds pair arrays of t₁t₂·P² entries (P pixels per image) for
networks with pooling, t₁t₂·P for Conv stacks ending in Flatten (`engine`), so the tile edge is
chosen to keep each array near `TILE_ENTRIES`: the working memory is the output plus a few tens
of such arrays per thread, whatever n. The tiles run on the thread pool of
`ntk_sym.numeric.gram` (NumPy's ufuncs release the GIL), and for X2 = X1 only the tiles on and
above the diagonal are computed and mirrored. Pairs of identical images get the diagonal values
of the image with itself, so K(x, x') = K(x, x) exactly when x' = x.
"""

from __future__ import annotations

import math
import os
import types
from dataclasses import dataclass

import numpy as np

from ...errors import NTKSymError
from ..blas import single_threaded_blas
from ..gram import TiledEngine, _outputs, _positive_int, _run, check_dtype, tile_grid
from ..progress import progress_bar
from .engine import PointData, Program, point_data, tile_kernels

#: Entries per pair array of a tile: 2¹⁸ float64 = 2 MiB, so that a tile's ~20 temporaries
#: stay in tens of MiB per thread.
TILE_ENTRIES = 2**18


def default_tile(program: Program, xp: types.ModuleType = np) -> int:
    """The tile edge t with t²·(pixel pairs per image pair) ≈ `TILE_ENTRIES` (×64 on a GPU)."""
    pixels = math.prod(program.shapes[0]) if program.nd else 1
    per_pair = pixels * pixels if program.full else pixels
    budget = TILE_ENTRIES * (64 if xp.__name__ == "cupy" else 1)
    return max(1, math.isqrt(budget // per_pair))


@dataclass(frozen=True)
class ImagePoints:
    """The images (n, *S, C), float64 as given, and their `PointData` in the tiles' dtype."""

    images: object
    data: PointData

    def rows(self, start: int, stop: int) -> ImagePoints:
        return ImagePoints(self.images[start:stop], self.data.rows(start, stop))

    def __len__(self) -> int:
        return len(self.data)


def points(program: Program, X: np.ndarray, dtype: np.dtype, xp: types.ModuleType = np
           ) -> ImagePoints:
    """The images X with their per-point data, computed in float64 and rounded to `dtype`."""
    images = xp.asarray(X)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return ImagePoints(images, point_data(program, images, xp).astype(dtype))


def conv_gram(
    program: Program,
    X1: np.ndarray,
    X2: np.ndarray | None = None,
    *,
    xp: types.ModuleType = np,
    dtype: type = np.float64,
    tile: int | None = None,
    threads: int | None = None,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    progress: bool = False,
    label: str = "kernels",
    want: tuple[bool, bool] = (True, True),
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(NNGP, NTK) Gram matrices (n₁, n₂) of images X1 (n₁, *S, C) and X2, as NumPy arrays.

    Options as `ntk_sym.numeric.gram.gram`: dtype float64 (default) or float32 (per-point data
    in float64, tiles in float32), tile (the image-pair tile edge, default `default_tile`),
    threads (default: all cores for NumPy), out (arrays or memmaps to fill, None for a kernel
    not wanted), progress (a tqdm bar on stderr), want.
    """
    dtype = check_dtype(dtype)
    P1 = points(program, X1, dtype, xp)
    P2 = P1 if X2 is None else points(program, X2, dtype, xp)
    nngp, ntk = _outputs(out, (len(P1), len(P2)), dtype, want)
    fill(program, P1, P2, nngp, ntk, symmetric=X2 is None, xp=xp, tile=tile, threads=threads,
         progress=progress, label=label)
    return nngp, ntk


def fill(
    program: Program,
    P1: ImagePoints,
    P2: ImagePoints,
    nngp: np.ndarray | None,
    ntk: np.ndarray | None,
    *,
    symmetric: bool,
    xp: types.ModuleType = np,
    tile: int | None = None,
    threads: int | None = None,
    progress: bool = False,
    label: str = "kernels",
) -> None:
    """Write the (NNGP, NTK) blocks between the images of P1 and P2 into the host arrays nngp
    and ntk (None: that kernel is not wanted); `symmetric`: P2 is P1, the tiles on and above
    the diagonal are computed and mirrored. Pairs of identical images get the diagonal."""
    backend = "cupy" if xp.__name__ == "cupy" else "numpy"
    size = default_tile(program, xp) if tile is None else _positive_int(tile, "tile")
    workers = ((os.cpu_count() or 1) if backend == "numpy" else 1) if threads is None else threads
    workers = _positive_int(workers, "threads")
    tiles = tile_grid(len(P1), len(P2), size, symmetric)
    dtype = P1.data.nngp.dtype
    need_ntk = ntk is not None

    def work(rows: slice, cols: slice) -> None:
        if workers > 1:
            single_threaded_blas()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            block = tile_kernels(program, P1.images[rows].astype(dtype, copy=False),
                                 P2.images[cols].astype(dtype, copy=False),
                                 P1.data.rows(rows.start, rows.stop),
                                 P2.data.rows(cols.start, cols.stop), xp, need_ntk)
        for target, values in zip((nngp, ntk), block, strict=True):
            if target is None:
                continue
            values = values.get() if backend == "cupy" else values
            if not np.all(np.isfinite(values)):
                raise NTKSymError(f"{label} produced non-finite kernel values (overflow of the "
                                  "variances, or an activation whose expectations diverge)")
            if symmetric and rows == cols:
                values = np.triu(values) + np.triu(values, 1).T
            target[rows, cols] = values
            if symmetric and rows != cols:
                target[cols, rows] = values.T

    with progress_bar(len(tiles), label, progress, unit="tile") as bar:
        for _ in _run(work, tiles, workers):
            bar.update()
    _copy_identical(P1, None if symmetric else P2, nngp, ntk)


#: The convolutional engine as a `ntk_sym.numeric.gram.TiledEngine` (for dask's blocks).
CONV_ENGINE = TiledEngine(points, fill)


def _copy_identical(P1: ImagePoints, P2: ImagePoints | None, nngp, ntk) -> None:
    """K(x, x') := K(x, x) for every pair of bitwise identical images (P2 None: P1 itself)."""
    rows, cols = identical_pairs(_host(P1.images), None if P2 is None else _host(P2.images))
    if rows.size == 0:
        return
    for target, diag in ((nngp, P1.data.nngp), (ntk, P1.data.ntk)):
        if target is not None:
            target[rows, cols] = _host(diag)[rows].astype(target.dtype)


def _host(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def identical_pairs(X1: np.ndarray, X2: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pairs (X1[i], X2[j]) that are bitwise equal (X2 None: X1 with itself,
    the diagonal included)."""
    X1 = np.ascontiguousarray(X1)
    seen: dict[bytes, list[int]] = {}
    for i, x in enumerate(X1):
        seen.setdefault(x.tobytes(), []).append(i)
    other = X1 if X2 is None else np.ascontiguousarray(X2)
    rows, cols = [], []
    for j, x in enumerate(other):
        for i in seen.get(x.tobytes(), ()):
            rows.append(i)
            cols.append(j)
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
