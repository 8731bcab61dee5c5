"""Finite-width twins of the vector layer kinds, in the protocol of `ntk_sym.finite.protocol`.

With a the layer's input (E, N, n) (or ``(E, N, *S, C)`` where a layer acts on the last axis):

* `FiniteDense`: h = c_w W a + c_b b on vectors. NTK parameterization: W, b ~ N(0, 1),
  c_w = σ_w/√n_in, c_b = σ_b, learning-rate weights r_w = r_b = 1. Standard: W ~ N(0, σ_w²/n_in),
  b ~ N(0, σ_b²), c_w = c_b = 1, r_w = 1/n_in, r_b = 1. Pullback δ_in = c_w Wᵀ δ; gradients
  ∂/∂W = c_w Σᵢ δᵢ aᵢᵀ, ∂/∂b = c_b Σᵢ δᵢ. Its empirical-NTK term factorises into Gram matrices,
  ⟨δᵢ, δ'ⱼ⟩ (r_w c_w² ⟨aᵢ, a'ⱼ⟩ + r_b c_b²), so the Jacobian is never formed.
* `FiniteElementwise`: a = φ(h), pullback δ_h = φ'(h) ⊙ δ.
* `FiniteResidual`: out = block(x) + x, pullback δ_x = δ + (pullback of the block)(δ).
* `FiniteLayerNorm`: y = √n h/‖h‖ over the last axis (RMS normalisation, no centring, no learned
  gain), pullback δ_h = Jᵀδ with the symmetric Jacobian J = (√n/‖h‖)(I − ĥĥᵀ), ĥ = h/‖h‖, so
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
from .protocol import (
    FiniteLayer,
    Params,
    Shape,
    backward_chain,
    forward_chain,
    init_chain,
    tangent_chain,
)

ArrayFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LayerScales:
    """Multipliers of one Dense layer: h = c_w W a + c_b b; learning-rate weights r_w, r_b."""

    c_w: float
    c_b: float
    r_w: float
    r_b: float


@dataclass(frozen=True)
class FiniteDense(FiniteLayer):
    """h = c_w W a + c_b b (see the module docstring for c and r in both parameterizations).

    Parameters (W (E, n_out, n_in), b (E, n_out)), weights drawn before biases.
    """

    w_std: float = 1.0
    b_std: float = 0.0
    standard: bool = False
    has_parameters = True

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

    def init(self, rng: np.random.Generator, in_shape: Shape, width: int, size: int
             ) -> tuple[Params, Shape]:
        if len(in_shape) != 1:
            raise InputError(
                f"Dense acts on vectors, but its input has spatial axes (shape {in_shape}): put "
                "GlobalAvgPool or Flatten before it"
            )
        fan_in = in_shape[0]
        w = rng.standard_normal((size, width, fan_in))
        b = rng.standard_normal((size, width))
        if self.standard:
            w *= self.w_std / np.sqrt(fan_in)
            b *= self.b_std
        return (w, b), (width,)

    def forward(self, params: Params, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(h = c_w a Wᵀ + c_b b, a) for a (E, N, fan_in)."""
        w, b = params
        if a.shape[-1] != w.shape[-1]:
            raise InputError(f"Dense: its input has {a.shape[-1]} features, but the network was "
                             f"drawn for {w.shape[-1]} (images of another size before Flatten?)")
        s = self.scales(w.shape[-1])
        h = s.c_w * (a @ w.transpose(0, 2, 1))
        if s.c_b != 0.0:
            h += s.c_b * b[:, None, :]
        return h, a

    def backward(self, params: Params, a: np.ndarray, delta: np.ndarray
                 ) -> tuple[np.ndarray, Params]:
        w, _ = params
        s = self.scales(w.shape[-1])
        gw = np.empty_like(w)
        for member in range(w.shape[0]):
            # One 2-D product per member: NumPy's stacked matmul with a transposed operand
            # misses the BLAS fast path for these outer products (measured 4-15x slower).
            np.matmul(delta[member].T, a[member], out=gw[member])
        gw *= s.c_w
        gb = s.c_b * delta.sum(axis=1)
        return s.c_w * (delta @ w), (gw, gb)

    def rates(self, params: Params) -> tuple[float, float]:
        s = self.scales(params[0].shape[-1])
        return s.r_w, s.r_b

    def tangent_backward(self, params, a1, delta1, a2, delta2):
        """⟨δ, δ'⟩ (r_w c_w² ⟨a, a'⟩ + r_b c_b²), and both pullbacks."""
        w, _ = params
        s = self.scales(w.shape[-1])
        same = a2 is a1 and delta2 is delta1
        gram_delta = delta1 @ delta2.transpose(0, 2, 1)
        gram_act = a1 @ a2.transpose(0, 2, 1)
        theta = gram_delta * (s.r_w * s.c_w**2 * gram_act + s.r_b * s.c_b**2)
        in1 = s.c_w * (delta1 @ w)
        return in1, in1 if same else s.c_w * (delta2 @ w), theta


