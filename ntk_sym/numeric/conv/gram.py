"""The convolutional engine for the tiled Gram matrices (`CONV_ENGINE`): image-pair tiles.

A tile of t₁ × t₂ image pairs holds pair arrays of t₁t₂·P² entries (P pixels per image) for
networks with pooling, t₁t₂·P for Conv stacks ending in Flatten (`engine`), so the tile edge is
chosen to keep each array near `TILE_ENTRIES`: the working memory is the output plus a few tens
of such arrays per thread, whatever n. The tiles run in the tile loop shared with the MLP
engine (`ntk_sym.numeric.gram.fill_tiles`: a thread pool, as NumPy's ufuncs release the GIL),
and for X2 = X1 only the tiles on and above the diagonal are computed and mirrored. Pairs of
identical images get the diagonal values of the image with itself, so K(x, x') = K(x, x)
exactly when x' = x.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import numpy as np

from ..gram import TiledEngine, fill_tiles
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
    report: dict | None = None,
) -> None:
    """Write the (NNGP, NTK) blocks between the images of P1 and P2 into the host arrays nngp
    and ntk (None: that kernel is not wanted); `symmetric`: P2 is P1, the tiles on and above
    the diagonal are computed and mirrored. Pairs of identical images get the diagonal.
    report: a dict that receives ``"bounds"``, the (layer name, bound) that duals with
    ``reports_bound`` returned over all tiles and layers (the images' own pixel pairs, which
    the diagonal and the per-point variances after pooling come from, included), and
    ``"points"``, the `PointData` (P1, P2)."""
    dtype = P1.data.nngp.dtype
    need_ntk = ntk is not None
    bounds = list(P1.data.bounds) + ([] if P2 is P1 else list(P2.data.bounds))

    def compute(rows: slice, cols: slice) -> tuple:
        cov, theta, tile_bounds = tile_kernels(
            program, P1.images[rows].astype(dtype, copy=False),
            P2.images[cols].astype(dtype, copy=False), P1.data.rows(rows.start, rows.stop),
            P2.data.rows(cols.start, cols.stop), xp, need_ntk)
        bounds.extend(tile_bounds)
        return cov, theta

    fill_tiles(compute, nngp, ntk, (len(P1), len(P2)), symmetric=symmetric, xp=xp,
               size=default_tile(program, xp) if tile is None else tile, threads=threads,
               progress=progress, label=label)
    _copy_identical(P1, None if symmetric else P2, nngp, ntk)
    if report is not None:
        report["bounds"], report["points"] = bounds, (P1.data, P2.data)


#: The convolutional engine as a `ntk_sym.numeric.gram.TiledEngine`: ``gram(program, X1, X2,
#: engine=CONV_ENGINE)`` on NumPy, `ntk_sym.numeric.dask.gram_dask` for dask's blocks.
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
