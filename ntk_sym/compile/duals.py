"""Compile an activation's dual maps into array functions (NumPy by default, CuPy on request).

The symbolic side (`activations`, `stable`) is turned into a `CompiledDual` once per activation,
backend and quadrature degree, and cached: the numeric engine never touches SymPy in its loops.

The maps a `CompiledDual` offers are described in `ntk_sym.numeric.dual`.
"""

from __future__ import annotations

import math

import sympy as sp

from ..errors import NTKSymError
from ..numeric.dual import AngleForm, CompiledDual, direct_gaps
from ..symbolic.activations import Activation
from ..symbolic.stable import SERIES_SWITCH, C, D, diagonal_form, pair_form, series_branches
from ..symbolic.symbols import X, q11, q22, theta
from .backends import array_module, broadcast
from .fused import fused_layer
from .printing import compile_for
from .quadrature import compile_quadrature
from .series import DEFAULT_TOL, compile_series

_q = sp.Symbol("q", nonnegative=True)
#: sin θ, as an argument of compiled angle-form functions (C is cos θ).
S = sp.Symbol("s", nonnegative=True)

#: Quadrature nodes per dimension for activations without a closed form (see `quadrature`).
DEFAULT_QUADRATURE_DEGREE = 128


_CACHE: dict[tuple, CompiledDual] = {}


def compile_dual(
    activation: Activation,
    backend: str = "numpy",
    degree: int | None = None,
    tol: float | None = None,
) -> CompiledDual:
    """The `CompiledDual` of `activation` for `backend`, compiled once and cached.

    Activations without a closed form get the Hermite series dual (`series`, truncation error
    ≤ tol relative to √(T11 T22) per layer, default `DEFAULT_TOL`) on NumPy; an explicit
    `degree` (or the CuPy backend) selects the 2-D trapezoidal rule with that many nodes per
    dimension (`quadrature`, default `DEFAULT_QUADRATURE_DEGREE`) instead.
    The cache key is the activation's identity (name, expression, parameters), so rebuilding the
    same network later, or with another depth or σ, reuses the compiled maps.
    """
    if activation.dual is not None:
        key = (activation.key(), backend, None, None)
    elif degree is not None or backend != "numpy":
        if tol is not None:
            raise NTKSymError("tol applies to the Hermite series; degree selects the 2-D rule")
        key = (activation.key(), backend, int(degree or DEFAULT_QUADRATURE_DEGREE), None)
    else:
        key = (activation.key(), backend, None, DEFAULT_TOL if tol is None else tol)
    if key not in _CACHE:
        if activation.angle_dual is not None:
            _CACHE[key] = _compile_angle(activation, backend)
        elif activation.dual is not None:
            _CACHE[key] = _compile_closed_form(activation, backend)
        elif key[2] is not None:
            _CACHE[key] = compile_quadrature(activation, backend, key[2])
        else:
            _CACHE[key] = compile_series(activation, backend, key[3])
    return _CACHE[key]


def _trig_form(expr: sp.Expr) -> sp.Expr:
    """`expr` with sin θ and cos θ replaced by the symbols S and C (θ may remain elsewhere)."""
    return expr.subs({sp.sin(theta): S, sp.cos(theta): C})


