"""The numeric targets of `ntk_sym.symbolic.printing`: NumPy and CuPy arrays, and float scalars
for the numba loop of `fused`.

Each is a SymPy printer subclass that prints what SymPy's own printer gets wrong for it:

* erf, erfc: SymPy's NumPy printer prints ``math.erf``, which fails on arrays. NumPy has no erf,
  so NumPy's are `ntk_sym.numeric.special` (``math.erf`` elementwise, within an ulp); CuPy's are
  ``cupyx.scipy.special``.
* Heaviside: SymPy prints a three-way ``numpy.select``; here it is ``where(x == 0, H(0), x > 0)``,
  the same values (H(0) from the expression, SymPy's default 1/2) at a sixth of the time (16k
  entries: 17 µs against 114 µs for the nested ``where`` this replaces, measured).
* DiracDelta: ``zeros_like(x)`` on arrays, ``0.0`` on scalars (the a.e. derivative,
  `ntk_sym.symbolic.activations.DIRAC_CONVENTION`); SymPy's printers refuse it.

Everything else (sign, Abs, Max, Piecewise, the elementary functions) is SymPy's printing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
from sympy.printing.numpy import CuPyPrinter, NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from ..errors import NTKSymError
from ..symbolic.printing import MPMATH, Target, compile_function


class _ArrayFunctions:
    """Printing of the functions above for an array module (the printer's ``_module``)."""

    #: The module holding vectorised erf and erfc for this array module.
    _special: str

    def _call(self, name: str, *args: str) -> str:
        return f"{self._module_format(name)}({', '.join(args)})"

    def _print_erf(self, expr: sp.Expr) -> str:
        return self._call(f"{self._special}.erf", self._print(expr.args[0]))

    def _print_erfc(self, expr: sp.Expr) -> str:
        return self._call(f"{self._special}.erfc", self._print(expr.args[0]))

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        return self._call(f"{self._module}.zeros_like", self._print(expr.args[0]))

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        x, at_zero = expr.args
        h0 = repr(float(at_zero)) if at_zero.is_number else self._print(at_zero)
        x = self._print(x)
        equal = self._call(f"{self._module}.equal", x, "0")
        greater = self._call(f"{self._module}.greater", x, "0")
        # the boolean x > 0 is promoted to float64 by where's float H(0)
        return self._call(f"{self._module}.where", equal, h0, greater)


class _NumPyTargetPrinter(_ArrayFunctions, NumPyPrinter):
    _special = "ntk_sym.numeric.special"


class _CuPyTargetPrinter(_ArrayFunctions, CuPyPrinter):
    _special = "cupyx.scipy.special"


class _ScalarTargetPrinter(PythonCodePrinter):
    """Python floats through ``math`` (which numba compiles); SymPy's printing but DiracDelta."""

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        return "0.0"


NUMPY = Target("numpy", _NumPyTargetPrinter)
CUPY = Target("cupy", _CuPyTargetPrinter)
#: Float scalars: the body of the numba loop in `fused` (the printed source is compiled there).
SCALAR = Target("scalar", _ScalarTargetPrinter)

_BY_BACKEND = {"numpy": NUMPY, "cupy": CUPY, "mpmath": MPMATH}


def target(backend: str) -> Target:
    """The printing target of a backend name ("numpy", "cupy" or "mpmath")."""
    try:
        return _BY_BACKEND[backend]
    except KeyError:
        raise NTKSymError(
            f"unknown backend {backend!r}; use one of {', '.join(map(repr, _BY_BACKEND))}"
        ) from None


def compile_for(
    args: Sequence[sp.Symbol], exprs: sp.Expr | Sequence[sp.Expr], backend: str, cse: bool = False
) -> Callable:
    """`ntk_sym.symbolic.printing.compile_function` for the target of a backend name."""
    return compile_function(args, exprs, target(backend), cse)


__all__ = ["CUPY", "NUMPY", "SCALAR", "compile_for", "target"]
