"""Activations given as SymPy expressions, and the one function that turns user input into one."""

from __future__ import annotations

import sympy as sp

from ...errors import ExpressionError
from ..symbols import X
from .base import Activation
from .catalogue import get


def from_expression(expr: sp.Expr, name: str | None = None) -> Activation:
    """An activation from a SymPy expression in exactly one symbol (renamed to `symbols.X`).

    Its dual has no closed form here, so its expectations come from its Hermite series.
    Strings are not accepted: SymPy's parser evaluates Python code.
    """
    if isinstance(expr, str):
        raise ExpressionError(
            "expressions must be SymPy objects, not strings (strings name catalogue entries only)"
        )
    if not isinstance(expr, sp.Basic):
        raise ExpressionError(f"expected a SymPy expression, got {type(expr).__name__}")
    free = expr.free_symbols
    if len(free) != 1:
        raise ExpressionError(
            f"an activation must have exactly one free symbol, {expr} has "
            f"{len(free)}: {sorted(map(str, free))}"
        )
    (symbol,) = free
    body = expr.subs(symbol, X)
    if body.has(sp.I) or body.has(sp.zoo, sp.nan, sp.oo):
        raise ExpressionError(f"activation {expr} is not a finite real expression")
    return Activation(name or str(expr), body, description="custom expression (Hermite series)")


def resolve(activation: str | sp.Expr | Activation, **params: float) -> Activation:
    """Accept a catalogue name, a SymPy expression or an `Activation`; return an `Activation`."""
    if isinstance(activation, Activation):
        if params:
            raise TypeError("parameters go to the catalogue constructor, not an Activation object")
        return activation
    if isinstance(activation, str):
        return get(activation, **params)
    if params:
        raise TypeError("parameters apply only to catalogue names")
    return from_expression(activation)
