"""The protocol between compiled duals and the engine: `CompiledDual`, and the direct gaps.

A `CompiledDual` offers three array maps, for the diagonal, for pairs of inputs, and for the gaps:

* ``diag(q) -> (T, Ṫ)`` with T = 𝔼[φ(u)²], Ṫ = 𝔼[φ'(u)²] for u ~ N(0, q);
* ``pair(q11, q22, θ, cos θ, sin θ, T11, T22) -> (T12, Ṫ12)`` on a tile: the variances and
  T's are per-point vectors shaped (n1, 1) and (1, n2) that broadcast against the (n1, n2) angle
  arrays; θ is None unless `needs_theta`;
* ``gaps(q11, q22, θ, cos θ, sin θ, T11, T22, T12) -> (g₋, g₊)`` on 1-D arrays of the few pairs
  near θ = 0 or π, with g∓ = √(T11 T22) ∓ T12 ≥ 0 computed without cancellation: the engine forms
  the next layer's angle of those pairs from them (elsewhere the difference is harmless).

`ntk_sym.compile` produces these from SymPy expressions; the engine only calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CompiledDual:
    """Array functions of one activation's dual maps (see the module docstring)."""

    diag: Callable
    pair: Callable
    gaps: Callable
    kind: str  # "angle", "closed form" or "quadrature"
    #: whether `pair` reads θ itself; if not, the engine passes θ = None and skips its atan2
    needs_theta: bool = False


def direct_gaps(a, b, th, cos, sin, T11, T22, T12):
    """g∓ = √(T11 T22) ∓ T12 as written: for duals smooth in cos θ, whose T12 carries no
    cancellation-prone angle factor (closed forms, quadrature)."""
    root = T11**0.5 * T22**0.5
    return root - T12, root + T12
