"""A stand-in network description for the finite-side tests, and a hand-written infinite-width
recursion on whole Gram matrices, independent of the package's layer engine.

`StandIn(*layers)` takes the little layer records below and offers ``finite_layers()`` (the twins
that `ntk_sym.finite.init` consumes by duck typing) and ``kernels(X)`` (the limit), so the finite
network and its limit come from one description, as they will with ``ntk_sym.serial``.

Conventions (those of the issue, equal to neural-tangents' stax): the input kernel is
Σ = x·x'/d, Θ = 0; then per layer

* Dense (NTK):        Σ' = σ_w² Σ + σ_b²,   Θ' = Σ' + σ_w² Θ;
* Dense (standard):   Σ' = σ_w² Σ + σ_b²,   Θ' = Σ + 1 + σ_w² Θ (weight rates η/fan_in);
* Activation:         Σ' = T(Σ₁₁, Σ₁₂, Σ₂₂), Θ' = Ṫ Θ;
* Residual:           Σ' = Σ_block + Σ,      Θ' = Θ_block + Θ;
* LayerNorm:          Σ'₁₂ = Σ₁₂/√(Σ₁₁Σ₂₂), Θ'₁₂ = Θ₁₂/√(Σ₁₁Σ₂₂).

T and Ṫ come from the package's compiled closed-form duals (relu's arc-cosine, erf's arcsine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ntk_sym
from ntk_sym import layers as L
from ntk_sym.compile.duals import DEFAULT_QUADRATURE_DEGREE, compile_dual
from ntk_sym.finite.layers import (
    FiniteDense,
    FiniteElementwise,
    FiniteIdentity,
    FiniteLayerNorm,
    FiniteResidual,
)
from ntk_sym.symbolic.activations import get


@dataclass(frozen=True)
class Dense:
    w_std: float = 1.0
    b_std: float = 0.0
    standard: bool = False


@dataclass(frozen=True)
class Act:
    name: str


@dataclass(frozen=True)
class Res:
    block: tuple


@dataclass(frozen=True)
class Norm:
    pass


@dataclass(frozen=True)
class Ident:
    pass


def twins(layers) -> tuple:
    out = []
    for layer in layers:
        if isinstance(layer, Dense):
            out.append(FiniteDense(layer.w_std, layer.b_std, layer.standard))
        elif isinstance(layer, Act):
            out.append(FiniteElementwise.of(get(layer.name)))
        elif isinstance(layer, Res):
            out.append(FiniteResidual(twins(layer.block)))
        elif isinstance(layer, Norm):
            out.append(FiniteLayerNorm())
        else:
            out.append(FiniteIdentity())
    return tuple(out)


def serial_layers(layers) -> tuple:
    """The same layers as `ntk_sym.layers` objects (for ``ntk_sym.serial``)."""
    out = []
    for layer in layers:
        if isinstance(layer, Dense):
            kind = "standard" if layer.standard else "ntk"
            out.append(L.Dense(layer.w_std, layer.b_std, kind))
        elif isinstance(layer, Act):
            out.append(L.Activation(layer.name))
        elif isinstance(layer, Res):
            out.append(L.Residual(*serial_layers(layer.block)))
        elif isinstance(layer, Norm):
            out.append(L.LayerNorm())
        else:
            out.append(L.Identity())
    return tuple(out)


def activation_map(name: str, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, Ṫ) on a symmetric Gram matrix Σ: T = 𝔼[φ(u)φ(v)], Ṫ = 𝔼[φ'(u)φ'(v)]."""
    # degree= keeps activations without a closed form on the 2-D rule, whose pair needs no
    # per-point data (the engine's default, the Hermite series, does); closed forms ignore it
    dual = compile_dual(get(name), degree=DEFAULT_QUADRATURE_DEGREE)
    q = np.diag(sigma).copy()
    t_diag, _ = dual.diag(q)
    root = np.sqrt(np.outer(q, q))
    cos = np.clip(sigma / root, -1.0, 1.0)
    sin = np.sqrt(np.clip(1.0 - cos**2, 0.0, None))
    theta = np.arccos(cos)
    t12, tdot = dual.pair(q[:, None], q[None, :], theta, cos, sin, t_diag[:, None], t_diag[None, :])
    return np.asarray(t12), np.asarray(tdot)


def recursion(layers, sigma: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Σ, Θ) after `layers`, written out layer by layer from the conventions above."""
    for layer in layers:
        if isinstance(layer, Dense):
            new = layer.w_std**2 * sigma + layer.b_std**2
            base = sigma + 1.0 if layer.standard else new
            sigma, theta = new, base + layer.w_std**2 * theta
        elif isinstance(layer, Act):
            t, tdot = activation_map(layer.name, sigma)
            sigma, theta = t, tdot * theta
        elif isinstance(layer, Res):
            block_sigma, block_theta = recursion(layer.block, sigma, theta)
            sigma, theta = block_sigma + sigma, block_theta + theta
        elif isinstance(layer, Norm):
            d = np.sqrt(np.diag(sigma))
            scale = np.outer(d, d)
            sigma, theta = sigma / scale, theta / scale
    return sigma, theta


class StandIn:
    """A network description with ``finite_layers()`` and hand-recursion kernels."""

    def __init__(self, *layers) -> None:
        self.layers = layers

    def finite_layers(self) -> tuple:
        return twins(self.layers)

    @property
    def serial(self):
        """The package's network of the same layers."""
        return ntk_sym.serial(*serial_layers(self.layers))

    def kernels(self, x1: np.ndarray, x2: np.ndarray | None = None):
        """(NNGP, NTK) Gram matrices of the limit on X1 (X2 = None) or on the (X1, X2) block."""
        x = x1 if x2 is None else np.vstack([x1, x2])
        sigma, theta = recursion(self.layers, x @ x.T / x.shape[1], np.zeros((len(x), len(x))))
        if x2 is None:
            return sigma, theta
        n = len(x1)
        return sigma[:n, n:], theta[:n, n:]

    def nngp(self, x1, x2=None):
        return self.kernels(x1, x2)[0]

    def ntk(self, x1, x2=None):
        return self.kernels(x1, x2)[1]
