"""The catalogue: activations with closed-form Gaussian duals, and named ones without.

Every entry's dual T = 𝔼[φ(u)φ(v)] and its Price derivative ∂T/∂q12 are checked against ≥30-digit
two-dimensional quadrature by `ntk_sym.verify` in the test suite. Sources: Cho & Saul (2009) for
the arc-cosine family, Williams (1997) for erf, Tsuchida et al. (2018, 2021) for ABReLU and GELU.

Parameters follow the usual conventions: abrelu(a, b) = a·min(x, 0) + b·max(x, 0),
leaky_relu(alpha) = abrelu(alpha, 1), erf(a, b, c) = a·erf(bx) + c.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from ..errors import UnknownActivationError
from ..symbols import X, q11, q12, q22, theta
from .arccos import arccos_J
from .base import Activation

_REGISTRY: dict[str, Callable[..., Activation]] = {}


def register(name: str) -> Callable[[Callable[..., Activation]], Callable[..., Activation]]:
    """Add a constructor to the catalogue under `name`."""

    def wrap(fn: Callable[..., Activation]) -> Callable[..., Activation]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def names() -> list[str]:
    """The catalogue's activation names, sorted."""
    return sorted(_REGISTRY)


def get(name: str, **params: float) -> Activation:
    """Build catalogue entry `name` with its parameters, e.g. ``get("leaky_relu", alpha=0.2)``."""
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, got {type(name).__name__}")
    try:
        ctor = _REGISTRY[name]
    except KeyError:
        raise UnknownActivationError(
            f"unknown activation {name!r}; known activations: {', '.join(names())}"
        ) from None
    try:
        return ctor(**params)
    except TypeError as err:
        raise TypeError(f"activation {name!r}: {err}") from None


def _num(value: float) -> sp.Expr:
    """A parameter as an exact SymPy number (floats kept as given, integers exact)."""
    value = sp.nsimplify(value, rational=False) if isinstance(value, float) else sp.sympify(value)
    if not value.is_real or not value.is_finite:
        raise ValueError(f"activation parameters must be finite real numbers, got {value}")
    return value


# -- the ReLU family: positively homogeneous, written in angle form ------------------------------
@register("relu")
def relu() -> Activation:
    """φ(x) = max(0, x); T = √(q11 q22) J_1(θ)/(2π), Ṫ = J_0(θ)/(2π) (Cho & Saul 2009)."""
    return Activation(
        "relu",
        sp.Max(X, 0),
        angle_dual=arccos_J(1) / (2 * sp.pi),
        degree=1,
        derivative_reference=(sp.pi - sp.acos(q12 / sp.sqrt(q11 * q22))) / (2 * sp.pi),
        description="rectified linear unit",
    )


@register("abrelu")
def abrelu(a: float = 0.0, b: float = 1.0) -> Activation:
    """φ(x) = a·min(x, 0) + b·max(x, 0).

    With φ = b·relu(x) − a·relu(−x) and 𝔼[relu(u) relu(−v)] = √(q11 q22) J_1(π − θ)/(2π):
    T = √(q11 q22) [(a² + b²) J_1(θ) − 2ab J_1(π − θ)] / (2π).
    """
    a, b = _num(a), _num(b)
    j1 = arccos_J(1)
    angle = ((a**2 + b**2) * j1 - 2 * a * b * j1.subs(theta, sp.pi - theta)) / (2 * sp.pi)
    return Activation(
        "abrelu",
        a * sp.Min(X, 0) + b * sp.Max(X, 0),
        params={"a": a, "b": b},
        angle_dual=sp.simplify(angle),
        degree=1,
        description="two-slope rectifier",
    )


@register("leaky_relu")
def leaky_relu(alpha: float = 0.01) -> Activation:
    """φ(x) = max(x, 0) + alpha·min(x, 0) = abrelu(alpha, 1)."""
    act = abrelu(alpha, 1)
    act.name, act.params = "leaky_relu", {"alpha": _num(alpha)}
    return act