@dataclass(frozen=True)
class FiniteElementwise(FiniteLayer):
    """a = φ(h) entrywise; φ and φ' are array functions (`finite.activation_functions`)."""

    phi: ArrayFunction
    dphi: ArrayFunction
    name: str = "activation"

    @classmethod
    def of(cls, activation: Activation) -> FiniteElementwise:
        """The twin of a symbolic `Activation`, with φ and φ' compiled from its expressions."""
        return cls(*activation_functions(activation), activation.name)

    def forward(self, params: Params, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(φ(h), h): the pre-activation is what the pullback needs."""
        return self.phi(h), h

    def backward(self, params: Params, h: np.ndarray, delta: np.ndarray):
        """δ_h = φ'(h) ⊙ δ."""
        return self.dphi(h) * delta, ()


@dataclass(frozen=True)
class FiniteLayerNorm(FiniteLayer):
    """y = √n h/‖h‖ over the n entries of the last axis (RMS normalisation; module docstring)."""

    def forward(self, params: Params, h: np.ndarray):
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

    def backward(self, params: Params, saved: tuple[np.ndarray, np.ndarray], delta: np.ndarray):
        """δ_h = (√n/‖h‖)(δ − y (y·δ)/n), the transpose of the (symmetric) Jacobian."""
        y, gain = saved
        along = np.sum(y * delta, axis=-1, keepdims=True) / y.shape[-1]
        return gain * (delta - y * along), ()


@dataclass(frozen=True)
class FiniteIdentity(FiniteLayer):
    """a = h."""

    def forward(self, params: Params, h: np.ndarray):
        return h, None

    def backward(self, params: Params, cache: None, delta: np.ndarray):
        return delta, ()


@dataclass(frozen=True)
class FiniteResidual(FiniteLayer):
    """out = block(x) + x; the block is a tuple of twins that must return the shape it was
    given. Parameters: the tuple of the block's layers' parameters."""

    block: tuple[FiniteLayer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "block", tuple(self.block))

    @property
    def has_parameters(self) -> bool:  # type: ignore[override]
        return any(layer.has_parameters for layer in self.block)

    def init(self, rng, in_shape, width, size):
        """The block's layers draw from generators spawned from this layer's `rng`."""
        count = sum(layer.has_parameters for layer in self.block)
        rngs = iter(rng.spawn(count) if count else ())
        params, shape = init_chain(self.block, rngs, in_shape, [width] * len(self.block), size)
        if shape != in_shape:
            raise InputError(
                f"the Residual's block maps width {_describe(in_shape)} to {_describe(shape)}, "
                "so out = block(x) + x does not fit"
            )
        return tuple(params), shape

    def forward(self, params, x):
        y, caches = forward_chain(self.block, params, x)
        return y + x, caches

    def backward(self, params, caches, delta):
        inner, grads = backward_chain(self.block, params, caches, delta)
        return inner + delta, tuple(grads)

    def rates(self, params):
        return tuple(layer.rates(p) for layer, p in zip(self.block, params, strict=True))

    def tangent_backward(self, params, caches1, delta1, caches2, delta2):
        in1, in2, theta = tangent_chain(self.block, params, caches1, delta1, caches2, delta2)
        same = caches2 is caches1 and delta2 is delta1
        out1 = in1 + delta1
        return out1, out1 if same else in2 + delta2, theta


def _describe(shape: Shape) -> str:
    return str(shape[0]) if len(shape) == 1 else str(shape)
