"""φ and φ' as vectorised NumPy functions, compiled from the activation's SymPy expressions.

`ntk_sym.compile.printing.NUMPY` prints ``net.activation.expr`` and ``net.activation.derivative``
(both in `ntk_sym.symbols.X`) as NumPy code, with the package's conventions for erf/erfc
(`ntk_sym.numeric.special`, within an ulp or two), ``DiracDelta`` (zero: gradient descent through
a step or sign unit sees the almost-everywhere derivative, as the kernels' Σ̇ = 0 does) and
``Heaviside`` (SymPy's value at 0, 1/2 unless the expression says otherwise). A constant
derivative (the identity's φ' = 1) prints as a scalar; the result is broadcast to the input's
shape.

Overflow inside an expression (``exp`` of a large pre-activation in a sigmoid) is allowed when the
limit is finite; a non-finite result raises `ExpressionError` naming the activation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from ..compile.printing import NUMPY
from ..errors import ExpressionError
from ..symbolic.activations import Activation
from ..symbolic.printing import compile_function
from ..symbolic.symbols import X

ArrayFunction = Callable[[np.ndarray], np.ndarray]


def compile_expression(expr: sp.Expr, label: str) -> ArrayFunction:
    """A float64 array function x ↦ expr(x) for a SymPy expression in `ntk_sym.symbols.X`.

    Raises `ExpressionError` if the expression cannot be printed for NumPy or does not evaluate
    on a test array (an unsupported SymPy function, say).
    """
    try:
        raw = compile_function((X,), expr, NUMPY)
    except Exception as err:  # SymPy's printers raise a variety of errors
        raise ExpressionError(f"{label} = {expr} cannot be compiled for NumPy: {err}") from None

    def fn(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", under="ignore"):
            out = raw(x)
        out = np.broadcast_to(np.asarray(out, dtype=np.float64), x.shape)
        if not np.all(np.isfinite(out)):
            bad = x[~np.isfinite(out)].ravel()[0]
            raise ExpressionError(f"{label} = {expr} is not finite at x = {bad!r}")
        return out

    try:
        fn(np.linspace(-3.0, 3.0, 7))
    except ExpressionError:
        raise
    except Exception as err:
        raise ExpressionError(f"{label} = {expr} does not evaluate on arrays: {err}") from None
    return fn


_CACHE: dict[tuple, tuple[ArrayFunction, ArrayFunction]] = {}


def activation_functions(activation: Activation) -> tuple[ArrayFunction, ArrayFunction]:
    """(φ, φ') of an `Activation` as NumPy array functions (compiled once per activation key)."""
    key = activation.key()
    if key not in _CACHE:
        _CACHE[key] = (
            compile_expression(activation.expr, f"φ of {activation.name}"),
            compile_expression(activation.derivative, f"φ' of {activation.name}"),
        )
    return _CACHE[key]
