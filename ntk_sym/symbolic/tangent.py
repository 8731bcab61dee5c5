"""The tangent (forward-mode) maps of the layers: how the kernels move with every log σ.

For a direction p in the log σ's of the Dense and Conv layers write ḟ = ∂f/∂p. A layer maps the
state (Σ₁₁, Σ₁₂, Σ₂₂, Θ) at a pair of inputs (positions) to the next one, and its tangent map
moves the state's tangents along:

    d Σ₁₂' = Σ_j ∂Σ₁₂'/∂S_j dS_j + Σ_σ σ ∂Σ₁₂'/∂σ · d log σ,   the same for Θ',

with S = (Σ₁₁, Σ₁₂, Σ₂₂, Θ). `map_tangent` derives these coefficients by SymPy differentiation
of the layer's own map (``layer.apply`` on a state of symbols, with σ_w, σ_b as symbols), so
any layer that defines `apply` has its tangent. A spatial layer (Conv, AvgPool, GlobalAvgPool,
Flatten) is a window mean over positions, which is linear and moves the tangents the same way,
followed by this pointwise map: on a state that does not depend on the position its sums are
constants, and ``.doit()`` leaves the pointwise part (for Conv the Dense map
Σ' = σ_w² Σ + σ_b², Θ' = Σ' + σ_w² Θ). The variances Σ₁₁, Σ₂₂ are the same map at single
inputs, so only Σ₁₂' and Θ' are kept.

Activations keep a hand-written form (`dual_tangent`): dT and dṪ are the jvps of the duals
along the tangent of the layer's covariance, derived here by SymPy differentiation of the
closed forms:

* covariance form (erf): dT = ∂T/∂q11 dq11 + ∂T/∂q12 dq12 + ∂T/∂q22 dq22, likewise for Ṫ.
* angle form (T = (q11 q22)^{k/2} J(θ), the ReLU family): the coordinates are (q11, q22, c) with
  c = cos θ = q12/√(q11 q22), and ∂/∂c = −(1/sin θ) ∂/∂θ at fixed variances. This keeps the
  coefficients finite wherever they can be: ReLU's ∂T/∂c = (π − θ)/(2π), while
  ∂Ṫ/∂c = 1/(2π sin θ) is singular at θ = 0. There dc = 0 exactly: θ = 0 only for identical
  inputs (or, with σ_b = 0, parallel ones, whose correlation does not depend on σ_w), and
  c ≤ 1 is at its maximum, so the term contributes nothing. The numeric side applies that rule
  (a term whose tangent is exactly zero is dropped, see `ntk_sym.numeric.tangent`).

Activations without a closed form use Price's theorem on the Hermite series instead
(`ntk_sym.numeric.tangent`). Everything here is SymPy; `ntk_sym.compile.tangent` compiles it
and `ntk_sym.numeric.tangent` evaluates it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..errors import NTKSymError
from .activations import Activation, catalogue
from .maps import KernelState, Layer
from .stable import C
from .symbols import q11, q12, q22, theta

#: sin θ, an argument of compiled angle-form coefficients (C = cos θ comes from `stable`).
S = sp.Symbol("s", nonnegative=True)
#: Tangents of the layer's covariance: dq11, dq12, dq22 and, for the angle form, dc = d cos θ.
dq11, dq12, dq22, dc = sp.symbols("dq_11 dq_12 dq_22 dc", real=True)

#: The state symbols of `map_tangent`: Σ₁₁, Σ₁₂, Σ₂₂, Θ, and the layer's σ_w, σ_b.
STATE = sp.symbols(r"\Sigma_{11} \Sigma_{12} \Sigma_{22} \Theta", real=True)
SIGMAS = sp.symbols("sigma_w sigma_b", positive=True)

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


def has_sigmas(layer: Layer) -> bool:
    """Whether `layer` has the trainable σ_w, σ_b of a Dense or Conv layer."""
    return hasattr(layer, "w_std") and hasattr(layer, "b_std") and hasattr(layer, "parameters")


@dataclass(frozen=True)
class MapTangent:
    """A layer's pointwise map and its tangent coefficients (see the module docstring).

    Attributes
    ----------
    arguments
        `STATE`, then `SIGMAS` for a layer with σ's.
    outputs
        (Σ₁₂', Θ').
    by_state
        by_state[i][j] = ∂outputs[i]/∂STATE[j].
    by_log_sigma
        by_log_sigma[i][k] = σ_k ∂outputs[i]/∂σ_k (empty for layers without σ's).
    """

    arguments: tuple[sp.Symbol, ...]
    outputs: tuple[sp.Expr, sp.Expr]
    by_state: tuple[tuple[sp.Expr, ...], ...]
    by_log_sigma: tuple[tuple[sp.Expr, ...], ...]


def map_tangent(layer: Layer) -> MapTangent:
    """The pointwise map of `layer` on `STATE` and its derivatives, by `sp.diff` of its `apply`."""
    sigmas = SIGMAS if has_sigmas(layer) else ()
    symbols = {layer: sigmas} if sigmas else None
    out = layer.apply(KernelState(*STATE), symbols)
    outputs = tuple(sp.sympify(e).doit() for e in (out.s12, out.ntk))
    by_state = tuple(tuple(sp.diff(e, v) for v in STATE) for e in outputs)
    by_log_sigma = tuple(tuple(sp.expand(v * sp.diff(e, v)) for v in sigmas) for e in outputs)
    return MapTangent(STATE + sigmas, outputs, by_state, by_log_sigma)


__all__ = [
    "SIGMAS",
    "STATE",
    "DualTangent",
    "MapTangent",
    "closed_form_names",
    "dual_tangent",
    "has_sigmas",
    "jvp",
    "map_tangent",
]
