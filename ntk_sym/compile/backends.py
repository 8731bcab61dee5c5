"""Backends of the compile step: the array module per backend name, and φ, φ' as array
functions (printed by `ntk_sym.compile.printing`)."""

from __future__ import annotations

import types
from collections.abc import Callable

from ..errors import NTKSymError
from ..symbolic.activations import Activation
from ..symbolic.symbols import X
from .printing import compile_for


def array_module(backend: str) -> types.ModuleType:
    """The array module for `backend` ("numpy" or "cupy"); CuPy is imported only when asked."""
    if backend == "numpy":
        import numpy

        return numpy
    if backend == "cupy":
        try:
            import cupy
        except ImportError as err:
            raise NTKSymError(
                "backend='cupy' needs CuPy and a CUDA GPU: pip install 'ntk_sym[gpu]' "
                f"(import failed: {err})"
            ) from None
        return cupy
    raise NTKSymError(f"unknown array backend {backend!r}; use 'numpy' or 'cupy'")


def broadcast(fn: Callable, xp: types.ModuleType) -> Callable:
    """Make a compiled function return an array shaped like its first argument even when its
    expression is a constant."""

    def wrapped(*args):
        value = fn(*args)
        like = args[0]
        return value if getattr(value, "shape", None) == like.shape else xp.zeros_like(like) + value

    return wrapped


def compile_phi(act: Activation, backend: str = "numpy") -> tuple[Callable, Callable]:
    """φ and φ' as array functions (Dirac deltas in φ' compile to 0, the a.e. derivative)."""
    xp = array_module(backend)
    phi = broadcast(compile_for((X,), act.expr, backend), xp)
    dphi = broadcast(compile_for((X,), act.derivative, backend), xp)
    return phi, dphi
