"""The catalogue: activations with closed-form Gaussian duals, and named ones without.

Every entry's dual T = 𝔼[φ(u)φ(v)] and its Price derivative ∂T/∂q12 are checked against ≥30-digit
two-dimensional quadrature by `ntk_sym.verify` in the test suite. Sources: Cho & Saul (2009) for
the arc-cosine family, Williams (1997) for erf, Tsuchida et al. (2018, 2021) for ABReLU and GELU.

Parameters follow the usual conventions: abrelu(a, b) = a·min(x, 0) + b·max(x, 0),
leaky_relu(alpha) = abrelu(alpha, 1), erf(a, b, c) = a·erf(bx) + c, arccos(order) = max(0, x)^order.
The smooth entries (gelu, sin, cos, exp, gaussian, rbf) live in `smooth`, the polynomial ones
(monomial, polynomial) in `polynomial`; both register themselves here.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable

import sympy as sp

from ...errors import NTKSymError, UnknownActivationError
from ..symbols import X, q11, q12, q22, theta
from .arccos import arccos_J
from .base import Activation, angle_to_covariance

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
    signature = inspect.signature(ctor)
    try:
        # Bind first, so that only a wrong parameter *name* is reported as such; errors raised
        # while building the entry keep their own message.
        signature.bind(**params)
    except TypeError:
        accepted = ", ".join(signature.parameters) or "no parameters"
        raise TypeError(
            f"activation {name!r} got parameters {sorted(params)}; it accepts: {accepted}"
        ) from None
    return ctor(**params)


def parameter(value: float, label: str = "parameter") -> sp.Expr:
    """A parameter as a SymPy number (short floats become exact rationals, e.g. 0.2 → 1/5)."""
    if isinstance(value, str):  # SymPy would parse (and evaluate) it as code
        raise NTKSymError(f"activation {label} must be a number, not the string {value!r}")
    try:
        number = sp.nsimplify(value, rational=False) if isinstance(value, float) else value
        number = sp.sympify(number, strict=True)
    except (sp.SympifyError, TypeError):
        raise NTKSymError(f"activation {label} must be a real number, got {value!r}") from None
    if not (number.is_number and number.is_real and number.is_finite):
        raise NTKSymError(f"activation {label} must be a finite real number, got {value!r}")
    return number


def nonnegative_integer(value: int, label: str) -> int:
    """An integer parameter ≥ 0 (an order or degree); floats such as 2.0 are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise NTKSymError(f"activation {label} must be a non-negative integer, got {value!r}")
    return int(value)


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
    Independently, φ' = a on x < 0 and b on x > 0, and the quadrant probabilities
    P(u > 0, v > 0) = (π − θ)/(2π), P(u < 0, v > 0) = θ/(2π) give
    Ṫ = [(a² + b²)(π − θ) + 2ab θ] / (2π).
    """
    a, b = parameter(a, "a"), parameter(b, "b")
    j1 = arccos_J(1)
    angle = ((a**2 + b**2) * j1 - 2 * a * b * j1.subs(theta, sp.pi - theta)) / (2 * sp.pi)
    slope_kernel = ((a**2 + b**2) * (sp.pi - theta) + 2 * a * b * theta) / (2 * sp.pi)
    return Activation(
        "abrelu",
        a * sp.Min(X, 0) + b * sp.Max(X, 0),
        params={"a": a, "b": b},
        angle_dual=sp.simplify(angle),
        degree=1,
        derivative_reference=angle_to_covariance(slope_kernel),
        description="two-slope rectifier",
    )


@register("leaky_relu")
def leaky_relu(alpha: float = 0.01) -> Activation:
    """φ(x) = max(x, 0) + alpha·min(x, 0) = abrelu(alpha, 1)."""
    act = abrelu(alpha, 1)
    act.name, act.params = "leaky_relu", {"alpha": parameter(alpha, "alpha")}
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
    """Rectified monomial φ(x) = max(0, x)ᵏ with the order-k arc-cosine dual J_k(θ)/(2π).

    Since φ' = k·max(0, x)^{k−1} for k ≥ 1, Ṫ = k² (q11 q22)^{(k−1)/2} J_{k−1}(θ)/(2π): the
    order-(k−1) kernel, an independent check of differentiating J_k. Order 0 is `step`.
    """
    order = nonnegative_integer(order, "order")
    if order == 0:
        return step()
    lower = order**2 * (q11 * q22) ** sp.Rational(order - 1, 2) * arccos_J(order - 1)
    return Activation(
        f"arccos{order}",
        sp.Max(X, 0) ** order,
        params={"order": sp.Integer(order)},
        angle_dual=arccos_J(order) / (2 * sp.pi),
        degree=order,
        derivative_reference=angle_to_covariance(lower / (2 * sp.pi)),
        description=f"rectified monomial max(0, x)^{order}",
    )


@register("identity")
def identity() -> Activation:
    """φ(x) = x; T = q12 = √(q11 q22) cos θ, Ṫ = 1."""
    return Activation(
        "identity",
        X,
        angle_dual=sp.cos(theta),
        degree=1,
        derivative_reference=sp.Integer(1),
        description="linear",
    )


# -- smooth activations with closed forms in the covariance entries ------------------------------
@register("erf")
def erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """φ(x) = a·erf(bx) + c (Williams 1997).

    T = a² (2/π) asin( 2b² q12 / √((1 + 2b² q11)(1 + 2b² q22)) ) + c²  (𝔼[erf(bu)] = 0).
    """
    a, b, c = parameter(a, "a"), parameter(b, "b"), parameter(c, "c")
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


# -- named activations without a closed form: the Hermite series (ntk_sym.compile.series) --------
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
        return Activation(name, expr, description=description + " (no closed form: Hermite series)")

    ctor.__doc__ = f"φ(x) = {expr}; expectations by its Hermite series (no closed form)."
    return ctor


for _name in _QUADRATURE_ONLY:
    register(_name)(_quadrature_entry(_name))
