"""Numeric NNGP/NTK Gram matrices of a layer list: backend dispatch.

The layer maps are compiled once per (layers, backend, degree, tol) into the engine's program
(`ntk_sym.compile.layers`); the engine (`ntk_sym.numeric`) runs it on NumPy or CuPy arrays, and
Dask schedules its blocks. The mpmath backend evaluates the same layer maps pair by pair at
`dps` digits (`ntk_sym.symbolic.reference`).
"""

from __future__ import annotations

from functools import partial
from typing import Literal, overload

import numpy as np

from .compile import array_module
from .compile.conv import compile_conv, first_spatial_layer
from .compile.layers import compile_network
from .compile.series import diagonal_of
from .errors import NTKSymError
from .numeric.bound import ErrorBound, propagate
from .numeric.conv.bound import propagate_conv
from .numeric.conv.gram import CONV_ENGINE
from .numeric.conv.inputs import as_image_pair
from .numeric.dask import gram_dask
from .numeric.gram import MLP_ENGINE, gram
from .numeric.inputs import as_input_pair
from .symbolic.conv_maps import is_convolutional
from .symbolic.maps import Layer
from .symbolic.reference import kernels_mpmath

BACKENDS = ("numpy", "mpmath", "cupy", "dask")


Kernels = tuple[np.ndarray | None, np.ndarray | None]
"""(NNGP, NTK), either None when it was not wanted."""
KernelsWithBound = tuple[np.ndarray | None, np.ndarray | None, ErrorBound]
"""(NNGP, NTK, ErrorBound), from ``error_bound=True``."""


@overload
def kernels(
    layers: tuple[Layer, ...],
    X1: object,
    X2: object | None = ...,
    backend: str = ...,
    dps: int = ...,
    degree: int | None = ...,
    *,
    error_bound: Literal[True],
    **options: object,
) -> KernelsWithBound: ...


@overload
def kernels(
    layers: tuple[Layer, ...],
    X1: object,
    X2: object | None = ...,
    backend: str = ...,
    dps: int = ...,
    degree: int | None = ...,
    *,
    error_bound: Literal[False] = ...,
    **options: object,
) -> Kernels: ...


