"""Symbolic rewrites that make compiled duals accurate in floating point.

Two cancellations recur in closed-form duals and both are removed symbolically:

* Determinants. Expressions such as (1 + 2q11)(1 + 2q22) − 4q12² (erf) lose all their digits at
  large variances. With q12 = √(q11 q22) cos θ, q11 q22 − q12² = q11 q22 sin²θ =: D exactly, so
  every polynomial in q12² is rewritten through q12² ↦ q11 q22 − D and expanded; the engine passes
  D computed from an accurate angle.
* asin near ±1. asin(n/√m) = atan2(n, √(m − n²)) with m − n² rewritten as above, so arguments
  close to ±1 (large variances, near-identical inputs) keep full relative accuracy.

Positively homogeneous duals T = (q11 q22)^{k/2} J(θ) need 1 ∓ J(θ)/J(0) near θ = 0 and θ = π;
`series_branches` supplies Taylor polynomials there.
"""

from __future__ import annotations

import sympy as sp

from .symbols import q11, q12, q22, theta

#: The determinant symbol D = q11 q22 − q12² = q11 q22 sin²θ.
D = sp.Symbol("D", nonnegative=True)
#: cos θ, as an argument of compiled pair functions.
C = sp.Symbol("c", real=True)

#: Below this distance from 0 or π the Taylor branch replaces 1 ∓ J(θ)/J(0).
SERIES_SWITCH = 0.1
#: Taylor order: the first neglected term is below 0.1^SERIES_ORDER/SERIES_ORDER!, far below eps.
SERIES_ORDER = 14


def rewrite_determinants(expr: sp.Expr) -> sp.Expr:
    """Replace q12² by q11 q22 − D inside every sum that contains it, and expand that sum."""

    def fix(term: sp.Expr) -> sp.Expr:
        return sp.expand(term.subs(q12**2, q11 * q22 - D))

    return expr.replace(lambda e: e.is_Add and e.has(q12**2), fix)


def rewrite_asin(expr: sp.Expr) -> sp.Expr:
    """asin(n/d) ↦ atan2(n, √(d² − n²)) with the determinant rewrite applied to d² − n²."""

    def fix(arg: sp.Expr) -> sp.Expr:
        num, den = sp.fraction(sp.together(arg))
        rest = rewrite_determinants(sp.expand(den**2) - sp.expand(num**2))
        rest = rewrite_determinants(sp.factor(rest)) if rest.has(q12) else rest
        if rest.has(q12):  # no cancellation structure found: keep asin
            return sp.asin(arg)
        return sp.atan2(num, sp.sqrt(rest))

    return expr.replace(sp.asin, fix)


def pair_form(dual: sp.Expr) -> sp.Expr:
    """A covariance-form dual as a function of (q11, q22, c = cos θ, D = q11 q22 sin²θ)."""
    expr = rewrite_determinants(rewrite_asin(dual))
    return expr.subs(q12, sp.sqrt(q11 * q22) * C)


def diagonal_form(dual: sp.Expr, q: sp.Symbol) -> sp.Expr:
    """T(q, q, q): the dual on the diagonal (identical inputs), in one variance q."""
    expr = pair_form(dual).subs({C: 1, D: 0})
    return sp.simplify(expr.subs({q11: q, q22: q}))


def series_branches(ratio: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Taylor polynomials of 1 − ratio(θ) at θ = 0 and of 1 + ratio(θ) at θ = π (in θ)."""
    s = sp.Symbol("s")
    near_zero = sp.series(1 - ratio, theta, 0, SERIES_ORDER).removeO()
    near_pi = sp.series((1 + ratio).subs(theta, sp.pi - s), s, 0, SERIES_ORDER).removeO()
    return near_zero, near_pi.subs(s, sp.pi - theta)