@register("abs")
def absolute() -> Activation:
    """φ(x) = |x| = abrelu(−1, 1); T = √(q11 q22)(2 sin θ + (π − 2θ) cos θ)/π."""
    act = abrelu(-1, 1)
    act.name, act.params, act.expr = "abs", {}, sp.Abs(X)
    return act


@register("step")
def step() -> Activation:
    """φ(x) = H(x) (Heaviside); T = (π − θ)/(2π). φ' = δ: see `DIRAC_CONVENTION`."""
    return Activation(
        "step",
        sp.Heaviside(X),
        angle_dual=arccos_J(0) / (2 * sp.pi),
        degree=0,
        dirac_derivative=True,
        description="Heaviside step",
    )


@register("sign")
def sign() -> Activation:
    """φ(x) = sign(x); T = 1 − 2θ/π = (2/π) asin(q12/√(q11 q22)).

    φ' = 2δ: see `DIRAC_CONVENTION`.
    """
    return Activation(
        "sign",
        sp.sign(X),
        angle_dual=1 - 2 * theta / sp.pi,
        degree=0,
        dirac_derivative=True,
        description="sign",
    )


@register("arccos")
def arccos(order: int = 1) -> Activation:
    """Rectified monomial φ(x) = max(0, x)ᵏ with the order-k arc-cosine dual J_k(θ)/(2π)."""
    if int(order) != order or order < 0:
        raise ValueError(f"arccos order must be a non-negative integer, got {order}")
    order = int(order)
    if order == 0:
        return step()
    return Activation(
        f"arccos{order}",
        sp.Max(X, 0) ** order,
        params={"order": sp.Integer(order)},
        angle_dual=arccos_J(order) / (2 * sp.pi),
        degree=order,
        description=f"rectified monomial max(0, x)^{order}",
    )


@register("identity")
def identity() -> Activation:
    """φ(x) = x; T = q12 = √(q11 q22) cos θ, Ṫ = 1."""
    return Activation("identity", X, angle_dual=sp.cos(theta), degree=1, description="linear")


# -- smooth activations with closed forms in the covariance entries ------------------------------
@register("erf")
def erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """φ(x) = a·erf(bx) + c (Williams 1997).

    T = a² (2/π) asin( 2b² q12 / √((1 + 2b² q11)(1 + 2b² q22)) ) + c²  (𝔼[erf(bu)] = 0).
    """
    a, b, c = _num(a), _num(b), _num(c)
    s = 2 * b**2
    dual = (
        a**2 * 2 / sp.pi * sp.asin(s * q12 / sp.sqrt((1 + s * q11) * (1 + s * q22))) + c**2
    )
    return Activation(
        "erf",
        a * sp.erf(b * X) + c,
        params={"a": a, "b": b, "c": c},
        dual=dual,
        derivative_reference=(
            4 * a**2 * b**2 / sp.pi / sp.sqrt((1 + s * q11) * (1 + s * q22) - s**2 * q12**2)
        ),
        description="scaled error function",
    )


# -- named activations without a closed form: numerical quadrature ------------------------------
_QUADRATURE_ONLY: dict[str, tuple[sp.Expr, str]] = {
    "tanh": (sp.tanh(X), "hyperbolic tangent"),
    "sigmoid": (1 / (1 + sp.exp(-X)), "logistic sigmoid"),
    "softplus": (sp.log(1 + sp.exp(X)), "softplus log(1 + e^x)"),
    "silu": (X / (1 + sp.exp(-X)), "SiLU / swish x·sigmoid(x)"),
    "elu": (sp.Piecewise((X, X > 0), (sp.exp(X) - 1, True)), "ELU with alpha = 1"),
}


def _quadrature_entry(name: str) -> Callable[[], Activation]:
    expr, description = _QUADRATURE_ONLY[name]

    def ctor() -> Activation:
        return Activation(name, expr, description=description + " (no closed form: quadrature)")

    ctor.__doc__ = f"φ(x) = {expr}; expectations by numerical quadrature."
    return ctor


for _name in _QUADRATURE_ONLY:
    register(_name)(_quadrature_entry(_name))
