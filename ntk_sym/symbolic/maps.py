"""Each layer kind's kernel map on (Σ₁₁, Σ₁₂, Σ₂₂, Θ₁₂), as SymPy expressions.

A layer of an infinitely wide network maps the kernels of its input, at a pair of network inputs
(x, x'), to those of its output. With Σ₁₁ = Σ(x, x), Σ₁₂ = Σ(x, x'), Σ₂₂ = Σ(x', x') and
Θ = Θ(x, x') (conventions of neural-tangents' ``stax``):

* `DenseMap` (σ_w, σ_b), NTK parameterization: Σ' = σ_w² Σ₁₂ + σ_b², Θ' = Σ' + σ_w² Θ;
  standard parameterization (weight learning rates η/fan_in): Θ' = Σ₁₂ + 1 + σ_w² Θ.
* `ActivationMap` (φ): Σ' = T(Σ₁₁, Σ₁₂, Σ₂₂) = 𝔼[φ(u)φ(v)], Θ' = Ṫ(Σ₁₁, Σ₁₂, Σ₂₂) Θ with
  (u, v) ~ N(0, Σ) and Ṫ = 𝔼[φ'(u)φ'(v)] = ∂T/∂Σ₁₂ (Price).
* `LayerNormMap` (over features, in the limit): Σ' = Σ₁₂/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂). This is
  normalisation by the root mean square of the features; it equals the mean-centred LayerNorm
  where the features average to zero (after a Dense, whose outputs are centred Gaussians).
* `IdentityMap`: Σ' = Σ, Θ' = Θ.
* `ResidualMap` (block): out = block(x) + x, so Σ' = Σ_block + Σ and Θ' = Θ_block + Θ.

Every map acts on the diagonal by the same formula at (Σ₁₁, Σ₁₁, Σ₁₁). The maps are frozen and
hashable: they are the cache keys of the compiled kernels. `ntk_sym.layers` subclasses them into
the public layers; nothing here knows about arrays.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import sympy as sp

from ..errors import NTKSymError
from .activations import Activation as Phi
from .hermite import is_odd
from .symbols import q11, q12, q22

#: The dual's arguments (Σ₁₁, Σ₁₂, Σ₂₂).
_Q = (q11, q12, q22)

PARAMETERIZATIONS = ("ntk", "standard")


class KernelState(NamedTuple):
    """Σ(x, x), Σ(x, x'), Σ(x', x') and Θ(x, x') at one point of the network, as SymPy
    expressions (symbols when a layer's map is traced, `ntk_sym.symbolic.traced`)."""

    s11: sp.Expr
    s12: sp.Expr
    s22: sp.Expr
    ntk: sp.Expr


class Layer:
    """A layer of an infinitely wide network: its kernel map on a `KernelState`.

    This is the base of every layer, built in or written by a user. A layer is a frozen,
    hashable description (``@dataclass(frozen=True)``): equal layers share compiled programs.

    **The map** (the only method a new layer must write). ``apply(state, symbols=None)`` takes
    the state before the layer, (Σ₁₁, Σ₁₂, Σ₂₂, Θ) = (Σ(x, x), Σ(x, x'), Σ(x', x'), Θ(x, x')),
    and returns the state after it, in SymPy operations (``sp.sqrt``, not ``math.sqrt``;
    ``sp.Piecewise``, not ``if``). The diagonal follows the same formula: Σ'₁₁ must equal Σ'₁₂
    at Σ₁₁ = Σ₁₂ = Σ₂₂, and Σ' must not depend on Θ. `symbols` maps each Dense layer to its
    (σ_w, σ_b) symbols for ``recursion(symbolic=True)``; a layer without such parameters
    ignores it. For example, out = c·x::

        @dataclass(frozen=True)
        class Scale(Layer):
            c: float = 1.0

            def apply(self, state, symbols=None):
                c2 = sp.nsimplify(self.c) ** 2
                return KernelState(c2 * state.s11, c2 * state.s12, c2 * state.s22,
                                   c2 * state.ntk)

    Everything else follows from the map: the LaTeX of ``net.recursion()``/``net.latex()``
    (`label`, by default the class name and the dataclass fields), the mpmath reference (the map
    lambdified at ``dps`` digits) and the numeric step, compiled from the map traced on symbols
    (`ntk_sym.compile.mapped`): it runs on NumPy (float64, float32, ``out=``, tiles) in
    networks of vectors and between the layers of convolutional networks, where it acts on
    every pair of positions. A map of the form Σ' = aΣ₁₂ + c (a > 0, c ≥ 0 numbers) keeps the
    engine's cancellation-free angles exactly; any other map has its angle recomputed from
    the new Σ, and identical inputs are copied from the diagonal, so they stay exact. A map
    that is not a function of the state, returns something other than a `KernelState`, or
    gives non-finite values is refused with an `NTKSymError` naming the layer.

    **Registered steps.** `kind` selects a hand-written numeric step from the compile
    registries (``ntk_sym.compile.layers.BUILDERS``, ``ntk_sym.compile.conv.BUILDERS``) for
    the built-in kinds, whose steps carry more than the map (the gap identities, the fused
    hidden layer). A subclass that writes its own `apply` without naming a `kind` gets
    ``"layer"``: compiled from its map, so subclassing a built-in layer to change its map
    never keeps the old step.

    **Gradients.** `ntk_sym.gradients.kernel_gradients` differentiates `apply` with SymPy
    (`ntk_sym.symbolic.tangent.map_tangent`, σ_w and σ_b of Dense and Conv as symbols): a user
    layer writes no tangent.

    **Residual blocks.** `odd` says whether the layer maps centred features (mean zero over the
    weights) to centred ones, as an odd function does; the Residual check
    (`check_residual_blocks`) reads it. A user layer is assumed to keep the width it is given.

    **The finite twin** (for ``ntk_sym.finite.init(net, width)``). `finite()` returns the
    finite-width layer, a subclass of ``ntk_sym.finite.FiniteLayer`` (the protocol and a worked
    ``FiniteScale`` are in `ntk_sym.finite.protocol`): ``forward(params, x) -> (y, cache)`` and
    ``backward(params, cache, delta) -> (delta_in, grads)``, plus ``init`` for a layer with
    parameters. Its limit must be the layer's map, which is what ties the two together. Without
    a `finite` method the layer has no finite network, and ``finite.init`` names it.
    """

    kind: ClassVar[str] = "layer"
    odd: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "apply" in cls.__dict__ and "kind" not in cls.__dict__:
            cls.kind = "layer"

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        """The state after this layer (class docstring)."""
        raise NotImplementedError(f"{type(self).__name__} defines no apply(state, symbols=None)")

    def label(self) -> str:
        """The layer as LaTeX: its class name and dataclass fields, e.g. ``\\mathrm{Scale}(c =
        1.3)``."""
        name = rf"\mathrm{{{type(self).__name__}}}"
        if not dataclasses.is_dataclass(self):
            return name
        args = [
            f"{_latex_name(f.name)} = {_latex_value(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
            if f.repr
        ]
        return name + ("(" + r",\ ".join(args) + ")" if args else "")



def _latex_name(name: str) -> str:
    escaped = name.replace("_", r"\_")
    return name if len(name) == 1 else rf"\mathrm{{{escaped}}}"


def _latex_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return rf"\mathrm{{{value}}}"
    try:
        return sp.latex(sp.sympify(value))
    except (sp.SympifyError, TypeError):
        return rf"\mathrm{{{type(value).__name__}}}"


def exact(value: float) -> sp.Expr:
    """A float parameter as the SymPy number it reads as (1.5 → 3/2, 0.1 → 1/10)."""
    return sp.nsimplify(value)


@dataclass(frozen=True)
class DenseMap(Layer):
    """Σ' = σ_w² Σ₁₂ + σ_b²;  Θ' = Σ' + σ_w² Θ (NTK) or Σ₁₂ + 1 + σ_w² Θ (standard)."""

    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        for label, value, positive in (("w_std", self.w_std, True), ("b_std", self.b_std, False)):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise NTKSymError(f"Dense: {label} must be a finite real number, got {value!r}")
            if value < 0 or (positive and value == 0):
                need = "positive" if positive else "non-negative"
                raise NTKSymError(f"Dense: {label} (σ) must be {need}, got {value!r}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise NTKSymError(
                "Dense: parameterization must be 'ntk' or 'standard', got "
                f"{self.parameterization!r}"
            )
        object.__setattr__(self, "w_std", float(self.w_std))
        object.__setattr__(self, "b_std", float(self.b_std))

    @property
    def standard(self) -> bool:
        return self.parameterization == "standard"

    def parameters(self, symbols: dict | None = None) -> tuple[sp.Expr, sp.Expr]:
        """(σ_w, σ_b) as SymPy objects: the given symbols, or the exact values."""
        if symbols is not None and self in symbols:
            return symbols[self]
        return exact(self.w_std), exact(self.b_std)

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        w, b = self.parameters(symbols)
        s11, s12, s22 = (w**2 * v + b**2 for v in state[:3])
        weights = state.s12 + 1 if self.standard else s12
        return KernelState(s11, s12, s22, weights + w**2 * state.ntk)

    def label(self) -> str:
        std = r",\ \mathrm{standard}" if self.standard else ""
        return rf"\mathrm{{Dense}}(\sigma_w = {self.w_std:g},\ \sigma_b = {self.b_std:g}{std})"


class ActivationMap(Layer):
    """Σ' = T(Σ₁₁, Σ₁₂, Σ₂₂), Θ' = Ṫ(Σ₁₁, Σ₁₂, Σ₂₂) Θ, with φ's duals (`phi`).

    Subclasses provide `phi`, the catalogue `Activation`. Without a closed form, T and Ṫ stay
    the named expectations ``T_φ``, ``\\dot{T}_φ``.
    """

    kind: ClassVar[str] = "activation"

    @property
    def phi(self) -> Phi:
        raise NotImplementedError

    def duals(self) -> tuple[sp.Expr, sp.Expr] | None:
        """(T, Ṫ) in closed form in (q11, q12, q22), or None."""
        phi = self.phi
        return None if phi.dual is None else (phi.dual, phi.derivative_dual)

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        pairs = [(state.s11, state.s11, state.s11), tuple(state[:3]), (state.s22,) * 3]
        closed = self.duals()
        if closed is None:
            T = sp.Function(rf"T_{{{self.phi.name}}}")
            Td = sp.Function(rf"\dot{{T}}_{{{self.phi.name}}}")
            values = [T(*p) for p in pairs]
            slope = Td(*state[:3])
        else:
            values = [
                closed[0].subs(dict(zip(_Q, p, strict=True)), simultaneous=True) for p in pairs
            ]
            slope = closed[1].subs(dict(zip(_Q, state[:3], strict=True)), simultaneous=True)
        return KernelState(values[0], values[1], values[2], slope * state.ntk)

    def label(self) -> str:
        return rf"\phi = \mathrm{{{self.phi.name}}}"


@dataclass(frozen=True)
class LayerNormMap(Layer):
    """Σ' = Σ₁₂/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂) (features normalised to unit mean square)."""

    kind: ClassVar[str] = "layer_norm"

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        root = sp.sqrt(state.s11) * sp.sqrt(state.s22)
        return KernelState(sp.Integer(1), state.s12 / root, sp.Integer(1), state.ntk / root)

    def label(self) -> str:
        return r"\mathrm{LayerNorm}"


@dataclass(frozen=True)
class IdentityMap(Layer):
    """Σ' = Σ, Θ' = Θ."""

    kind: ClassVar[str] = "identity"

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        return state

    def label(self) -> str:
        return r"\mathrm{Identity}"


@dataclass(frozen=True)
class ResidualMap(Layer):
    """out = block(x) + x: Σ' = Σ_block + Σ, Θ' = Θ_block + Θ, block = `block` in order."""

    block: tuple[Layer, ...] = ()
    kind: ClassVar[str] = "residual"

    def __post_init__(self) -> None:
        if not self.block:
            raise NTKSymError(
                "Residual: the block is empty (Residual() would be x + x; "
                "give it layers, e.g. Residual(Dense(), Relu(), Dense()))"
            )
        for i, layer in enumerate(self.block):
            if not isinstance(layer, Layer):
                raise NTKSymError(
                    f"Residual: block entry {i} is {layer!r}, not a layer (ntk_sym.layers)"
                )

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        out = state
        for layer in self.block:
            out = layer.apply(out, symbols)
        return KernelState(*(a + b for a, b in zip(out, state, strict=True)))

    def label(self) -> str:
        return r"\mathrm{Residual}(" + r",\ ".join(m.label() for m in self.block) + ")"


def _centred_after(layer: Layer, centred: bool, where: str) -> bool:
    """Whether the features after `layer` average to zero over the weights (given whether its
    input's do), checking a Residual on the way (`check_residual_blocks`)."""
    if isinstance(layer, DenseMap):
        return True  # zero-mean weights and bias
    if isinstance(layer, ActivationMap):
        return centred and is_odd(layer.phi.expr)
    if isinstance(layer, ResidualMap):
        block_centred = False
        has_dense = False
        for i, inner in enumerate(layer.block, 1):
            block_centred = _centred_after(inner, block_centred if i > 1 else centred,
                                           f"{where}.{i}")
            has_dense = has_dense or isinstance(inner, DenseMap | ResidualMap)
        if not has_dense:
            raise NTKSymError(
                f"layer {where} (Residual): its block has no Dense, so block(x) is a function "
                "of x itself and the two are correlated (e.g. Residual(Identity()) is 2x, whose "
                "kernel is 4Σ, not Σ + Σ); the kernels add only for a block with its own "
                "weights: put a Dense in the block, e.g. Residual(Dense(), Relu(), Dense())"
            )
        if not (block_centred or centred):
            raise NTKSymError(
                f"layer {where} (Residual): block(x) and the skip x are correlated, so the "
                "kernels do not add. The block's output has a nonzero mean over its weights "
                "(it ends in an activation that is not odd, after its last Dense), and so do "
                "the features x it is added to (they come after such an activation, or are "
                "the raw input). End the block with a Dense (e.g. Residual(Dense(), Relu(), "
                "Dense())), or give the block a centred input (a Dense before the Residual)"
            )
        return block_centred and centred
    return centred and layer.odd  # LayerNorm and Identity are odd; a user layer says so


def check_residual_blocks(layers: tuple[Layer, ...]) -> None:
    """Refuse a Residual whose block output and skip are correlated in the limit.

    The finite network's kernel of out = block(x) + x is Σ_block + Σ + C(x, x') + C(x', x) with
    the cross term C(x, x') = 𝔼[block(x)·x']/n. C → 0 as the width grows when the block's output
    averages to zero over its weights (it ends in a Dense, or a Dense followed by odd
    activations, LayerNorm or Identity: flipping the signs of that Dense's weights flips the
    output), or when the block contains a Dense (its units are exchangeable, so 𝔼[block(x)ᵢ]
    is one number m(x)) and the skip features average to zero (C = m(x)·mean(x') → 0). A
    block without a Dense never adds (block(x) is a function of x). The raw input is not
    assumed centred.
    """
    centred = False
    for i, layer in enumerate(layers, 1):
        centred = _centred_after(layer, centred, str(i))
