"""Angle forms of the arc-cosine family, derived rather than typed in.

For φ(x) = max(0, x)ᵏ (Cho & Saul 2009) and (u, v) with unit variances and correlation cos θ,

    𝔼[φ(u)φ(v)] = J_k(θ) / (2π),
    J_k(θ) = (−1)ᵏ (sin θ)^{2k+1} ( (1/sin θ) ∂/∂θ )ᵏ ( (π − θ) / sin θ ),

so J_0 = π − θ and J_1 = sin θ + (π − θ) cos θ. The closed forms are checked against mpmath
quadrature by `ntk_sym.verify`.
"""

from functools import cache

import sympy as sp

from ..symbols import theta


@cache
def arccos_J(order: int) -> sp.Expr:
    """J_k(θ) of the order-k arc-cosine kernel, by the derivative formula above."""
    if order < 0:
        raise ValueError(f"arc-cosine order must be non-negative, got {order}")
    s = sp.sin(theta)
    f = (sp.pi - theta) / s
    for _ in range(order):
        f = sp.diff(f, theta) / s
    return sp.simplify((-1) ** order * s ** (2 * order + 1) * f)
