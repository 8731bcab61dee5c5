"""Numeric NNGP/NTK Gram matrices of a `Network`: backend dispatch and compiled-kernel caching."""

from __future__ import annotations

from functools import partial

import numpy as np

from .compile import array_module, compile_dual
from .compile.series import diagonal_of
from .errors import NTKSymError
from .numeric.bound import ErrorBound, propagate
from .numeric.dask import gram_dask
from .numeric.engine import LayerSpec
from .numeric.gram import gram
from .numeric.inputs import as_input_pair
from .symbolic.recursion import Network
from .symbolic.reference import kernels_mpmath

BACKENDS = ("numpy", "mpmath", "cupy", "dask")


def layer_spec(
    net: Network, backend: str = "numpy", degree: int | None = None, tol: float | None = None
) -> LayerSpec:
    """The engine's view of `net`, with its dual compiled (and cached) for `backend`."""
    return LayerSpec(
        compile_dual(net.activation, backend, degree, tol),
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
    degree: int | None = None,
    *,
    tol: float | None = None,
    error_bound: bool = False,
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
    Activations without a closed form (tanh, sigmoid, softplus, SiLU, ELU, SymPy expressions)
    use the Hermite series dual (`ntk_sym.compile.series`): tol bounds each layer's truncation
    error relative to √(T11 T22) (default 1e-14, which keeps depth-3 kernels within ~1e-12);
    degree (an integer) selects the older 2-D trapezoidal rule with that many nodes per
    dimension instead (also what backend="cupy" uses, with 128 by default).
    error_bound: also return an `ErrorBound` (numpy backend): certified, to first order, maximum
    errors of both kernels relative to √(K_ii K_jj), i.e. ``nngp, ntk, bound = ...``.

    Options of the numeric backends (`ntk_sym.numeric.gram.gram`): dtype (float64 or float32), tile
    (tile edge), threads, out (a pair of arrays or memmaps to fill; None for a kernel that is
    not wanted, e.g. ``net.ntk(X, out=(None, memmap))``), progress (stderr line);
    for "dask", chunks (block edge, or (rows, cols)), dtype and tile (within blocks).
    """
    A, B = as_input_pair(X1, X2)
    if error_bound and backend != "numpy":
        raise NTKSymError("error_bound=True is available with backend='numpy' only")
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
            partial(layer_spec, net, "numpy", degree, tol),
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
    spec = layer_spec(net, backend, degree, tol)
    report = {} if error_bound else None
    nngp, ntk = gram(
        spec,
        A,
        B,
        xp=xp,
        dtype=dtype,
        tile=tile,
        threads=threads,
        out=out,
        progress=progress,
        label=repr(net),
        report=report,
    )
    if not error_bound:
        return nngp, ntk
    if not spec.dual.reports_bound:  # closed forms: exact up to rounding
        return nngp, ntk, ErrorBound(0.0, 0.0, (), 0, spec.dual.kind)
    return nngp, ntk, propagate(spec, *report["points"], report, diagonal_of)
