"""A layer's kernel map traced on a symbolic state, checked, for the backends to compile.

``traced(layer)`` calls ``layer.apply`` on `STATE`, the symbols (Σ₁₁, Σ₁₂, Σ₂₂, Θ), and returns
the resulting `KernelState` of SymPy expressions in them. This is what the numeric step of a
layer without a hand-written one (`ntk_sym.compile.mapped`) and the mpmath reference
(`ntk_sym.symbolic.reference`) evaluate, so both run the same map that ``net.recursion()``
prints. A map is refused with an `NTKSymError` naming the layer when

* ``apply`` fails on symbols (it is not written in SymPy operations on the state), or returns
  something other than a `KernelState` of expressions;
* an entry depends on anything but the state (a free symbol, an undefined function), or is
  non-finite (∞, NaN: SymPy's ``zoo`` from a division by zero);
* Σ' depends on Θ (the NNGP is a property of the forward pass alone), or the diagonal does not
  follow the map: Σ'₁₁ and Σ'₂₂ must equal Σ'₁₂ where Σ₁₁ = Σ₁₂ = Σ₂₂ (checked at a few
  values), since the engines compute a point's variance with the pair formula at (v, v, v).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy.core.function import AppliedUndef

from ..errors import NTKSymError
from .maps import KernelState, Layer

#: The symbols a map is traced on: Σ(x, x), Σ(x, x'), Σ(x', x'), Θ(x, x').
STATE = KernelState(*sp.symbols("Sigma_11 Sigma_12 Sigma_22 Theta", real=True))
#: Variances at which the diagonal is checked (the map may have any form; a few points catch
#: a diagonal written differently from the pair, which is what the check is for).
_DIAGONAL_CHECKS = (sp.Rational(7, 10), sp.Rational(23, 10))
_NON_FINITE = (sp.nan, sp.zoo, sp.oo, -sp.oo)


def _name(layer: Layer) -> str:
    return type(layer).__name__


@lru_cache(maxsize=512)
def traced(layer: Layer) -> KernelState:
    """``layer.apply(STATE)``, checked (module docstring)."""
    name = _name(layer)
    try:
        out = layer.apply(STATE)
    except NTKSymError:
        raise
    except Exception as err:  # the user's code: any failure means the map is not symbolic
        raise NTKSymError(
            f"{name}: apply(state) failed on a symbolic KernelState ({type(err).__name__}: "
            f"{err}); write the map in SymPy operations on state.s11, state.s12, state.s22 and "
            "state.ntk (sp.sqrt, not math.sqrt; sp.Piecewise, not if)"
        ) from err
    if not isinstance(out, KernelState):
        raise NTKSymError(
            f"{name}: apply returned {type(out).__name__}, not a KernelState(s11, s12, s22, ntk)"
        )
    entries = KernelState(*(_entry(name, field, v) for field, v in zip(out._fields, out,
                                                                       strict=True)))
    if STATE.ntk in entries.s12.free_symbols:
        raise NTKSymError(
            f"{name}: the map's Σ'(x, x') depends on Θ; the NNGP is a property of the forward "
            "pass and cannot (Θ enters only Θ')"
        )
    _check_diagonal(name, entries)
    return entries


def _entry(name: str, field: str, value: object) -> sp.Expr:
    try:
        expr = sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError):
        raise NTKSymError(
            f"{name}: apply returned {field} = {value!r}, not a SymPy expression"
        ) from None
    if not isinstance(expr, sp.Expr):
        raise NTKSymError(f"{name}: apply returned {field} = {expr}, not a SymPy expression")
    if expr.has(*_NON_FINITE):
        raise NTKSymError(f"{name}: the map's {field} = {expr} is not finite")
    extra = expr.free_symbols - set(STATE)
    if extra:
        names = ", ".join(sorted(map(str, extra)))
        raise NTKSymError(
            f"{name}: the map's {field} = {expr} depends on {names}, which are not part of the "
            "kernel state (Σ₁₁, Σ₁₂, Σ₂₂, Θ); a layer's parameters must be numbers"
        )
    undefined = expr.atoms(AppliedUndef)
    if undefined:
        names = ", ".join(sorted(map(str, undefined)))
        raise NTKSymError(
            f"{name}: the map's {field} uses the undefined function(s) {names}, which cannot be "
            "evaluated numerically"
        )
    return expr


def _check_diagonal(name: str, out: KernelState) -> None:
    s11, s12, s22, ntk = STATE
    for v in _DIAGONAL_CHECKS:
        point = {s11: v, s12: v, s22: v, ntk: sp.Rational(1, 3)}
        pair = _number(out.s12, point)
        for own in (out.s11, out.s22):
            diagonal = _number(own, point)
            if pair is None or diagonal is None:
                continue  # outside the map's domain: nothing to compare there
            if abs(diagonal - pair) > 1e-12 * max(1.0, abs(pair)):
                raise NTKSymError(
                    f"{name}: the map's diagonal Σ'(x, x) = {own} differs from its Σ'(x, x') "
                    f"at Σ₁₁ = Σ₁₂ = Σ₂₂ = {v} ({diagonal.real:.6g} against {pair.real:.6g}); "
                    "a layer acts on the diagonal by the same formula as on pairs"
                )


def _number(expr: sp.Expr, point: dict) -> complex | None:
    value = expr.subs(point).evalf(30)
    if not value.is_number or value.has(*_NON_FINITE):
        return None
    return complex(value)
