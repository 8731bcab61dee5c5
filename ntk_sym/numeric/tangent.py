"""The tangent recursion on arrays of pairs: kernels and their derivatives in log σ_w, log σ_b.

Runs the layer recursion and its jvp (`ntk_sym.symbolic.tangent`) on whole (n1, n2) arrays for
both directions at once, from

    Σ⁽¹⁾ = σ_w² x·x'/d + σ_b²,   ∂Σ⁽¹⁾/∂log σ_w = 2σ_w² x·x'/d,   ∂Σ⁽¹⁾/∂log σ_b = 2σ_b².

Only the NTK parameterization is covered. The array functions come from `ntk_sym.compile.tangent`.

Zero tangents: a coefficient can be infinite where its tangent is exactly zero, e.g. ReLU's
∂Ṫ/∂c = 1/(2π sin θ) at θ = 0 (identical inputs, dc = 0) or ∂T/∂q11 at a zero variance (a zero
input with σ_b = 0, where q11 ≡ 0). Such terms contribute nothing and are dropped. Identical
rows (and the diagonal) are passed in as a mask, so their angle is exactly 0 and dc = 0 at every
layer, rather than a rounded angle of ~1e-8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NTKSymError

#: Order of the derivative axis: ∂/∂log σ_w, then ∂/∂log σ_b.
PARAMETERS = ("w_std", "b_std")


@dataclass(frozen=True)
class CompiledTangent:
    """An activation's duals and jvp coefficients as one array function.

    ``values(*primal) -> (T, Ṫ, dT coefficients..., dṪ coefficients...)``; the primal arguments
    are (q11, q12, q22) for form "covariance" (tangents dq11, dq12, dq22), (θ, cos θ, sin θ, q11,
    q22) for "angle" (tangents dq11, dq22, d cos θ). degree: the homogeneity degree of an angle
    form (degree 0, step and sign, has an angle map θ ↦ θ' ∝ √θ near 0).
    """

    form: str
    values: Callable
    n_tangents: int
    degree: int | None = None


@dataclass(frozen=True)
class _State:
    """One layer's covariance of a set of pairs and its tangents (leading axis: parameter)."""

    q11: np.ndarray
    q12: np.ndarray
    q22: np.ndarray
    d11: np.ndarray
    d12: np.ndarray
    d22: np.ndarray
    identical: np.ndarray


def _dual_jvp(ct: CompiledTangent, s: _State) -> tuple[np.ndarray, ...]:
    """(T, Ṫ, dT, dṪ) of a layer; the tangents carry a leading parameter axis."""
    if ct.form == "covariance":
        primal = (s.q11, s.q12, s.q22)
        tangents = (s.d11, s.d12, s.d22)
    else:
        root = np.sqrt(s.q11 * s.q22)
        positive = root > 0
        safe = np.where(positive, root, 1.0)
        cos = np.where(s.identical | ~positive, 1.0, np.clip(s.q12 / safe, -1.0, 1.0))
        sin = np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
        th = np.arctan2(sin, cos)
        log_rate = _ratio(s.d11, s.q11) + _ratio(s.d22, s.q22)
        # cos θ = ±1 is an extremum of c, so dc = 0 there (rounded angles of near-identical
        # pairs, θ ≲ 1e-8, land here too: their dc-term is O(θ))
        at_pole = s.identical | ~positive | (sin == 0)
        dcos = np.where(at_pole, 0.0, s.d12 / safe - 0.5 * cos * log_rate)
        if ct.degree == 0 and np.any(at_pole & ~s.identical & positive):
            # there the next angle grows like √θ and its tangent is not O(θ)
            raise NTKSymError(
                "kernel gradients of a degree-0 activation (step, sign) are ill-conditioned for "
                "distinct inputs whose angle rounds to 0 or π (closer than ~1e-8); remove the "
                "near-duplicates"
            )
        primal = (th, cos, sin, s.q11, s.q22)
        tangents = (s.d11, s.d22, dcos)
    T, Tdot, *coefficients = ct.values(*primal)
    n = ct.n_tangents
    # only the dc coefficient (angle form) and zero variances can meet an infinite coefficient
    zero_variance = bool(np.any(s.q11 == 0) or np.any(s.q22 == 0))
    masked = tuple(zero_variance or (ct.form == "angle" and i == 2) for i in range(n))
    return (
        T,
        Tdot,
        _apply(coefficients[:n], tangents, masked),
        _apply(coefficients[n:], tangents, masked),
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den, 0 where num is exactly 0 (a variance identically zero has zero tangent)."""
    return np.where(num == 0, 0.0, num / np.where(den == 0, 1.0, den))


def _apply(
    coefficients: list, tangents: tuple[np.ndarray, ...], masked: tuple[bool, ...]
) -> np.ndarray:
    """Σ coefficient · tangent; in the `masked` terms a tangent exactly zero contributes zero
    even where its coefficient is infinite."""
    total = 0.0
    for coef, tan, mask in zip(coefficients, tangents, masked, strict=True):
        if isinstance(coef, int | float) and coef == 0:
            continue
        total = total + (np.where(tan == 0, 0.0, coef * tan) if mask else coef * tan)
    return total + np.zeros_like(tangents[0])


def tangent_kernels(
    ct: CompiledTangent | None,
    layer: Callable,
    depth: int,
    w_std: float,
    b_std: float,
    dots: np.ndarray,
    diag1: np.ndarray,
    diag2: np.ndarray,
    identical: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """(Σ, Θ, dΣ, dΘ) of the readout for pairs with input products `dots` = x·x'/d (any shape).

    ct: the activation's `CompiledTangent` (None for depth 0); layer: the compiled layer map and
    its jvp (`ntk_sym.compile.tangent.compile_layer`), keyword arguments named by the symbols of
    `ntk_sym.symbolic.tangent`; diag1, diag2: ‖x‖²/d and ‖x'‖²/d, broadcasting against `dots`;
    identical: where x = x' exactly. The tangents come back with a leading axis of length 2
    (`PARAMETERS`).
    """
    w2, b2 = w_std**2, b_std**2
    rates = np.array([[2 * w2, 0.0], [0.0, 2 * b2]])  # d(σ_w², σ_b²)/d(log σ_w, log σ_b)
    dw2 = rates[:, 0].reshape((2,) + (1,) * dots.ndim)
    db2 = rates[:, 1].reshape(dw2.shape)

    def first(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return w2 * x + b2, dw2 * x + db2

    q12, d12 = first(dots)
    q11, d11 = first(diag1)
    q22, d22 = first(diag2)
    ntk, d_ntk = q12, d12
    if depth and ct.degree == 0 and b_std == 0 and (np.any(diag1 == 0) or np.any(diag2 == 0)):
        # u ≡ 0 there, so T = φ(0)² is not the angle form's J(0) (homogeneity fails at 0)
        raise NTKSymError(
            "kernel gradients of a degree-0 activation (step, sign) at a zero input need b_std > 0"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(depth):
            pair = _dual_jvp(ct, _State(q11, q12, q22, d11, d12, d22, identical))
            left = _dual_jvp(ct, _State(q11, q11, q11, d11, d11, d11, np.True_))
            right = _dual_jvp(ct, _State(q22, q22, q22, d22, d22, d22, np.True_))
            q12, _, ntk, d12, _, d_ntk = _step(layer, pair, ntk, d_ntk, w2, b2, dw2, db2)
            q11, _, _, d11, _, _ = _step(layer, left, 0.0, 0.0, w2, b2, dw2, db2)
            q22, _, _, d22, _, _ = _step(layer, right, 0.0, 0.0, w2, b2, dw2, db2)
    return q12, ntk, d12, d_ntk


def _step(layer, dual, ntk, d_ntk, w2, b2, dw2, db2):
    """(Σ', Σ̇', Θ', dΣ', dΣ̇', dΘ') from the duals' values and jvps and Θ, dΘ of this layer."""
    T, Tdot, dT, dTdot = dual
    values = {
        "sigma_w^2": w2, "sigma_b^2": b2, "dsigma_w^2": dw2, "dsigma_b^2": db2,
        "T": T, r"\dot{T}": Tdot, "dT": dT, r"d\dot{T}": dTdot,
        r"\Theta": ntk, r"d\Theta": d_ntk,
    }  # fmt: skip
    return layer(**values)
