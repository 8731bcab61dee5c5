"""Hermite coefficients of an activation, symbolically where SymPy can, and the facts about φ
that the numeric series needs (its kinks, its parity).

For u = √q z, z ~ N(0, 1), the normalised Hermite coefficients are

    c_k(q) = 𝔼[φ(√q z) He_k(z)] / √k!,    so that   𝔼[φ(u)φ(v)] = Σ_k c_k(q₁) c_k(q₂) ρ^k

for corr(u, v) = ρ (Mehler's formula). Polynomials have finitely many, exactly: with
z^n = Σ_k n!/(k! j! 2^j) He_k(z) over k = n − 2j ≥ 0,

    φ(x) = Σ_n a_n x^n  ⇒  c_k(q) = Σ_{j ≥ 0} a_{k+2j} q^{k/2+j} (k+2j)! / (√k! j! 2^j).

Other expressions are integrated against the Gaussian by SymPy (e^{bx}, sin, ...); where that
fails, `hermite_coefficients` raises and `numeric_coefficients` gives mpmath values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import mpmath as mp
import sympy as sp
from sympy.core.relational import Relational

from ..errors import ExpressionError
from .printing import MPMATH, compile_function
from .symbols import X

#: A Gaussian variable for the symbolic integrals.
Z = sp.Symbol("z", real=True)
#: The variance, as a symbol of the coefficients.
Q = sp.Symbol("q", positive=True)

_JUMPS = (sp.Heaviside, sp.sign, sp.Abs, sp.DiracDelta)


def kink_points(expr: sp.Expr) -> set[sp.Expr]:
    """Real points where `expr` (as written) may fail to be analytic.

    Collected from the arguments of Heaviside, sign, Abs and DiracDelta, from pairwise
    differences of Max/Min arguments, and from Piecewise conditions; only real solutions kept.
    """
    candidates: list[sp.Expr] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _JUMPS):
            candidates.append(node.args[0])
        elif isinstance(node, sp.Max | sp.Min):
            candidates += [p - q for p, q in itertools.combinations(node.args, 2)]
        elif isinstance(node, sp.Piecewise):
            candidates += [c.lhs - c.rhs for _, c in node.args if isinstance(c, Relational)]
    found: set[sp.Expr] = set()
    for candidate in candidates:
        found |= {s for s in sp.solve(candidate, X) if s.is_real}
    return found


def is_odd(expr: sp.Expr) -> bool:
    """φ(−x) = −φ(x), decided by SymPy (False when it cannot tell)."""
    return sp.simplify(expr.subs(X, -X) + expr) == 0


def in_x(expr: sp.Expr) -> sp.Expr:
    """`expr` with its one free symbol renamed to `symbols.X` (as activations are stored)."""
    free = sp.sympify(expr).free_symbols
    if len(free) > 1:
        raise ExpressionError(f"{expr} has more than one free symbol: {sorted(map(str, free))}")
    return expr.subs(free.pop(), X) if free else sp.sympify(expr)


def polynomial_coefficients(expr: sp.Expr, terms: int) -> list[sp.Expr] | None:
    """The exact c_k(Q), k < terms, of a polynomial φ (module docstring); None otherwise."""
    expr = in_x(expr)
    if not expr.is_polynomial(X):
        return None
    a = sp.Poly(expr, X).all_coeffs()[::-1]  # a[n] multiplies x^n
    out = []
    for k in range(terms):
        total = sp.Integer(0)
        for j in range((len(a) - 1 - k) // 2 + 1 if k < len(a) else 0):
            n = k + 2 * j
            total += (
                a[n]
                * Q ** sp.Rational(n, 2)
                * sp.factorial(n)
                / (sp.sqrt(sp.factorial(k)) * sp.factorial(j) * 2**j)
            )
        out.append(sp.nsimplify(total) if total.is_number else sp.simplify(total))
    return out


def hermite_coefficients(expr: sp.Expr, terms: int, q: sp.Expr = Q) -> list[sp.Expr]:
    """c_k(q) for k < terms as exact SymPy expressions.

    Polynomials by the closed formula; anything else by ``sympy.integrate`` against the
    Gaussian, which succeeds for e.g. e^{bx}, sin(bx), cos(bx). Raises `ExpressionError` where
    SymPy leaves an unevaluated integral (tanh, the logistic sigmoid, ...): use
    `numeric_coefficients` there.
    """
    expr = in_x(expr)
    poly = polynomial_coefficients(expr, terms)
    if poly is not None:
        return [c.subs(Q, q) for c in poly]
    density = sp.exp(-(Z**2) / 2) / sp.sqrt(2 * sp.pi)
    body = expr.subs(X, sp.sqrt(Q) * Z)
    out = []
    for k in range(terms):
        integrand = body * sp.hermite_prob(k, Z) * density / sp.sqrt(sp.factorial(k))
        value = sp.integrate(sp.expand(integrand), (Z, -sp.oo, sp.oo), conds="none")
        if value.has(sp.Integral) or value.has(sp.nan, sp.zoo):
            raise ExpressionError(
                f"SymPy cannot integrate φ(x) = {expr} against the Gaussian (order {k}); "
                "use numeric_coefficients"
            )
        out.append(sp.simplify(value).subs(Q, q))
    return out


def numeric_coefficients(
    expr: sp.Expr, terms: int | Iterable[int], q: float, dps: int = 30
) -> list[mp.mpf]:
    """c_k(q) for k < terms (or for the orders k in `terms`) by mpmath quadrature at `dps`
    digits, split at φ's kinks.

    An independent (slow) reference for the float64 coefficients of `ntk_sym.numeric.hermite`.
    """
    expr = in_x(expr)
    with mp.workdps(dps):
        f = compile_function((X,), expr, MPMATH)
        root = mp.sqrt(mp.mpf(q))
        cuts = sorted({mp.mpf(sp.N(k, dps)) / root for k in kink_points(expr)} if root else set())
        points = [-mp.inf, *cuts, mp.inf] if cuts else [-mp.inf, 0, mp.inf]
        out = []
        for k in range(terms) if isinstance(terms, int) else terms:
            norm = 1 / mp.sqrt(mp.factorial(k) * 2 * mp.pi)

            def integrand(z, k=k, norm=norm):
                # He_k(z) = 2^{−k/2} H_k(z/√2)
                he = mp.hermite(k, z / mp.sqrt(2)) * mp.mpf(2) ** (-mp.mpf(k) / 2)
                return f(root * z) * he * mp.exp(-z * z / 2) * norm

            out.append(mp.quad(integrand, points))
        return out


__all__ = [
    "Q",
    "hermite_coefficients",
    "is_odd",
    "kink_points",
    "numeric_coefficients",
    "polynomial_coefficients",
]
