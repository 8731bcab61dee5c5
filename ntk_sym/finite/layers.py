"""Finite-width twins of the layer kinds: the local forward map of each layer and its pullback.

A network is a tuple of twins (``net.finite_layers()``). Each twin knows only its own equations;
`ntk_sym.finite.network` strings them together, draws the Dense parameters and collects the
empirical kernels. With a⁽ⁱⁿ⁾ the layer's input (one row per input point, n units):

* `FiniteDense`: h = c_w W a + c_b b. NTK parameterization: W, b ~ N(0, 1), c_w = σ_w/√n_in,
  c_b = σ_b, learning-rate weights r_w = r_b = 1. Standard: W ~ N(0, σ_w²/n_in), b ~ N(0, σ_b²),
  c_w = c_b = 1, r_w = 1/n_in, r_b = 1. Pullback δ_in = c_w Wᵀ δ.
* `FiniteElementwise`: a = φ(h), pullback δ_h = φ'(h) ⊙ δ.
* `FiniteResidual`: out = block(x) + x, pullback δ_x = δ + (pullback of the block)(δ).
* `FiniteLayerNorm`: y = √n h/‖h‖ (RMS normalisation, no centring, no learned gain), pullback
  δ_h = Jᵀδ with the symmetric Jacobian J = (√n/‖h‖)(I − ĥĥᵀ), ĥ = h/‖h‖, so
  δ_h = (√n/‖h‖)(δ − y (y·δ)/n).
* `FiniteIdentity`: a = h.

Why RMS and not centred LayerNorm. In the limit, the units of a layer's input are i.i.d. across
units with second moment Σ, so mean(h²) → Σ₁₁ and y·y'/n → Σ₁₂/√(Σ₁₁Σ₂₂), the map of the
kernel side, wherever the layer sits. Centring also subtracts the mean over units, which tends
to 𝔼[h]: zero directly after a Dense (same limit), but 𝔼[φ(u)] ≠ 0 after a ReLU, where centred
LayerNorm tends to (T₁₂ − μμ')/√((T₁₁ − μ²)(T₂₂ − μ'²)) instead. RMS normalisation has the stated
limit in every position, so the finite and infinite networks describe the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, NTKSymError
from ..symbolic.activations import Activation
from .functions import activation_functions

ArrayFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LayerScales:
    """Multipliers of one Dense layer: h = c_w W a + c_b b; learning-rate weights r_w, r_b."""

    c_w: float
    c_b: float
    r_w: float
    r_b: float


@dataclass(frozen=True)
class FiniteDense:
    """h = c_w W a + c_b b (see the module docstring for c and r in both parameterizations)."""

    w_std: float = 1.0
    b_std: float = 0.0
    standard: bool = False

    def __post_init__(self) -> None:
        if not np.isfinite(self.w_std) or self.w_std <= 0:
            raise NTKSymError(f"Dense: w_std must be finite and positive, got {self.w_std!r}")
        if not np.isfinite(self.b_std) or self.b_std < 0:
            raise NTKSymError(f"Dense: b_std must be finite and non-negative, got {self.b_std!r}")
        object.__setattr__(self, "w_std", float(self.w_std))
        object.__setattr__(self, "b_std", float(self.b_std))
        object.__setattr__(self, "standard", bool(self.standard))

    def scales(self, fan_in: int) -> LayerScales:
        """c_w, c_b, r_w, r_b for a layer with `fan_in` inputs."""
        if self.standard:
            return LayerScales(1.0, 1.0, 1.0 / fan_in, 1.0)
        return LayerScales(self.w_std / np.sqrt(fan_in), self.b_std, 1.0, 1.0)

    def draw(
        self, rng: np.random.Generator, size: int, fan_in: int, fan_out: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """W (size, fan_out, fan_in) and b (size, fan_out), weights drawn before biases."""
        w = rng.standard_normal((size, fan_out, fan_in))
        b = rng.standard_normal((size, fan_out))
        if self.standard:
            w *= self.w_std / np.sqrt(fan_in)
            b *= self.b_std
        return w, b

    @staticmethod
    def forward(w: np.ndarray, b: np.ndarray, a: np.ndarray, s: LayerScales) -> np.ndarray:
        """h = c_w a Wᵀ + c_b b for a (E, n, fan_in): (E, n, fan_out)."""
        h = s.c_w * (a @ w.transpose(0, 2, 1))
        if s.c_b != 0.0:
            h += s.c_b * b[:, None, :]
        return h

    @staticmethod
    def backward(w: np.ndarray, delta: np.ndarray, s: LayerScales) -> np.ndarray:
        """δ_in = c_w δ W: (E, n, fan_in)."""
        return s.c_w * (delta @ w)


@dataclass(frozen=True)
class FiniteElementwise:
    """a = φ(h) unit by unit; φ and φ' are array functions (`finite.activation_functions`)."""

    phi: ArrayFunction
    dphi: ArrayFunction
    name: str

    @classmethod
    def of(cls, activation: Activation) -> FiniteElementwise:
        """The twin of a symbolic `Activation`, with φ and φ' compiled from its expressions."""
        return cls(*activation_functions(activation), activation.name)

    def forward(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(φ(h), h): the pre-activation is what the pullback needs."""
        return self.phi(h), h

    def backward(self, h: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """δ_h = φ'(h) ⊙ δ."""
        return self.dphi(h) * delta


@dataclass(frozen=True)
class FiniteLayerNorm:
    """y = √n h/‖h‖ over the n features of each point (RMS normalisation; module docstring)."""

    def forward(self, h: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(y, (y, √n/‖h‖)). A point whose features are all zero has no normalisation."""
        norm = np.linalg.norm(h, axis=-1, keepdims=True)
        if not np.all(norm > 0):
            raise InputError(
                "LayerNorm: an input point has all features zero (zero variance), so h/‖h‖ is "
                "undefined"
            )
        gain = np.sqrt(h.shape[-1]) / norm
        y = h * gain
        return y, (y, gain)

    @staticmethod
    def backward(saved: tuple[np.ndarray, np.ndarray], delta: np.ndarray) -> np.ndarray:
        """δ_h = (√n/‖h‖)(δ − y (y·δ)/n), the transpose of the (symmetric) Jacobian."""
        y, gain = saved
        along = np.sum(y * delta, axis=-1, keepdims=True) / y.shape[-1]
        return gain * (delta - y * along)


@dataclass(frozen=True)
class FiniteIdentity:
    """a = h."""

    @staticmethod
    def forward(h: np.ndarray) -> tuple[np.ndarray, None]:
        return h, None

    @staticmethod
    def backward(saved: None, delta: np.ndarray) -> np.ndarray:
        return delta


@dataclass(frozen=True)
class FiniteResidual:
    """out = block(x) + x; the block is a tuple of twins that must map a width onto itself."""

    block: tuple[FiniteLayer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "block", tuple(self.block))


FiniteLayer = FiniteDense | FiniteElementwise | FiniteResidual | FiniteLayerNorm | FiniteIdentity
FINITE_LAYER_KINDS = (
    FiniteDense,
    FiniteElementwise,
    FiniteResidual,
    FiniteLayerNorm,
    FiniteIdentity,
)


def mlp_layers(
    activation: Activation | None, depth: int, w_std: float, b_std: float, parameterization: str
) -> tuple[FiniteLayer, ...]:
    """(Dense, φ) × depth, then the Dense readout: the twins of ``mlp(φ, depth, σ_w, σ_b)``
    (`activation` may be None when depth is 0)."""
    dense = FiniteDense(w_std, b_std, parameterization == "standard")
    if depth == 0:
        return (dense,)
    return (dense, FiniteElementwise.of(activation)) * depth + (dense,)
