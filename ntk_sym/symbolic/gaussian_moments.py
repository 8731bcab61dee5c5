"""One-dimensional Gaussian moments of an activation, 𝔼[g(√q z) p(z)] with z ~ N(0, 1).

The finite-width corrections at one input (`ntk_sym.symbolic.finite_width`) need, at each
layer's variance q, the expectations of φ², φ⁴, φ'², φ'⁴, φ²φ'² and z²φ'², and the first two
q-derivatives of t(q) = 𝔼[φ²] and ṫ(q) = 𝔼[φ'²]. The derivatives come without differentiating
φ, from the heat kernel: with N_q the density of N(0, q),

    ∂_q N_q(x) = N_q(x) (z² − 1)/(2q),   ∂²_q N_q(x) = N_q(x) (z⁴ − 6z² + 3)/(4q²),   z = x/√q,

so t'(q) = 𝔼[φ²(√q z)(z² − 1)]/(2q) and t''(q) = 𝔼[φ²(√q z)(z⁴ − 6z² + 3)]/(4q²); these hold for
kinked φ (ReLU) as they are.

`TABLE` lists each moment as (i, j, p, k): moment = 𝔼[φ^i φ'^j(√q z) p(z)]/q^k.
`closed_form` gives them exactly for piecewise-polynomial φ (the ReLU family,
polynomials: φ is a polynomial on x < 0 and on x > 0), from the half-line moments
∫₀^∞ z^j N(z) dz = 2^{j/2} Γ((j + 1)/2)/(2√π); other φ have no closed form here and are
integrated numerically (`ntk_sym.numeric.finite_width`, or `mpmath_moment` at a chosen
precision).
"""

from __future__ import annotations

from functools import cache

import mpmath
import sympy as sp

from ..errors import NTKSymError
from .activations import Activation
from .printing import MPMATH, compile_function
from .symbols import X

#: The standard normal variable of the moments and the variance they are taken at.
z = sp.Symbol("z", real=True)
q = sp.Symbol("q", positive=True)

_xp = sp.Symbol("x_p", positive=True)
_xn = sp.Symbol("x_n", negative=True)


_HEAT1 = (z**2 - 1) / 2
_HEAT2 = (z**4 - 6 * z**2 + 3) / 4

#: moment name → (power of φ, power of φ', p(z), k): moment = 𝔼[φ^i φ'^j (√q z) p(z)]/q^k.
TABLE: dict[str, tuple[int, int, sp.Expr, int]] = {
    "t": (2, 0, sp.Integer(1), 0),
    "t1": (2, 0, _HEAT1, 1),
    "t2": (2, 0, _HEAT2, 2),
    "td": (0, 2, sp.Integer(1), 0),
    "td1": (0, 2, _HEAT1, 1),
    "td2": (0, 2, _HEAT2, 2),
    "m4": (4, 0, sp.Integer(1), 0),
    "m22": (2, 2, sp.Integer(1), 0),
    "d4": (0, 4, sp.Integer(1), 0),
    "u": (0, 2, z**2, 0),
}


def check_derivative(phi: Activation) -> sp.Expr:
    """φ', or an `NTKSymError` if it has a Dirac delta (no 𝔼[φ'⁴] then)."""
    d = phi.derivative
    if d.has(sp.DiracDelta):
        raise NTKSymError(
            f"activation {phi.name}: φ' has a Dirac delta, so the finite-width corrections "
            "(which need 𝔼[φ'⁴]) are not defined for it"
        )
    return d


@cache
def integrands(phi: Activation) -> dict[str, tuple[sp.Expr, sp.Expr, int]]:
    """Each moment's (g(x), p(z), k): moment = 𝔼[g(√q z) p(z)]/q^k (module docstring)."""
    d = check_derivative(phi)
    return {name: (phi.expr**i * d**j, p, k) for name, (i, j, p, k) in TABLE.items()}


MOMENTS = tuple(TABLE)


def _half_moment(j: int) -> sp.Expr:
    """∫₀^∞ z^j e^{−z²/2}/√(2π) dz."""
    return 2 ** sp.Rational(j, 2) * sp.gamma(sp.Rational(j + 1, 2)) / (2 * sp.sqrt(sp.pi))


def _side(g: sp.Expr, x: sp.Symbol, sign: int) -> sp.Poly | None:
    piece = sp.piecewise_fold(g.subs(X, x))
    piece = piece.subs(x, sign * sp.sqrt(q) * z)
    try:
        return sp.Poly(sp.expand(piece), z)
    except sp.PolynomialError:
        return None


@cache
def closed_form(phi: Activation) -> dict[str, sp.Expr] | None:
    """The moments as exact expressions in `q` for piecewise-polynomial φ, else None."""
    out = {}
    for name, (g, p, k) in integrands(phi).items():
        total = sp.Integer(0)
        for x, sign in ((_xp, 1), (_xn, -1)):
            poly = _side(g, x, sign)
            if poly is None or poly.free_symbols - {z, q}:
                return None
            # On the side z·sign > 0: substitute z → sign·z so that z runs over (0, ∞).
            body = sp.Poly(sp.expand(poly.as_expr().subs(z, sign * z) * p.subs(z, sign * z)), z)
            for (j,), c in body.terms():
                total += c * _half_moment(j)
        out[name] = sp.simplify(total / q**k)
    return out


def mpmath_moment(phi: Activation, name: str, variance: object, dps: int = 30) -> sp.Float:
    """One moment at `variance` by mpmath quadrature at `dps` digits, split at 0 (where the
    catalogue's kinked activations have their kink); the result is good to about dps − 5 digits
    for φ smooth on each half-line."""
    g, p, k = integrands(phi)[name]
    fg = compile_function((X,), g, MPMATH)
    fp = compile_function((z,), p, MPMATH)
    with mpmath.workdps(dps + 10):
        v = mpmath.mpf(sp.Float(variance, dps + 10))
        root = mpmath.sqrt(v)

        def integrand(t):
            return fg(root * t) * fp(t) * mpmath.exp(-t * t / 2)

        value = mpmath.quad(integrand, [-mpmath.inf, 0, mpmath.inf])
        value = value / mpmath.sqrt(2 * mpmath.pi) / v**k
        return sp.Float(value, dps)
