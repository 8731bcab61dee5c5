"""The `Activation` object: an activation φ as a SymPy expression and its Gaussian dual kernel.

For (u, v) ~ N(0, [[q11, q12], [q12, q22]]) the *dual* of φ is

    T(q11, q12, q22) = 𝔼[φ(u) φ(v)],

and, by Price's theorem, its derivative kernel is

    Ṫ(q11, q12, q22) = 𝔼[φ'(u) φ'(v)] = ∂T/∂q12.

An activation either carries a closed-form dual (the catalogue) or none, in which case the
expectations come from the Hermite series (`ntk_sym.compile.series`). Positively
homogeneous activations (φ(cx) = cᵏφ(x) for c > 0: the ReLU family, step, sign) are written in the
angle form T = (q11 q22)^{k/2} J(θ) with cos θ = q12/√(q11 q22), which is what lets the numeric
engine keep angles exact through every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from ...errors import ExpressionError
from ..symbols import X, q11, q12, q22, theta

#: Convention for φ' when it contains a Dirac delta (step, sign): gradient descent through such a
#: unit sees the almost-everywhere derivative, zero, so Σ̇ = 0. The distributional value that
#: Price's theorem gives, 𝔼[δ(u)δ(v)] = 1/(2π√(q11 q22 − q12²)), is kept in `price_derivative`.
DIRAC_CONVENTION = "almost-everywhere derivative: Σ̇ = 0 (the Dirac part is dropped)"


def angle_to_covariance(expr: sp.Expr) -> sp.Expr:
    """Rewrite an expression in (q11, q22, θ) as one in (q11, q12, q22).

    Uses cos θ = q12/√(q11 q22), sin θ = √(q11 q22 − q12²)/√(q11 q22) (θ ∈ [0, π]) and
    θ = acos(q12/√(q11 q22)).
    """
    root = sp.sqrt(q11 * q22)
    cos_t = q12 / root
    sin_t = sp.sqrt(q11 * q22 - q12**2) / root
    expr = expr.subs({sp.sin(theta): sin_t, sp.cos(theta): cos_t})
    return expr.subs(theta, sp.acos(cos_t))


@dataclass(eq=False)
class Activation:
    """An activation function φ(x) with, where known, its closed-form Gaussian dual.

    Parameters
    ----------
    name:
        Catalogue name, or a printable form of the expression for a custom activation.
    expr:
        φ as a SymPy expression in `ntk_sym.symbols.X`.
    params:
        The parameter values the entry was built with (for display and caching).
    dual:
        T(q11, q12, q22) = 𝔼[φ(u)φ(v)] in closed form, or None (then the Hermite series is used).
    angle_dual:
        For positively homogeneous φ of degree k: J(θ) with T = (q11 q22)^{k/2} J(θ). When given,
        `dual` is derived from it.
    degree:
        The homogeneity degree k, or None.
    derivative_reference:
        An independently known closed form of 𝔼[φ'(u)φ'(v)] (e.g. the order-0 arc-cosine kernel
        for ReLU), used to cross-check the Price derivative; None if there is none.
    dirac_derivative:
        True when φ' contains a Dirac delta; Σ̇ then follows `DIRAC_CONVENTION`.
    """

    name: str
    expr: sp.Expr
    params: dict[str, sp.Expr] = field(default_factory=dict)
    dual: sp.Expr | None = None
    angle_dual: sp.Expr | None = None
    degree: int | None = None
    derivative_reference: sp.Expr | None = None
    dirac_derivative: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        self.expr = sp.sympify(self.expr)
        free = self.expr.free_symbols - {X}
        if free:
            raise ExpressionError(
                f"activation {self.name!r} has free symbols {sorted(map(str, free))} besides x"
            )
        if self.angle_dual is not None:
            if self.degree is None:
                raise ExpressionError("an angle-form dual needs the homogeneity degree")
            self.dual = (q11 * q22) ** sp.Rational(self.degree, 2) * angle_to_covariance(
                self.angle_dual
            )

    # -- symbolic objects -------------------------------------------------------------------
    @property
    def has_closed_form(self) -> bool:
        return self.dual is not None

    @cached_property
    def derivative(self) -> sp.Expr:
        """φ'(x), by SymPy differentiation (Dirac deltas kept where SymPy produces them)."""
        return sp.diff(self.expr, X)

    @cached_property
    def price_derivative(self) -> sp.Expr | None:
        """∂T/∂q12: Price's theorem gives 𝔼[φ'(u)φ'(v)] (distributional, Dirac parts included)."""
        if self.dual is None:
            return None
        if self.angle_dual is not None:
            # dT/dq12 = (q11 q22)^{k/2} J'(θ) dθ/dq12 with dθ/dq12 = −1/(√(q11 q22) sin θ).
            d_angle = -sp.diff(self.angle_dual, theta) / sp.sin(theta)
            d_angle = sp.simplify(d_angle)
            scale = (q11 * q22) ** sp.Rational(self.degree - 1, 2)
            return scale * angle_to_covariance(d_angle)
        return sp.simplify(sp.diff(self.dual, q12))

    @cached_property
    def derivative_dual(self) -> sp.Expr | None:
        """Σ̇'s kernel Ṫ = 𝔼[φ'(u)φ'(v)] under the package convention (None without a closed form).

        Equal to `price_derivative`, except for activations whose derivative is a Dirac delta,
        where the almost-everywhere derivative (zero) is used (`DIRAC_CONVENTION`).
        """
        if self.dual is None:
            return None
        if self.dirac_derivative:
            return sp.Integer(0)
        return self.price_derivative

    @cached_property
    def angle_derivative_dual(self) -> sp.Expr | None:
        """Ṫ in angle form, K(θ) with Ṫ = (q11 q22)^{(k-1)/2} K(θ) (homogeneous entries only)."""
        if self.angle_dual is None:
            return None
        if self.dirac_derivative:
            return sp.Integer(0)
        return sp.simplify(-sp.diff(self.angle_dual, theta) / sp.sin(theta))

    def equations(self) -> tuple[sp.Eq, sp.Eq]:
        """The two dual maps as SymPy equations, for display."""
        T = sp.Function("T")(q11, q12, q22)
        Tdot = sp.Function(r"\dot{T}")(q11, q12, q22)
        return sp.Eq(T, self.dual), sp.Eq(Tdot, self.derivative_dual)

    def key(self) -> tuple:
        """A hashable identity: compiled kernels are cached per key."""
        return (self.name, sp.srepr(self.expr), tuple(sorted(self.params.items(), key=str)))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"Activation({self.name}{'(' + params + ')' if params else ''}: φ(x) = {self.expr})"
