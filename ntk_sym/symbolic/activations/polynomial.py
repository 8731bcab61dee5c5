"""Polynomial activations, with duals from Isserlis' (Wick's) theorem.

For (u, v) ~ N(0, [[q11, q12], [q12, q22]]), 𝔼[uʲ vᵏ] is the sum over perfect matchings of the
j + k factors of the product of the matched covariances. A matching with m pairs (u, v) picks
m of the j u's, m of the k v's, and pairs them (C(j, m) C(k, m) m! ways); the remaining u's pair
among themselves ((j − m − 1)!! ways) and so do the v's, hence

    𝔼[uʲ vᵏ] = Σ_{m ≤ min(j, k), m ≡ j ≡ k (mod 2)}
               C(j, m) C(k, m) m! (j − m − 1)!! (k − m − 1)!! q12ᵐ q11^{(j−m)/2} q22^{(k−m)/2},

and 0 when j + k is odd ((−1)!! = 1). A polynomial φ = Σ c_j xʲ then has T = Σ c_j c_k 𝔼[uʲ vᵏ],
a polynomial in (q11, q12, q22). Price's theorem, ∂_{q12} 𝔼[uʲ vᵏ] = j k 𝔼[u^{j−1} v^{k−1}], is
an identity of these sums; the entries store the dual of φ' as `derivative_reference` so that the
tests check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import sympy as sp

from ...errors import NTKSymError
from ..symbols import X, q11, q12, q22, theta
from .base import Activation
from .catalogue import nonnegative_integer, parameter, register


@cache
def gaussian_moment(j: int, k: int) -> sp.Expr:
    """𝔼[uʲ vᵏ] for (u, v) ~ N(0, [[q11, q12], [q12, q22]]), by Isserlis' theorem (see above)."""
    if (j + k) % 2:
        return sp.Integer(0)
    total = sp.Integer(0)
    for m in range(j % 2, min(j, k) + 1, 2):
        count = (
            sp.binomial(j, m)
            * sp.binomial(k, m)
            * sp.factorial(m)
            * sp.factorial2(j - m - 1)
            * sp.factorial2(k - m - 1)
        )
        total += count * q12**m * q11 ** ((j - m) // 2) * q22 ** ((k - m) // 2)
    return total


def _polynomial_dual(coefficients: Sequence[sp.Expr]) -> sp.Expr:
    """T = Σ_{j,k} c_j c_k 𝔼[uʲ vᵏ], expanded into a polynomial in q11, q12, q22."""
    total = sp.Integer(0)
    for j, cj in enumerate(coefficients):
        for k, ck in enumerate(coefficients):
            if cj != 0 and ck != 0:
                total += cj * ck * gaussian_moment(j, k)
    return sp.expand(total)


@register("monomial")
def monomial(degree: int = 2) -> Activation:
    """φ(x) = x^degree, positively homogeneous of that degree k.

    With unit variances and q12 = cos θ, Isserlis gives J(θ) = 𝔼[z₁ᵏ z₂ᵏ] as a polynomial in
    cos θ, and T = (q11 q22)^{k/2} J(θ). Ṫ = k² 𝔼[u^{k−1} v^{k−1}].
    """
    k = nonnegative_integer(degree, "degree")
    unit = {q11: 1, q22: 1, q12: sp.cos(theta)}
    reference = k**2 * gaussian_moment(k - 1, k - 1) if k else sp.Integer(0)
    return Activation(
        f"monomial{k}",
        X**k,
        params={"degree": sp.Integer(k)},
        angle_dual=gaussian_moment(k, k).subs(unit),
        degree=k,
        derivative_reference=reference,
        description=f"monomial x^{k}",
    )


@register("polynomial")
def polynomial(coefficients: Sequence[float] = (0.0, 1.0)) -> Activation:
    """φ(x) = Σ_k c_k x^k with coefficients = (c_0, c_1, ...) in increasing degree.

    T = Σ_{j,k} c_j c_k 𝔼[uʲ vᵏ] (Isserlis); Ṫ is the same sum for φ' (coefficients (k+1) c_{k+1}).
    """
    if isinstance(coefficients, str) or not isinstance(coefficients, Sequence):
        raise NTKSymError(
            f"polynomial coefficients must be a sequence of numbers (c_0, c_1, ...), "
            f"got {coefficients!r}"
        )
    coeffs = [parameter(c, f"coefficient c_{k}") for k, c in enumerate(coefficients)]
    if not coeffs:
        raise NTKSymError("polynomial needs at least one coefficient")
    slopes = [k * c for k, c in enumerate(coeffs)][1:]
    return Activation(
        "polynomial",
        sum((c * X**k for k, c in enumerate(coeffs)), sp.Integer(0)),
        params={"coefficients": tuple(coeffs)},
        dual=_polynomial_dual(coeffs),
        derivative_reference=_polynomial_dual(slopes),
        description="polynomial Σ c_k x^k",
    )