def _compile_angle(act: Activation, backend: str) -> CompiledDual:
    """T = (q11 q22)^{k/2} J(θ), Ṫ = (q11 q22)^{(k−1)/2} K(θ), gaps by Taylor branches.

    J and K are compiled in (θ, cos θ, sin θ), which the engine supplies without evaluating a
    trigonometric function, and the gaps are g∓ = (q11 q22)^{k/2} (J(0) ∓ J(θ)); within
    `SERIES_SWITCH` of θ = 0 (of π) the cancelling g₋ (g₊) comes from its Taylor polynomial
    instead, evaluated only on those entries.
    """
    xp = array_module(backend)
    k = act.degree
    J, K = act.angle_dual, act.angle_derivative_dual
    J0 = sp.simplify(J.subs(theta, 0))
    K0 = sp.limit(K, theta, 0)
    if J0 == 0:
        raise NTKSymError(f"{act.name}: J(0) = 0, the angle form cannot be normalised")
    near0, near_pi = series_branches(J / J0)
    J_t, K_t = _trig_form(J), _trig_form(K)
    # one call for both, with common subexpressions (the ReLU family's π − θ) evaluated once
    JK_f = compile_for((theta, C, S), (J_t, K_t), backend, cse=True)
    minus_s = compile_for((theta,), near0, backend)
    plus_s = compile_for((theta,), near_pi, backend)
    j0, k0 = float(J0), float(K0)
    zero_derivative = K == 0
    cos_switch = math.cos(SERIES_SWITCH)
    # at zero variance u ≡ 0 and 𝔼[φ(u)²] = φ(0)², which the angle form cannot see when k = 0
    phi0 = float(act.expr.subs(X, 0)) if k == 0 else 0.0

    def scale(a, b, power):
        # (a b)^{power/2} from per-point roots, so only the outer product is done per entry
        if power == 0:
            return 1.0
        return xp.sqrt(a) ** power * xp.sqrt(b) ** power

    def diag(q):
        T = xp.where(q > 0, j0 * scale(q, q, k), phi0**2)
        Tdot = xp.zeros_like(q) if zero_derivative else k0 * scale(q, q, k - 1)
        return T, Tdot

    def pair(a, b, th, cos, sin, T11, T22):
        Jv, Kv = JK_f(th, cos, sin)
        T12 = xp.multiply(Jv, scale(a, b, k))  # new even when J(θ) = cos θ is the input itself
        if zero_derivative:
            return T12, xp.zeros_like(cos)
        Tdot = xp.multiply(Kv, scale(a, b, k - 1))
        return T12, (Tdot if Tdot.shape == cos.shape else Tdot + xp.zeros_like(cos))

    def gaps(a, b, th, cos, sin, T11, T22, T12):
        root = j0 * scale(a, b, k) + xp.zeros_like(T12)
        gap_minus, gap_plus = root - T12, root + T12
        # within SERIES_SWITCH of 0 or π the cancelling gap comes from its Taylor polynomial
        for mask, gap, branch in (
            (cos > cos_switch, gap_minus, minus_s),
            (cos < -cos_switch, gap_plus, plus_s),
        ):
            if xp.any(mask):
                t = th[mask] if th is not None else xp.arctan2(sin[mask], cos[mask])
                gap[mask] = root[mask] * branch(t)
        if k == 0 and (xp.any(a == 0) or xp.any(b == 0)):
            # a zero variance breaks homogeneity (T11 = φ(0)² there): use the direct gaps
            direct = xp.sqrt(T11 * T22)
            degenerate = (a == 0) | (b == 0)
            gap_minus = xp.where(degenerate, direct - T12, gap_minus)
            gap_plus = xp.where(degenerate, direct + T12, gap_plus)
        return gap_minus, gap_plus

    # the same maps with their constant factors apart, for the engine's fused hidden layer
    (j, J_rest), (kappa, K_rest) = (
        sp.factor_terms(e).as_independent(theta, C, S, as_Add=False) for e in (J_t, K_t)
    )
    form = AngleForm(
        k,
        float(j),
        float(kappa),
        compile_for((theta, C, S), (J_rest, K_rest), backend, cse=True),
        fused_layer(J_rest, K_rest, (theta, C, S)) if backend == "numpy" else None,
    )
    return CompiledDual(
        diag, pair, gaps, "angle", needs_theta=J_t.has(theta) or K_t.has(theta), angle_form=form
    )


def _compile_closed_form(act: Activation, backend: str) -> CompiledDual:
    """Covariance-form duals, rewritten by `stable.pair_form` and compiled in (q11, q22, c, D)."""
    xp = array_module(backend)
    # one call for both, with common subexpressions (e.g. erf's √(1 + 2q11 + 2q22 + 4D)) shared
    pair_f = compile_for(
        (q11, q22, C, D), (pair_form(act.dual), pair_form(act.derivative_dual)), backend, cse=True
    )
    Tdiag = broadcast(compile_for((_q,), diagonal_form(act.dual, _q), backend), xp)
    Tddiag = broadcast(compile_for((_q,), diagonal_form(act.derivative_dual, _q), backend), xp)

    def diag(q):
        return Tdiag(q), Tddiag(q)

    def pair(a, b, th, cos, sin, T11, T22):
        det = (a * b) * (sin * sin)
        T12, Tdot = pair_f(a, b, cos, det)
        # constants, or expressions in the variances alone, come back unbroadcast
        if getattr(T12, "shape", None) != cos.shape:
            T12 = T12 + xp.zeros_like(cos)
        if getattr(Tdot, "shape", None) != cos.shape:
            Tdot = Tdot + xp.zeros_like(cos)
        return T12, Tdot

    return CompiledDual(diag, pair, direct_gaps, "closed form")
