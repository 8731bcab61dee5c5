"""Symbolic → numeric: SymPy duals and activations compiled into array functions, cached.

This is the only place where the symbolic side (``ntk_sym.symbolic``) meets the numeric side
(``ntk_sym.numeric``): it reads SymPy expressions and returns plain array functions.
"""

from .backends import array_module, compile_phi
from .duals import DEFAULT_QUADRATURE_DEGREE, compile_dual
from .printing import compile_for

__all__ = [
    "DEFAULT_QUADRATURE_DEGREE",
    "array_module",
    "compile_dual",
    "compile_for",
    "compile_phi",
]
