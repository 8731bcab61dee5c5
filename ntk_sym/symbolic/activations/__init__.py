"""Activations: the closed-form catalogue, and any SymPy expression through quadrature."""

from . import polynomial, smooth  # noqa: F401  (importing them registers their entries)
from .base import DIRAC_CONVENTION, Activation
from .catalogue import get, names, register
from .custom import from_expression, resolve

__all__ = [
    "DIRAC_CONVENTION",
    "Activation",
    "from_expression",
    "get",
    "names",
    "register",
    "resolve",
]
