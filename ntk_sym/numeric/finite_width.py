"""Numeric evaluation of the O(1/n) finite-width expansion (`ntk_sym.symbolic.finite_width`).

`finite_width(net, X, width)` evaluates the symbolic fold on NumPy arrays, one entry per input
point, so every point's diagonal entry (x_i, x_i) is computed in the same vectorised pass. The
Gaussian moments are compiled from their closed forms in q where φ is piecewise polynomial
(ReLU family, polynomials), else integrated on a Gauss–Legendre rule of 2 × 96 nodes on
[−12, 0] ∪ [0, 12] (split at 0, where the catalogue's kinks are): for φ smooth on each half-line
and of at most polynomial growth the truncation (mass beyond |z| = 12: 4e-33) and the rule's
error stay below 1e-12 relative (measured: about 1e-13 against 30-digit mpmath, in the tests).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from ..compile.printing import compile_for
from ..errors import NTKSymError
from ..symbolic import finite_width as symbolic
from ..symbolic.activations import Activation
from ..symbolic.gaussian_moments import MOMENTS, TABLE, check_derivative, closed_form, q, z
from ..symbolic.symbols import X as _X
from .inputs import as_inputs

_HALF_NODES = 96
_CUT = 12.0


@lru_cache(maxsize=1)
def _rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ∫ g(z) N(z) dz on [−12, 0] ∪ [0, 12] (N the standard normal)."""
    t, w = np.polynomial.legendre.leggauss(_HALF_NODES)
    half = _CUT / 2
    nodes = np.concatenate([half * (t - 1), half * (t + 1)])
    weights = np.concatenate([half * w, half * w]) * np.exp(-(nodes**2) / 2) / np.sqrt(2 * np.pi)
    return nodes, weights


@cache
def _compiled(phi: Activation):
    """A function q-array ↦ dict of moment arrays for `phi`."""
    closed = closed_form(phi)
    if closed is not None:
        fns = {k: compile_for((q,), v, "numpy") for k, v in closed.items()}

        def exact(var: np.ndarray) -> dict:
            return {k: np.broadcast_to(f(var), var.shape).astype(np.float64) for k, f in
                    fns.items()}

        return exact
    nodes, weights = _rule()
    phi_fn = compile_for((_X,), phi.expr, "numpy")
    dphi_fn = compile_for((_X,), check_derivative(phi), "numpy")
    parts = {
        name: (i, j, np.broadcast_to(compile_for((z,), p, "numpy")(nodes), nodes.shape)
               * weights, k)
        for name, (i, j, p, k) in TABLE.items()
    }

    def quadrature(var: np.ndarray) -> dict:
        x = np.sqrt(var)[..., None] * nodes
        f = np.broadcast_to(phi_fn(x), x.shape)
        d = np.broadcast_to(dphi_fn(x), x.shape)
        powers = {(i, j): f**i * d**j for i, j, _, _ in parts.values()}
        return {name: (powers[i, j] @ w) / var**k for name, (i, j, w, k) in parts.items()}

    return quadrature


def moments(phi: Activation | None, var: np.ndarray) -> dict:
    """The moments (`ntk_sym.symbolic.gaussian_moments.MOMENTS`) at the variances `var`."""
    if phi is None:
        return symbolic.identity_moments(var)
    return _compiled(phi)(np.asarray(var, dtype=np.float64))


def _widths(width: object, hidden: int) -> tuple[int, ...]:
    items = list(width) if isinstance(width, Sequence) and not isinstance(width, str) else None
    values = [width] * hidden if items is None else items
    if items is not None and len(items) != hidden:
        raise NTKSymError(
            f"width: {len(items)} widths given, but the network has {hidden} hidden layers"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise NTKSymError(f"width must be an integer (or one per hidden layer), got {v!r}")
        if v < 2:
            raise NTKSymError(
                f"width must be at least 2 (a width-1 layer has no 1/n expansion), got {v}"
            )
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class FiniteWidth:
    """The O(1/n) prediction for a finite network at the inputs X (one entry per point x_i, the
    diagonal (x_i, x_i) of the Gram matrices).

    nngp_mean, ntk_mean: 𝔼[Σ̂(x_i, x_i)], 𝔼[Θ̂(x_i, x_i)], the limit plus Σ_ℓ a_ℓ/n_ℓ;
    nngp_var, ntk_var: their variances over initialisations, Σ_ℓ b_ℓ/n_ℓ;
    nngp, ntk: the infinite-width limits; widths: n_1 … n_L;
    coefficients: dict of (m, L) arrays, the 1/n_ℓ coefficients a_ℓ, b_ℓ of each quantity
    ("nngp_shift", "ntk_shift", "nngp_var", "ntk_var"); exact SymPy values for one input are
    `ntk_sym.symbolic.finite_width.expansion`.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    nngp_mean: np.ndarray
    ntk_mean: np.ndarray
    nngp_var: np.ndarray
    ntk_var: np.ndarray
    widths: tuple[int, ...]
    coefficients: dict


def finite_width(net: object, X: object, width: object) -> FiniteWidth:
    """The O(1/n) mean and variance of the empirical NNGP and NTK of ``finite.init(net, width)``
    networks at each input point (NTK parameterization, one output; see
    `ntk_sym.symbolic.finite_width`). `width` is an int ≥ 2 or one int per hidden layer."""
    stage_list = symbolic.stages(net.layers)
    hidden = len(stage_list) - 1
    widths = _widths(width, hidden)
    arr = as_inputs(X, "X")
    input_kernel = np.einsum("ij,ij->i", arr, arr) / arr.shape[1]
    numeric_stages = [
        symbolic.Stage(float(s.w_std), float(s.b_std), s.phi, s.source) for s in stage_list
    ]
    exp = symbolic.fold(numeric_stages, input_kernel, moments)
    n = np.asarray(widths, dtype=np.float64)
    coefficients = {
        name: (np.stack([np.broadcast_to(c, input_kernel.shape) for c in getattr(exp, name)],
                        axis=-1) if hidden else np.zeros(input_kernel.shape + (0,)))
        for name in ("nngp_shift", "ntk_shift", "nngp_var", "ntk_var")
    }
    per = {name: c @ (1.0 / n) for name, c in coefficients.items()}
    nngp = np.broadcast_to(exp.nngp, input_kernel.shape).astype(np.float64)
    ntk = np.broadcast_to(exp.ntk, input_kernel.shape).astype(np.float64)
    return FiniteWidth(
        nngp=nngp,
        ntk=ntk,
        nngp_mean=nngp + per["nngp_shift"],
        ntk_mean=ntk + per["ntk_shift"],
        nngp_var=per["nngp_var"],
        ntk_var=per["ntk_var"],
        widths=widths,
        coefficients=coefficients,
    )


__all__ = ["MOMENTS", "FiniteWidth", "finite_width", "moments"]
