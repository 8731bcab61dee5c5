"""The tangent (forward-mode) recursion: how the NNGP and NTK move with log σ_w and log σ_b.

For a parameter p (log σ_w or log σ_b) write ḟ = ∂f/∂p. Differentiating the layer maps

    Σ' = σ_w² T(q11, q12, q22) + σ_b²,   Σ̇' = σ_w² Ṫ(q11, q12, q22),   Θ' = Σ' + Σ̇' Θ

gives the tangent maps

    d Σ' = d(σ_w²) T + σ_w² dT + d(σ_b²),
    d Σ̇' = d(σ_w²) Ṫ + σ_w² dṪ,
    d Θ' = d Σ' + d Σ̇' Θ + Σ̇' dΘ,

with d(σ_w²) = 2σ_w² for p = log σ_w (else 0), d(σ_b²) = 2σ_b² for p = log σ_b (else 0), and the
first layer Σ⁽¹⁾ = Θ⁽¹⁾ = σ_w² x·x'/d + σ_b² differentiating to d(σ_w²) x·x'/d + d(σ_b²).
dT and dṪ are the jvps of the activation's duals along the tangent of the layer's covariance
(`dual_tangent`), derived here by SymPy differentiation of the closed forms:

* covariance form (erf): dT = ∂T/∂q11 dq11 + ∂T/∂q12 dq12 + ∂T/∂q22 dq22, likewise for Ṫ.
* angle form (T = (q11 q22)^{k/2} J(θ), the ReLU family): the coordinates are (q11, q22, c) with
  c = cos θ = q12/√(q11 q22), and ∂/∂c = −(1/sin θ) ∂/∂θ at fixed variances. This keeps the
  coefficients finite wherever they can be: ReLU's ∂T/∂c = (π − θ)/(2π), while
  ∂Ṫ/∂c = 1/(2π sin θ) is singular at θ = 0. There dc = 0 exactly: θ = 0 only for identical
  inputs (or, with σ_b = 0, parallel ones, whose correlation does not depend on σ_w), and
  c ≤ 1 is at its maximum, so the term contributes nothing. The numeric side applies that rule
  (a term whose tangent is exactly zero is dropped, see `ntk_sym.numeric.tangent`).

Everything here is SymPy; `ntk_sym.compile.tangent` compiles it and `ntk_sym.numeric.tangent`
evaluates it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..errors import NTKSymError
from .activations import Activation, catalogue
from .stable import C
from .symbols import q11, q12, q22, theta

#: sin θ, an argument of compiled angle-form coefficients (C = cos θ comes from `stable`).
S = sp.Symbol("s", nonnegative=True)
#: Tangents of the layer's covariance: dq11, dq12, dq22 and, for the angle form, dc = d cos θ.
dq11, dq12, dq22, dc = sp.symbols("dq_11 dq_12 dq_22 dc", real=True)

#: Symbols of the generic layer map (`layer_tangent`).
w2, b2, dw2, db2 = sp.symbols("sigma_w^2 sigma_b^2 dsigma_w^2 dsigma_b^2", real=True)
T_, Tdot_, dT_, dTdot_ = sp.symbols(r"T \dot{T} dT d\dot{T}", real=True)
Theta_, dTheta_ = sp.symbols(r"\Theta d\Theta", real=True)


def jvp(expr: sp.Expr, tangents: dict[sp.Symbol, sp.Expr]) -> sp.Expr:
    """The directional derivative Σᵥ ∂expr/∂v · tangents[v] (forward mode, one direction)."""
    return sp.Add(*(sp.diff(expr, v) * dv for v, dv in tangents.items()))


@dataclass(frozen=True)
class DualTangent:
    """An activation's duals and their jvps as coefficients of the tangent symbols.

    Attributes
    ----------
    form
        "covariance" (primal arguments q11, q12, q22; tangents dq11, dq12, dq22) or "angle"
        (primal θ, C = cos θ, S = sin θ, q11, q22; tangents dq11, dq22, dc).
    primal, tangents
        The argument symbols of the compiled functions, and the tangent symbols.
    T, Tdot
        The duals T and Ṫ (package convention for Ṫ, `Activation.derivative_dual`).
    dT, dTdot
        {tangent symbol: coefficient}, so that dT = Σ coefficient · tangent.
    """

    form: str
    primal: tuple[sp.Symbol, ...]
    tangents: tuple[sp.Symbol, ...]
    T: sp.Expr
    Tdot: sp.Expr
    dT: dict[sp.Symbol, sp.Expr]
    dTdot: dict[sp.Symbol, sp.Expr]


def dual_tangent(act: Activation) -> DualTangent:
    """The jvps of `act`'s duals (see the module docstring); closed-form duals only."""
    if act.dual is None:
        raise NTKSymError(
            f"activation {act.name!r} has no closed-form dual, so its kernel has no analytic "
            "gradient in σ_w, σ_b; gradients are available for the activations with one: "
            + ", ".join(closed_form_names())
        )
    if act.angle_dual is not None:
        return _angle_tangent(act)
    T, Tdot = act.dual, act.derivative_dual
    tangents = (dq11, dq12, dq22)
    variables = (q11, q12, q22)

    def coefficients(expr: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
        return {d: sp.diff(expr, v) for d, v in zip(tangents, variables, strict=True)}

    return DualTangent(
        "covariance", variables, tangents, T, Tdot, coefficients(T), coefficients(Tdot)
    )


def closed_form_names() -> list[str]:
    """The catalogue entries (default parameters) that have a closed-form dual."""
    return [name for name in catalogue.names() if catalogue.get(name).has_closed_form]


def _d_dc(expr: sp.Expr) -> sp.Expr:
    """∂/∂c at fixed variances of an expression in θ: −(1/sin θ) ∂/∂θ, in (θ, C, S)."""
    return _trig(sp.simplify(-sp.diff(expr, theta) / sp.sin(theta)))


def _trig(expr: sp.Expr) -> sp.Expr:
    return expr.subs({sp.sin(theta): S, sp.cos(theta): C})


def _angle_tangent(act: Activation) -> DualTangent:
    """T = (q11 q22)^{k/2} J(θ), Ṫ = (q11 q22)^{(k−1)/2} K(θ) and their jvps in (q11, q22, c).

    ∂T/∂c uses the true derivative −J'(θ)/sin θ (Price's theorem's 𝔼[φ'φ'], Dirac parts
    included: the kernel value does move with c for step and sign), while Ṫ follows the
    package's almost-everywhere convention.
    """
    k = act.degree
    J, K = act.angle_dual, act.angle_derivative_dual
    scale_T = (q11 * q22) ** sp.Rational(k, 2)
    scale_D = (q11 * q22) ** sp.Rational(k - 1, 2)
    T, Tdot = scale_T * _trig(J), scale_D * _trig(K)

    def coefficients(scale: sp.Expr, angular: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
        return {
            dq11: sp.diff(scale, q11) * _trig(angular),
            dq22: sp.diff(scale, q22) * _trig(angular),
            dc: scale * _d_dc(angular),
        }

    return DualTangent(
        "angle",
        (theta, C, S, q11, q22),
        (dq11, dq22, dc),
        T,
        Tdot,
        coefficients(scale_T, J),
        coefficients(scale_D, K),
    )


def layer_tangent() -> tuple[tuple[sp.Expr, ...], tuple[sp.Expr, ...]]:
    """The layer map (Σ', Σ̇', Θ') and its jvp (dΣ', dΣ̇', dΘ') in the module's symbols.

    Derived by `jvp` from the NTK-parameterization map, with the tangents d(σ_w²), d(σ_b²),
    dT, dṪ, dΘ of its inputs.
    """
    sigma = w2 * T_ + b2
    sigma_dot = w2 * Tdot_
    ntk = sigma + sigma_dot * Theta_
    directions = {w2: dw2, b2: db2, T_: dT_, Tdot_: dTdot_, Theta_: dTheta_}
    maps = (sigma, sigma_dot, ntk)
    return maps, tuple(jvp(m, directions) for m in maps)


def layer_tangent_equations() -> list[sp.Eq]:
    """`layer_tangent` as equations, for display."""
    names = (r"\Sigma'", r"\dot{\Sigma}'", r"\Theta'")
    maps, tangents = layer_tangent()
    return [sp.Eq(sp.Symbol(n), m) for n, m in zip(names, maps, strict=True)] + [
        sp.Eq(sp.Symbol("d" + n), t) for n, t in zip(names, tangents, strict=True)
    ]


__all__ = [
    "DualTangent",
    "closed_form_names",
    "dual_tangent",
    "jvp",
    "layer_tangent",
    "layer_tangent_equations",
]