def kernels(
    layers: tuple[Layer, ...],
    X1: object,
    X2: object | None = None,
    backend: str = "numpy",
    dps: int = 50,
    degree: int | None = None,
    *,
    tol: float | None = None,
    error_bound: bool = False,
    dtype: type | None = None,
    tile: int | None = None,
    threads: int | None = None,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
    progress: bool = False,
    chunks: int | tuple[int, int] | None = None,
    want: tuple[bool, bool] = (True, True),
    label: str = "kernels",
    report: dict | None = None,
) -> Kernels | KernelsWithBound:
    """(NNGP, NTK) Gram matrices of shape (n1, n2) of the network `layers` between the rows of X1
    and X2 (None for a kernel not in `want`); with ``error_bound=True``, (NNGP, NTK, ErrorBound).

    backend: "numpy" (float64, default), "cupy" (on a GPU; NumPy arrays returned), "dask" (lazy
    dask arrays of `chunks`-sized blocks, computed where dask runs them: the local scheduler or a
    dask.distributed cluster) or "mpmath" (`dps` digits, object arrays of mpf; slow, a reference).
    Activations without a closed form (tanh, sigmoid, softplus, SiLU, ELU, SymPy expressions)
    use the Hermite series dual (`ntk_sym.compile.series`), in MLPs and convolutional networks
    alike (there with coefficients per (image, position)): tol bounds each layer's truncation
    error relative to √(T11 T22) (default 1e-14, which keeps depth-3 kernels within ~1e-12);
    degree (an integer) selects the older 2-D trapezoidal rule with that many nodes per
    dimension instead (also what backend="cupy" uses, with 128 by default), the independent
    check. Convolutional networks run on the "numpy" and "dask" backends.
    error_bound: also return an `ErrorBound` (numpy backend): certified (to first order) maximum
    errors of both kernels relative to √(K_ii K_jj) for MLPs (`ntk_sym.numeric.bound`) and for
    convolutional networks (`ntk_sym.numeric.conv.bound`: not after pooling with series errors
    in the variances, nor the NTK through a closed-form activation after a series layer); for
    other layer lists, and where not propagated, the per-layer truncation bounds only, with
    the reason in `ErrorBound.reason`.

    Options of the numeric backends (`ntk_sym.numeric.gram.gram`): dtype (float64, the default,
    or float32),
    tile (tile edge), threads, out (a pair of arrays or memmaps to fill; None for a kernel that
    is not wanted, e.g. ``net.kernels(X, out=(None, memmap))``), progress (a tqdm bar on
    stderr), report (a dict that receives ``"bounds"``: the (layer name, bound) that duals with
    certified error bounds returned, over all tiles and layers; empty for closed forms); for "dask",
    chunks (block edge, or (rows, cols)), dtype and tile (within blocks). "mpmath" takes dps
    (and report) only: the other options are refused, naming them.
    """
    if error_bound and backend != "numpy":
        raise NTKSymError("error_bound=True is available with backend='numpy' only")
    if backend == "mpmath":
        _refuse_unused(
            "backend='mpmath' (a reference evaluated pair by pair at dps digits, returned as "
            "object arrays of mpf)",
            degree=degree, tol=tol, dtype=dtype, tile=tile, threads=threads, out=out,
            progress=progress, chunks=chunks,
        )
    dtype = np.float64 if dtype is None else dtype
    if is_convolutional(layers):
        return _conv_kernels(tuple(layers), X1, X2, backend, degree, tol, dtype=dtype, tile=tile,
                             threads=threads, out=out, progress=progress, chunks=chunks,
                             want=want, label=label, report=report, error_bound=error_bound)
    A, B = as_input_pair(X1, X2)
    if backend not in BACKENDS:
        raise NTKSymError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "mpmath":
        nngp, ntk = kernels_mpmath(tuple(layers), A, B, dps)
        if report is not None:
            report["bounds"] = []  # the reference: closed forms or dps-digit quadrature
        return (nngp if want[0] else None), (ntk if want[1] else None)
    if backend == "dask":
        _refuse_for_dask(threads=threads, out=out, progress=progress, report=report)
        return gram_dask(
            partial(compile_network, tuple(layers), "numpy", degree, tol),
            MLP_ENGINE,
            A,
            B,
            chunks=chunks,
            dtype=dtype,
            tile=tile,
            label=label,
            want=want,
        )
    if chunks is not None:
        raise NTKSymError("chunks applies to backend='dask' only; use tile= for tiling")
    xp = array_module(backend)
    program = compile_network(tuple(layers), backend, degree, tol)
    if error_bound and report is None:
        report = {}
    nngp, ntk = gram(
        program,
        A,
        B,
        xp=xp,
        dtype=dtype,
        tile=tile,
        threads=threads,
        out=out,
        progress=progress,
        label=label,
        want=want,
        report=report,
    )
    if not error_bound:
        return nngp, ntk
    return nngp, ntk, propagate(program, *report["points"], report["bounds"], diagonal_of)


def _refuse_unused(backend: str, **given: object) -> None:
    """Refuse, naming them, the options given (not None or False) that `backend` ignores."""
    unused = [k for k, v in given.items() if v is not None and v is not False]
    if unused:
        raise NTKSymError(f"{', '.join(unused)} do not apply to {backend}")


def _refuse_for_dask(**given: object) -> None:
    """The numeric backends' options that dask's lazy blocks cannot honour, named."""
    _refuse_unused(
        "backend='dask' (dask schedules the blocks and returns lazy arrays; use dask's own "
        "progress bar and to_zarr/store)",
        **given,
    )


def _conv_kernels(layers, X1, X2, backend: str, degree: int | None, tol: float | None, *,
                  chunks, dtype, tile, threads, out, progress, want, label, report, error_bound):
    """`kernels` of a network with convolutional layers (images in, `ntk_sym.numeric.conv`)."""
    if backend not in ("numpy", "dask"):
        raise NTKSymError(f"convolutional networks run on backend 'numpy' (threads, float32, "
                          f"out=) or 'dask', not {backend!r} yet")
    if backend == "numpy" and chunks is not None:
        raise NTKSymError("chunks applies to backend='dask' only; use tile= for tiling")
    A, B = as_image_pair(X1, X2, first_spatial_layer(layers))
    make_program = partial(compile_conv, layers, A.shape[1:], "numpy", degree, tol)
    if backend == "dask":
        _refuse_for_dask(threads=threads, out=out, progress=progress, report=report)
        return gram_dask(make_program, CONV_ENGINE, A, B, chunks=chunks, dtype=dtype, tile=tile,
                         label=label, want=want)
    if error_bound and report is None:
        report = {}
    program = make_program()
    nngp, ntk = gram(program, A, B, engine=CONV_ENGINE, dtype=dtype, tile=tile,
                     threads=threads, out=out, progress=progress, label=label, want=want,
                     report=report)
    if not error_bound:
        return nngp, ntk
    return nngp, ntk, propagate_conv(program, *report["points"], report["bounds"], diagonal_of)
