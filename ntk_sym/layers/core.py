"""The public layers: frozen, hashable descriptions of one layer each.

Every layer is its kernel map (`ntk_sym.symbolic.maps`, which holds the equations and the LaTeX)
with the public constructor. Conventions (neural-tangents' ``stax``):

* ``Dense(w_std=1.0, b_std=0.0, parameterization="ntk")``: Σ' = σ_w²Σ + σ_b², Θ' = Σ' + σ_w²Θ
  (``"standard"``: Θ' = Σ + 1 + σ_w²Θ, for weight learning rates η/fan_in);
* ``Activation(name_or_sympy_expr, **params)``: Σ' = T(Σ), Θ' = Ṫ(Σ)Θ, and shortcuts `Relu`,
  `Erf`, `Tanh`, `Gelu`, …;
* ``Residual(*layers)``: out = block(x) + x, so the kernels add;
* ``LayerNorm()``: Σ' = Σ₁₂/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂) (see `ntk_sym.symbolic.maps`);
* ``Identity()``: nothing changes.

Each layer's ``finite()`` is its finite-width twin (`ntk_sym.finite.layers`), built from the same
parameters, so the finite network and the kernel cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..finite.layers import (
    FiniteDense,
    FiniteElementwise,
    FiniteIdentity,
    FiniteLayerNorm,
    FiniteResidual,
)
from ..symbolic.activations import Activation as Phi
from ..symbolic.activations import resolve
from ..symbolic.maps import ActivationMap, DenseMap, IdentityMap, LayerNormMap, ResidualMap


class Dense(DenseMap):
    """A fully connected layer: h = (σ_w/√fan_in) W a + σ_b b (NTK parameterization), W, b ~
    N(0, 1); or W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²) (standard). Kernels: Σ' = σ_w²Σ + σ_b²,
    Θ' = Σ' + σ_w²Θ (standard: Σ + 1 + σ_w²Θ)."""

    def finite(self) -> FiniteDense:
        return FiniteDense(self.w_std, self.b_std, self.standard)


class Activation(ActivationMap):
    """An elementwise nonlinearity φ: a catalogue name with its parameters (``"leaky_relu",
    alpha=0.2``), a SymPy expression in one symbol, or an `ntk_sym.symbolic.activations`
    entry. Kernels: Σ' = T(Σ₁₁, Σ₁₂, Σ₂₂) = 𝔼[φ(u)φ(v)], Θ' = Ṫ(Σ₁₁, Σ₁₂, Σ₂₂) Θ.

    `phi` is the symbolic entry (φ, φ', the duals); equality and hashing follow its identity.
    """

    __slots__ = ("_phi", "function", "params")

    def __init__(self, function: str | sp.Expr | Phi = "relu", **params: float) -> None:
        object.__setattr__(self, "_phi", resolve(function, **params))
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "params", tuple(sorted(params.items())))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        return (_activation_from, (self.function, self.params))

    @property
    def phi(self) -> Phi:
        return self._phi

    def finite(self) -> FiniteElementwise:
        return FiniteElementwise.of(self.phi)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and other.phi.key() == self.phi.key()

    def __hash__(self) -> int:
        return hash(("activation", self.phi.key()))

    def __repr__(self) -> str:
        args = [repr(self.function) if isinstance(self.function, str) else str(self.function)]
        args += [f"{k}={v!r}" for k, v in self.params]
        return f"Activation({', '.join(args)})"


def _activation_from(function, params: tuple) -> Activation:
    return Activation(function, **dict(params))


# The shortcuts are functions named like the layer classes (as in stax), each an Activation.
def Relu() -> Activation:
    """φ(x) = max(0, x)."""
    return Activation("relu")


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """φ(x) = a·erf(bx) + c."""
    return Activation("erf", a=a, b=b, c=c)


def Tanh() -> Activation:
    """φ(x) = tanh x (no closed-form dual: quadrature)."""
    return Activation("tanh")


def Gelu() -> Activation:
    """φ(x) = x Φ(x)."""
    return Activation("gelu")


def Sigmoid() -> Activation:
    """φ(x) = 1/(1 + e^{−x}) (quadrature)."""
    return Activation("sigmoid")


def Softplus() -> Activation:
    """φ(x) = log(1 + e^x) (quadrature)."""
    return Activation("softplus")


def Silu() -> Activation:
    """φ(x) = x/(1 + e^{−x}) (quadrature)."""
    return Activation("silu")


def Elu() -> Activation:
    """φ(x) = x for x > 0, e^x − 1 otherwise (quadrature)."""
    return Activation("elu")


def LeakyRelu(alpha: float = 0.01) -> Activation:
    """φ(x) = max(x, 0) + α min(x, 0)."""
    return Activation("leaky_relu", alpha=alpha)


def Abs() -> Activation:
    """φ(x) = |x|."""
    return Activation("abs")


@dataclass(frozen=True)
class LayerNorm(LayerNormMap):
    """Normalisation over the features to unit mean square: Σ' = Σ₁₂/√(Σ₁₁Σ₂₂),
    Θ' = Θ/√(Σ₁₁Σ₂₂) in the limit. An input of zero variance at this layer is an error."""

    def finite(self) -> FiniteLayerNorm:
        return FiniteLayerNorm()


@dataclass(frozen=True)
class Identity(IdentityMap):
    """The identity layer: Σ' = Σ, Θ' = Θ."""

    def finite(self) -> FiniteIdentity:
        return FiniteIdentity()


class Residual(ResidualMap):
    """``Residual(*layers)``: out = block(x) + x with block = layers in order, so
    Σ' = Σ_block + Σ and Θ' = Θ_block + Θ."""

    def __init__(self, *layers: ResidualMap) -> None:
        object.__setattr__(self, "block", tuple(layers))
        self.__post_init__()

    def __reduce__(self):
        return (_residual_from, self.block)

    def finite(self) -> FiniteResidual:
        return FiniteResidual(tuple(layer.finite() for layer in self.block))

    def __repr__(self) -> str:
        return f"Residual({', '.join(map(repr, self.block))})"


def _residual_from(*layers) -> Residual:
    return Residual(*layers)
