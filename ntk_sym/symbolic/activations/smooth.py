"""Smooth activations whose Gaussian duals are closed forms in the covariance entries.

Notation: (u, v) ~ N(0, Q), Q = [[q11, q12], [q12, q22]], T = 𝔼[φ(u)φ(v)], Ṫ = 𝔼[φ'(u)φ'(v)];
Φ and ϕ are the standard normal CDF and density. Two Gaussian facts do all the work:

* characteristic function: 𝔼[exp(i(s u + t v))] = exp(−(s² q11 + 2 s t q12 + t² q22)/2), which
  gives the trigonometric and exponential entries;
* tilting: for a symmetric M with I − 2MQ positive definite,
  𝔼[exp((u, v) M (u, v)ᵀ) g(u, v)] = det(I − 2MQ)^{−1/2} 𝔼_{Q'}[g],  Q' = Q (I − 2MQ)^{−1};
  e.g. 𝔼[ϕ(u) g(u, v)] = 𝔼_{Q'}[g] / √(2π(1 + q11)) with Q' = Q − Q e₁e₁ᵀQ/(1 + q11),

together with Gaussian integration by parts (Stein), 𝔼[u g(u, v)] = q11 𝔼[∂_u g] + q12 𝔼[∂_v g].
Determinants are kept as polynomials in q12, e.g. (1 + q11)(1 + q22) − q12², so that the numeric
engine can rewrite them stably near q12² = q11 q22. Each entry's Ṫ is derived separately and
stored as `derivative_reference`; the test suite compares it with Price's ∂T/∂q12 and both with
quadrature (`ntk_sym.verify`).
"""

from __future__ import annotations

import sympy as sp

from ...errors import NTKSymError
from ..symbols import X, q11, q12, q22
from .base import Activation
from .catalogue import parameter, register


@register("gelu")
def gelu() -> Activation:
    """φ(x) = x Φ(x) = x (1 + erf(x/√2))/2 (the exact GELU; Tsuchida et al. 2021).

    With Δ = (1 + q11)(1 + q22) − q12², Stein's lemma on u, then tilting by ϕ(u) resp. ϕ(v), gives

        T = q12/4 + q12 asin(q12/√((1 + q11)(1 + q22)))/(2π)
            + [q11 q22 (1 + q11)(1 + q22) + q12² (1 − q11 q22)] / (2π (1 + q11)(1 + q22) √Δ),

    using 𝔼[Φ(u)Φ(v)] = 1/4 + asin(q12/√((1 + q11)(1 + q22)))/(2π). For φ' = Φ(x) + x ϕ(x),
    expanding the product and tilting each term:

        Ṫ = 1/4 + asin(q12/√((1 + q11)(1 + q22)))/(2π)
            + q12 (1/(1 + q11) + 1/(1 + q22)) / (2π √Δ) + q12/(2π Δ^{3/2}).
    """
    one1, one2 = 1 + q11, 1 + q22
    det = one1 * one2 - q12**2
    arc = sp.asin(q12 / sp.sqrt(one1 * one2)) / (2 * sp.pi)
    dual = (
        q12 / 4
        + q12 * arc
        + (q11 * q22 * one1 * one2 + q12**2 * (1 - q11 * q22))
        / (2 * sp.pi * one1 * one2 * sp.sqrt(det))
    )
    reference = (
        sp.Rational(1, 4)
        + arc
        + q12 * (1 / one1 + 1 / one2) / (2 * sp.pi * sp.sqrt(det))
        + q12 / (2 * sp.pi * det ** sp.Rational(3, 2))
    )
    return Activation(
        "gelu",
        X * (1 + sp.erf(X / sp.sqrt(2))) / 2,
        dual=dual,
        derivative_reference=reference,
        description="Gaussian error linear unit x·Φ(x)",
    )


def _trig_dual(a: sp.Expr, b: sp.Expr, c: sp.Expr, sign: int) -> sp.Expr:
    """𝔼[a sin(bu + c) · a sin(bv + c)] (sign = −1) or the same with cos (sign = +1).

    Product-to-sum and the characteristic function: 𝔼[cos(b(u − v))] = e^{−b²(q11 + q22 − 2q12)/2}
    and 𝔼[cos(b(u + v) + 2c)] = cos(2c) e^{−b²(q11 + q22 + 2q12)/2}, so
    T = a²/2 · e^{−b²(q11 + q22)/2} (e^{b² q12} ± cos(2c) e^{−b² q12}).
    """
    envelope = a**2 / 2 * sp.exp(-(b**2) * (q11 + q22) / 2)
    return envelope * (sp.exp(b**2 * q12) + sign * sp.cos(2 * c) * sp.exp(-(b**2) * q12))


