"""The protocol between compiled duals and the engine: `CompiledDual`, and the direct gaps.

A `CompiledDual` offers three array maps, for the diagonal, for pairs of inputs, and for the gaps:

* ``diag(q) -> (T, Ṫ)`` with T = 𝔼[φ(u)²], Ṫ = 𝔼[φ'(u)²] for u ~ N(0, q);
* ``pair(q11, q22, θ, cos θ, sin θ, T11, T22) -> (T12, Ṫ12)`` on a tile: the variances and
  T's are per-point vectors shaped (n1, 1) and (1, n2) that broadcast against the (n1, n2) angle
  arrays; θ is None unless `needs_theta`;
* ``gaps(q11, q22, θ, cos θ, sin θ, T11, T22, T12) -> (g₋, g₊)`` on 1-D arrays of the few pairs
  near θ = 0 or π, with g∓ = √(T11 T22) ∓ T12 ≥ 0 computed without cancellation: the engine forms
  the next layer's angle of those pairs from them (elsewhere the difference is harmless).

Positively homogeneous duals (the ReLU family) also carry their `AngleForm`, which lets the
engine fold the constants and the variance factors into per-point vectors (a hidden layer's
fused step, `ntk_sym.numeric.steps.ActivationDense`).

Two optional hooks, for duals that are series or other approximations (the Hermite series):

* ``per_point(q) -> (m, n)``: data of single points and one layer (e.g. the coefficients c_k(q)
  of the layer's input variances q), computed once per input set and layer next to `diag`, and
  passed to `pair` and `gaps` as the keyword ``extra=(E1, E2)``: the slices (m, n1), (m, n2) of
  the tile's rows and columns (for `gaps`, (m, pairs) each);
* ``reports_bound``: `pair` returns ``(T12, Ṫ12, bound)``, bound a certified error bound of that
  tile; the engine collects ``(layer name, bound)`` over tiles and layers
  (``net.kernels(X, report=d)`` puts the list in ``d["bounds"]``).

`ntk_sym.compile` produces these from SymPy expressions; the engine only calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AngleForm:
    """T = j (q11 q22)^{k/2} J̃(θ) and Ṫ = κ (q11 q22)^{(k−1)/2} K̃(θ) with the numbers j, κ
    apart: ``parts(θ, cos θ, sin θ) -> (J̃, K̃)`` (arrays, or numbers where constant; never
    changed in place by the engine, since they may be the arguments themselves).

    ``fused``, when given, is the whole hidden layer (activation, Dense, next angle) as one
    compiled loop over a tile (`ntk_sym.compile.fused`), which the engine then uses on NumPy."""

    degree: int
    j: float
    kappa: float
    parts: Callable
    fused: Callable | None = None


@dataclass(frozen=True)
class CompiledDual:
    """Array functions of one activation's dual maps (see the module docstring)."""

    diag: Callable
    pair: Callable
    gaps: Callable
    kind: str  # "angle", "closed form" or "quadrature"
    #: whether `pair` reads θ itself; if not, the engine passes θ = None and skips its atan2
    needs_theta: bool = False
    #: the homogeneous structure of angle-form duals, None for the others
    angle_form: AngleForm | None = None
    #: per-point data of one layer, q (n,) -> (m, n) array, or None (module docstring)
    per_point: Callable | None = None
    #: whether `pair` returns a third value, its error bound (module docstring)
    reports_bound: bool = False
    #: `pair` on the convolutional engine's grids of (position, image) pairs, for duals with
    #: per-point data: ``pair_grid(cos, sin, q1, q2, E1, E2, *, diag, zipped) -> (T12, Ṫ12,
    #: bound, (T11, T22))`` with the grids (P1, P2, t1, t2) and per-point arrays (P, t), packs
    #: (m, P, t) (`ntk_sym.numeric.conv.mehler`); None for the others
    pair_grid: Callable | None = None


def direct_gaps(a, b, th, cos, sin, T11, T22, T12):
    """g∓ = √(T11 T22) ∓ T12 as written: for duals smooth in cos θ, whose T12 carries no
    cancellation-prone angle factor (closed forms, quadrature)."""
    root = T11**0.5 * T22**0.5
    return root - T12, root + T12
