"""The convolutional layers' kernel maps on pixel-pair kernels, as SymPy expressions.

Kernels of image inputs are indexed by pixel pairs: Σ[p, p'] = Σ(x, x')[p, p'] between
position p of x and p' of x' (p a multi-index for 2-D images). Conventions of neural-tangents'
``stax`` (s = σ_w², b = σ_b², k = the window's number of offsets δ, each δ a position of the
window, and strides σ):

* `ConvMap`: Σ'[p, p'] = s·(1/k) Σ_δ Σ[σp + δ, σp' + δ] + b and
  Θ'[p, p'] = Σ'[p, p'] + s·(1/k) Σ_δ Θ[σp + δ, σp' + δ]; positions outside the image are
  zero padding (SAME: still counted in the 1/k), wrap around (CIRCULAR), or do not occur
  (VALID: the output is smaller). Positions are written without the padding offset.
* `AvgPoolMap`: Σ'[p, p'] = (1/k²) Σ_{δ,δ'} Σ[σp + δ, σp' + δ'], the same for Θ.
* `GlobalAvgPoolMap`: Σ' = (1/P²) Σ_{p,p'} Σ[p, p'] over the P positions.
* `FlattenMap`: Σ' = (1/P) Σ_p Σ[p, p] (the NTK-parameterised Dense after it sees all P·C
  features, and its 1/(P·C) fan-in makes the diagonal mean).
* Activations and Dense act on every pixel pair as in `ntk_sym.symbolic.maps`, with the
  variances Σ(x, x)[p, p] and Σ(x', x')[p', p'].

`chain` gives the equations of a whole network with such layers (`ntk_sym.symbolic.recursion`
calls it for them). Nothing here knows about arrays.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..errors import NTKSymError
from .maps import KernelState, Layer, ResidualMap, exact

PADDINGS = ("SAME", "VALID", "CIRCULAR")

#: Pixel positions of the two images, and the window offset.
p, p2 = sp.Symbol("p", integer=True), sp.Symbol("p'", integer=True)
delta, delta2 = sp.Symbol(r"\delta", integer=True), sp.Symbol(r"\delta'", integer=True)


def _window_arg(value, name: str, layer: str) -> int | tuple[int, ...]:
    """A window size or stride: one positive int (the same along every spatial axis) or a
    tuple of one or two."""
    values = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if not values or len(values) > 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in values):
        raise NTKSymError(f"{layer}: {name} must be a positive integer or a tuple of one or two "
                          f"(1-D or 2-D windows), got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    return tuple(int(v) for v in values)


def resolve_window(value: int | tuple[int, ...], nd: int) -> tuple[int, ...]:
    """A window argument for `nd` spatial axes (an int is repeated)."""
    return (value,) * nd if isinstance(value, int) else value


def _count(value: int | tuple[int, ...]) -> sp.Expr:
    """k, the number of window offsets (a symbol when the rank is not known yet)."""
    return sp.Integer(math.prod(value)) if isinstance(value, tuple) else sp.Symbol("k")


def _stride(value: int | tuple[int, ...]) -> sp.Expr:
    values = {value} if isinstance(value, int) else set(value)
    return sp.Integer(values.pop()) if len(values) == 1 else sp.Symbol(r"\sigma")


class SpatialMap(Layer):
    """A layer that acts on the pixel axes (marks a network as convolutional)."""

    spatial: ClassVar[bool] = True
    readout: ClassVar[bool] = False


def _shift(expr: sp.Expr, stride: int, first: sp.Symbol, second: sp.Symbol) -> sp.Expr:
    return expr.subs({p: stride * p + first, p2: stride * p2 + second}, simultaneous=True)


def _window_sum(expr: sp.Expr, k: sp.Expr, stride: sp.Expr, same: bool) -> sp.Expr:
    if same:
        return sp.Sum(_shift(expr, stride, delta, delta), (delta, 1, k)) / k
    inner = sp.Sum(_shift(expr, stride, delta, delta2), (delta, 1, k), (delta2, 1, k))
    return inner / k**2


@dataclass(frozen=True)
class ConvMap(SpatialMap):
    """Σ' = s·(window mean of Σ[σp + δ, σp' + δ]) + b, Θ' = Σ' + s·(window mean of Θ)."""

    filter_shape: int | tuple[int, ...] = (3, 3)
    w_std: float = 1.0
    b_std: float = 0.0
    padding: str = "SAME"
    strides: int | tuple[int, ...] = 1
    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        shape = _window_arg(self.filter_shape, "filter_shape", "Conv")
        strides = _window_arg(self.strides, "strides", "Conv")
        if isinstance(shape, tuple) and isinstance(strides, tuple) and len(shape) != len(strides):
            raise NTKSymError(f"Conv: strides {strides} do not match filter_shape {shape}")
        object.__setattr__(self, "filter_shape", shape)
        object.__setattr__(self, "strides", strides)
        if self.padding not in PADDINGS:
            raise NTKSymError(f"Conv: padding must be one of {', '.join(PADDINGS)}, got "
                              f"{self.padding!r}")
        for label, value, positive in (("w_std", self.w_std, True), ("b_std", self.b_std, False)):
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or value < 0 or (positive and value == 0)):
                need = "positive" if positive else "non-negative"
                raise NTKSymError(f"Conv: {label} must be a finite {need} number, got {value!r}")
        object.__setattr__(self, "w_std", float(self.w_std))
        object.__setattr__(self, "b_std", float(self.b_std))

    def parameters(self, symbols: dict | None = None) -> tuple[sp.Expr, sp.Expr]:
        """(σ_w, σ_b) as SymPy objects: the given symbols, or the exact values."""
        if symbols is not None and self in symbols:
            return symbols[self]
        return exact(self.w_std), exact(self.b_std)

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        w, b = self.parameters(symbols)
        k, stride = _count(self.filter_shape), _stride(self.strides)
        cov = w**2 * _window_sum(state.s12, k, stride, True) + b**2
        var1 = w**2 * _window_sum(state.s11, k, stride, True) + b**2
        var2 = w**2 * _window_sum(state.s22, k, stride, True) + b**2
        return KernelState(var1, cov, var2, cov + w**2 * _window_sum(state.ntk, k, stride, True))

    def label(self) -> str:
        shape = _shape_label(self.filter_shape)
        return (rf"\mathrm{{Conv}}({shape},\ \mathrm{{{self.padding}}},\ \sigma_w = {self.w_std:g}"
                rf",\ \sigma_b = {self.b_std:g})")


@dataclass(frozen=True)
class AvgPoolMap(SpatialMap):
    """Σ'[p, p'] = (1/k²) Σ_{δ,δ'} Σ[σp + δ, σp' + δ'] over the blocks (padding VALID)."""

    window: int | tuple[int, ...] = 2
    strides: int | tuple[int, ...] | None = None
    kind: ClassVar[str] = "avg_pool"

    def __post_init__(self) -> None:
        window = _window_arg(self.window, "window", "AvgPool")
        strides = window if self.strides is None else _window_arg(self.strides, "strides",
                                                                   "AvgPool")
        if isinstance(window, tuple) and isinstance(strides, tuple) and len(window) != len(strides):
            raise NTKSymError(f"AvgPool: strides {strides} do not match window {window}")
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "strides", strides)

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        k, stride = _count(self.window), _stride(self.strides)
        pooled = [_window_sum(v, k, stride, False) for v in state]
        return KernelState(*pooled)

    def label(self) -> str:
        return rf"\mathrm{{AvgPool}}({_shape_label(self.window)})"


