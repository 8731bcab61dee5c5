"""Numeric NNGP/NTK Gram matrices of a `Network`: backend dispatch and compiled-kernel caching."""

from __future__ import annotations

from functools import partial

import numpy as np

from .compile import DEFAULT_QUADRATURE_DEGREE, array_module, compile_dual
from .errors import NTKSymError
from .numeric.dask import gram_dask
from .numeric.engine import LayerSpec
from .numeric.gram import gram
from .numeric.inputs import as_input_pair
from .symbolic.recursion import Network
from .symbolic.reference import kernels_mpmath

BACKENDS = ("numpy", "mpmath", "cupy", "dask")


def layer_spec(
    net: Network, backend: str = "numpy", degree: int = DEFAULT_QUADRATURE_DEGREE
) -> LayerSpec:
    """The engine's view of `net`, with its dual compiled (and cached) for `backend`."""
    return LayerSpec(
        compile_dual(net.activation, backend, degree),
        net.depth,
        net.w_std,
        net.b_std,
        net.parameterization == "standard",
    )


def kernels(
    net: Network,
    X1: object,
    X2: object | None = None,
    backend: str = "numpy",
    dps: int = 50,
    degree: int = DEFAULT_QUADRATURE_DEGREE,
    *,
    dtype: type = np.float64,
    tile: int | None = None,
    threads: int | None = None,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    progress: bool = False,
    chunks: int | tuple[int, int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(NNGP, NTK) Gram matrices of shape (n1, n2) of `net` between the rows of X1 and X2.

    backend: "numpy" (float64, default), "cupy" (on a GPU; NumPy arrays returned), "dask" (lazy
    dask arrays of `chunks`-sized blocks, computed where dask runs them: the local scheduler or a
    dask.distributed cluster) or "mpmath" (`dps` digits, object arrays of mpf; slow, a reference).
    degree: quadrature nodes per dimension for activations without a closed form.

    Options of the numeric backends (`ntk_sym.numeric.gram.gram`): dtype (float64 or float32), tile
    (tile edge), threads, out (a pair of arrays or memmaps to fill; None for a kernel that is
    not wanted, e.g. ``net.ntk(X, out=(None, memmap))``), progress (stderr line);
    for "dask", chunks (block edge, or (rows, cols)), dtype and tile (within blocks).
    """
    A, B = as_input_pair(X1, X2)
    if backend == "mpmath":
        act = net.activation
        return kernels_mpmath(
            act, net.depth, net.w_std, net.b_std, net.parameterization == "standard", A, B, dps
        )
    if backend not in BACKENDS:
        raise NTKSymError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "dask":
        unused = [k for k, v in (("threads", threads), ("out", out), ("progress", progress)) if v]
        if unused:
            raise NTKSymError(
                f"{', '.join(unused)} do not apply to backend='dask' (dask schedules the blocks "
                "and returns lazy arrays; use dask's own progress bar and to_zarr/store)"
            )
        return gram_dask(
            partial(layer_spec, net, "numpy", degree),
            A,
            B,
            chunks=chunks,
            dtype=dtype,
            tile=tile,
            label=repr(net),
        )
    if chunks is not None:
        raise NTKSymError("chunks applies to backend='dask' only; use tile= for tiling")
    xp = array_module(backend)
    return gram(
        layer_spec(net, backend, degree),
        A,
        B,
        xp=xp,
        dtype=dtype,
        tile=tile,
        threads=threads,
        out=out,
        progress=progress,
        label=repr(net),
    )
