"""Backends of the compile step: the array module per backend name, and the one lambdify table.

`lambdify` maps the SymPy functions that NumPy names differently (Heaviside, DiracDelta, erf:
lambdify would print ``math.erf``, which fails on arrays) for every array backend, so that every
compiled function in the package goes through the same table.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import sympy as sp

from ..errors import NTKSymError
from ..numeric.special import erf as numpy_erf
from ..symbolic.activations import Activation
from ..symbolic.symbols import X


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


def lambdify(args: tuple, expr: sp.Expr, backend: str, cse: bool = False) -> Callable:
    """`sympy.lambdify` for an array backend, mapping the functions NumPy names differently."""
    xp = array_module(backend)
    mapping = {
        "Heaviside": lambda x, h0=0.5: xp.where(x > 0, 1.0, xp.where(x < 0, 0.0, h0)),
        "DiracDelta": lambda x, *k: xp.zeros_like(x),
        "erf": _erf_for(xp),
    }
    return sp.lambdify(args, expr, modules=[mapping, backend], cse=cse)


def _erf_for(xp: types.ModuleType) -> Callable:
    """A vectorised erf for the array module (NumPy has none; lambdify would print math.erf)."""
    if xp.__name__ == "cupy":
        import cupyx.scipy.special as special

        return special.erf
    return numpy_erf


def broadcast(fn: Callable, xp: types.ModuleType) -> Callable:
    """Make a lambdified function return an array shaped like its first argument even when its
    expression is a constant."""

    def wrapped(*args):
        value = fn(*args)
        like = args[0]
        return value if getattr(value, "shape", None) == like.shape else xp.zeros_like(like) + value

    return wrapped


def compile_phi(act: Activation, backend: str = "numpy") -> tuple[Callable, Callable]:
    """φ and φ' as array functions (Dirac deltas in φ' compile to 0, the a.e. derivative)."""
    xp = array_module(backend)
    phi = broadcast(lambdify((X,), act.expr, backend), xp)
    dphi = broadcast(lambdify((X,), act.derivative, backend), xp)
    return phi, dphi