def _shape_label(value: int | tuple[int, ...]) -> str:
    return str(value) if isinstance(value, int) else r"\times".join(map(str, value))


def _positions() -> sp.Symbol:
    return sp.Symbol("P", positive=True, integer=True)


@dataclass(frozen=True)
class GlobalAvgPoolMap(SpatialMap):
    """Σ' = (1/P²) Σ_{p,p'} Σ[p, p']."""

    kind: ClassVar[str] = "global_avg_pool"
    readout: ClassVar[bool] = True

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        P = _positions()

        def mean(v):
            return sp.Sum(v, (p, 1, P), (p2, 1, P)) / P**2

        return KernelState(mean(state.s11.subs(p2, p)), mean(state.s12), mean(state.s22),
                           mean(state.ntk))

    def label(self) -> str:
        return r"\mathrm{GlobalAvgPool}"


@dataclass(frozen=True)
class FlattenMap(SpatialMap):
    """Σ' = (1/P) Σ_p Σ[p, p]."""

    kind: ClassVar[str] = "flatten"
    readout: ClassVar[bool] = True

    def apply(self, state: KernelState, symbols: dict | None = None) -> KernelState:
        P = _positions()

        def mean(v):
            return sp.Sum(v.subs(p2, p), (p, 1, P)) / P

        return KernelState(*(mean(v) for v in state))

    def label(self) -> str:
        return r"\mathrm{Flatten}"


def is_convolutional(maps: Sequence[Layer]) -> bool:
    """Whether `maps` contain a layer acting on pixel axes."""
    return any(getattr(m, "spatial", False) for m in maps)


def pixel_stage(label: str) -> KernelState:
    """Σ⁽ˡ⁾(x, x)[p, p], Σ⁽ˡ⁾[p, p'], Σ⁽ˡ⁾(x', x')[p', p'], Θ⁽ˡ⁾[p, p'] of stage `label`."""
    def base(name: str) -> sp.IndexedBase:
        return sp.IndexedBase(name.replace("L", label))

    return KernelState(
        base(r"\Sigma^{(L)}_{11}")[p, p],
        base(r"\Sigma^{(L)}")[p, p2],
        base(r"\Sigma^{(L)}_{22}")[p2, p2],
        base(r"\Theta^{(L)}")[p, p2],
    )


def chain(maps: Sequence[Layer], symbols: dict | None, scalar_stage) -> list[tuple]:
    """(equation, label) rows of a convolutional network: the input Σ⁽⁰⁾[p, p'] =
    x_p·x'_{p'}/C, Θ⁽⁰⁾ = 0, then each layer's map at the previous stage's pixel-pair symbols
    (scalar symbols from `scalar_stage(label)` after the readout)."""
    C = sp.Symbol("C", positive=True, integer=True)
    now = pixel_stage("0")
    rows = [(sp.Eq(now.s12, sp.Symbol(r"x_p \cdot x'_{p'}") / C), r"\text{input}"),
            (sp.Eq(now.ntk, sp.Integer(0)), "")]
    pooled = False
    for i, m in enumerate(maps, 1):
        if isinstance(m, ResidualMap):
            raise NTKSymError(f"layer {i} ({m!r}): Residual is not supported in convolutional "
                              "networks")
        values = m.apply(now, symbols)
        pooled = pooled or getattr(m, "readout", False)
        out = scalar_stage(str(i)) if pooled else pixel_stage(str(i))
        rows.append((sp.Eq(out.s12, values.s12), m.label()))
        rows.append((sp.Eq(out.ntk, values.ntk), ""))
        now = out
    return rows