@register("sin")
def sine(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """φ(x) = a·sin(bx + c); T by `_trig_dual`. φ' = ab·cos(bx + c) gives Ṫ with the + sign."""
    a, b, c = parameter(a, "a"), parameter(b, "b"), parameter(c, "c")
    return Activation(
        "sin",
        a * sp.sin(b * X + c),
        params={"a": a, "b": b, "c": c},
        dual=_trig_dual(a, b, c, -1),
        derivative_reference=_trig_dual(a * b, b, c, +1),
        description="sinusoid a·sin(bx + c)",
    )


@register("cos")
def cosine(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """φ(x) = a·cos(bx + c) (= sin with c + π/2); φ' = −ab·sin(bx + c) gives Ṫ with the − sign."""
    a, b, c = parameter(a, "a"), parameter(b, "b"), parameter(c, "c")
    return Activation(
        "cos",
        a * sp.cos(b * X + c),
        params={"a": a, "b": b, "c": c},
        dual=_trig_dual(a, b, c, +1),
        derivative_reference=_trig_dual(a * b, b, c, -1),
        description="sinusoid a·cos(bx + c)",
    )


@register("rbf")
def rbf(gamma: float = 1.0) -> Activation:
    """φ(x) = √2 sin(√(2γ) x + π/4), the random-Fourier-feature activation of the RBF kernel.

    With a = √2, b = √(2γ), c = π/4 in `_trig_dual` the cos(2c) term vanishes:
    T = exp(−γ (q11 + q22 − 2 q12)) = exp(−γ 𝔼[(u − v)²]), and Ṫ = 2γ T.
    """
    gamma = parameter(gamma, "gamma")
    if not gamma.is_positive:
        raise NTKSymError(f"rbf needs gamma > 0, got {gamma}")
    a, b, c = sp.sqrt(2), sp.sqrt(2 * gamma), sp.pi / 4
    return Activation(
        "rbf",
        a * sp.sin(b * X + c),
        params={"gamma": gamma},
        dual=_trig_dual(a, b, c, -1),
        derivative_reference=_trig_dual(a * b, b, c, +1),
        description="random Fourier feature √2·sin(√(2γ)x + π/4)",
    )


@register("exp")
def exponential(a: float = 1.0, b: float = 1.0) -> Activation:
    """φ(x) = a·e^{bx}; T = a² exp(b² (q11 + 2 q12 + q22)/2) (moment generating function of u + v).

    φ' = ab·e^{bx}, so Ṫ = a² b² exp(b² (q11 + 2 q12 + q22)/2).
    """
    a, b = parameter(a, "a"), parameter(b, "b")
    mgf = sp.exp(b**2 * (q11 + 2 * q12 + q22) / 2)
    return Activation(
        "exp",
        a * sp.exp(b * X),
        params={"a": a, "b": b},
        dual=a**2 * mgf,
        derivative_reference=a**2 * b**2 * mgf,
        description="exponential a·e^{bx}",
    )


@register("gaussian")
def gaussian(a: float = 1.0, b: float = -1.0) -> Activation:
    """φ(x) = a·e^{b x²} with b < 0 (a Gaussian bump).

    Tilting with M = b I: with Δ = (1 − 2b q11)(1 − 2b q22) − 4b² q12² = det(I − 2bQ),
    T = a² / √Δ, and for φ' = 2ab x e^{b x²}, Q' = Q (I − 2bQ)^{−1} has off-diagonal q12/Δ, so
    Ṫ = 4 a² b² q12 / Δ^{3/2}.

    Domain: 𝔼[φ(u)²] = a²/√(1 − 4b q11) is finite for every variance only when b < 0 (b > 0
    diverges once q11 ≥ 1/(4b); b = 0 is a constant), so b ≥ 0 is refused.
    """
    a, b = parameter(a, "a"), parameter(b, "b")
    if not b.is_negative:
        raise NTKSymError(
            f"gaussian needs b < 0: for b = {b} the bump a·exp(b x²) is constant (b = 0) or its "
            "second moment diverges once the variance reaches 1/(4b) (b > 0)"
        )
    det = (1 - 2 * b * q11) * (1 - 2 * b * q22) - 4 * b**2 * q12**2
    return Activation(
        "gaussian",
        a * sp.exp(b * X**2),
        params={"a": a, "b": b},
        dual=a**2 / sp.sqrt(det),
        derivative_reference=4 * a**2 * b**2 * q12 / det ** sp.Rational(3, 2),
        description="Gaussian bump a·exp(b x²)",
    )
