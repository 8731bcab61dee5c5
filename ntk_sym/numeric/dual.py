"""The protocol between compiled duals and the engine: `CompiledDual`, and the direct gaps.

A `CompiledDual` offers three array maps, for the diagonal, for pairs of inputs, and for the gaps:

* ``diag(q) -> (T, Ṫ)`` with T = 𝔼[φ(u)²], Ṫ = 𝔼[φ'(u)²] for u ~ N(0, q);
* ``pair(q11, q22, θ, cos θ, sin θ, T11, T22) -> (T12, Ṫ12)`` on a tile: the variances and
  T's are per-point vectors shaped (n1, 1) and (1, n2) that broadcast against the (n1, n2) angle
  arrays; θ is None unless `needs_theta`;
* ``gaps(q11, q22, θ, cos θ, sin θ, T11, T22, T12) -> (g₋, g₊)`` on 1-D arrays of the few pairs
  near θ = 0 or π, with g∓ = √(T11 T22) ∓ T12 ≥ 0 computed without cancellation: the engine forms
  the next layer's angle of those pairs from them (elsewhere the difference is harmless).

Duals may carry data that depends on one point and one layer (the Hermite coefficients
c_k(q) of the series dual): ``per_point(q) -> array (m, n)`` is then called once per input set
and layer, next to `diag`, and `pair` and `gaps` get the slices of the tile's points as the
keyword ``extra=(E1, E2)``, (m, n1) and (m, n2) (for `gaps`, (m, pairs) each). A dual with
``reports_bound`` returns ``(T12, Ṫ12, bound)`` from `pair`, bound = (β_T, β_Ṫ, pairs) the
largest certified truncation errors of T12 and Ṫ12 on the tile relative to √(T11 T22) and
√(Ṫ11 Ṫ22), and the number of pairs it computed by another rule; the engine collects them
(`ntk_sym.numeric.bound`).

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
    kind: str  # "angle", "closed form", "quadrature" or "hermite series"
    #: whether `pair` reads θ itself; if not, the engine passes θ = None and skips its atan2
    needs_theta: bool = False
    #: per-point data of one layer, q (n,) -> (m, n) array, or None (module docstring)
    per_point: Callable | None = None
    #: whether `pair` returns a third value, its error bound (module docstring)
    reports_bound: bool = False


def direct_gaps(a, b, th, cos, sin, T11, T22, T12):
    """g∓ = √(T11 T22) ∓ T12 as written: for duals smooth in cos θ, whose T12 carries no
    cancellation-prone angle factor (closed forms, quadrature)."""
    root = T11**0.5 * T22**0.5
    return root - T12, root + T12
