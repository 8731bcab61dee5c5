"""Compile a convolutional network's layer maps into the conv engine's program.

Each map (`ntk_sym.symbolic.conv_maps`, `ntk_sym.symbolic.maps`) becomes a step of
`ntk_sym.numeric.conv.steps` from one kind → builder table; window sizes given as one integer
are expanded to the images' rank here, and `ntk_sym.numeric.conv.engine.plan` checks the shapes
(a VALID window larger than the image, layers after the readout, …) with errors naming the
layer. Activations without a closed form get the Hermite series dual (tol) unless a degree
selects the 2-D rule, as in `compile_dual`. Programs are cached per (maps, image shape,
backend, degree, tol).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from ..errors import InputError
from ..numeric.conv import steps as numeric
from ..numeric.conv.engine import Program, plan
from ..numeric.conv.mapped import MappedStep
from ..numeric.conv.window import Window
from ..symbolic.conv_maps import resolve_window
from ..symbolic.maps import Layer
from .duals import compile_dual
from .mapped import compile_map


def _conv(m, name, nd, backend, rule):
    size = resolve_window(m.filter_shape, nd)
    strides = resolve_window(m.strides, len(size))
    return numeric.ConvStep(Window(size, strides, m.padding), m.w_std, m.b_std, name)


def _avg_pool(m, name, nd, backend, rule):
    size = resolve_window(m.window, nd)
    return numeric.PoolStep(Window(size, resolve_window(m.strides, len(size)), "VALID"), name)


def _readout(kind):
    return lambda m, name, nd, backend, rule: numeric.ReadoutStep(kind, name)


def _dense(m, name, nd, backend, rule):
    return numeric.DenseStep(m.w_std, m.b_std, m.standard, name)


def _activation(m, name, nd, backend, rule):
    return numeric.ActivationStep(compile_dual(m.phi, backend, *rule), name)


def _mapped(m, name, nd, backend, rule):
    return MappedStep(compile_map(m, backend), name)


#: kind → builder of the conv engine's step for one map ("layer", a layer without a
#: hand-written step, is compiled from its map at every pixel pair).
BUILDERS: dict[str, Callable] = {
    "conv": _conv,
    "avg_pool": _avg_pool,
    "global_avg_pool": _readout("gap"),
    "flatten": _readout("flatten"),
    "dense": _dense,
    "activation": _activation,
    "layer": _mapped,
}

_NAMES = {"conv": "Conv", "avg_pool": "AvgPool", "global_avg_pool": "GlobalAvgPool",
          "flatten": "Flatten", "dense": "Dense"}


@lru_cache(maxsize=128)
def compile_conv(maps: tuple[Layer, ...], image_shape: tuple[int, ...],
                 backend: str = "numpy", degree: int | None = None, tol: float | None = None
                 ) -> Program:
    """The conv engine's `Program` for `maps` on images of shape `image_shape` = (*S, C);
    degree and tol as in `compile_dual` (None: its defaults, the series on NumPy)."""
    rule = (None if degree is None else int(degree), tol)
    nd = len(image_shape) - 1
    steps = []
    for i, m in enumerate(maps, 1):
        kind = getattr(m, "kind", None)
        label = _NAMES.get(kind, getattr(getattr(m, "phi", None), "name", type(m).__name__))
        name = f"layer {i} ({label})"
        if kind not in BUILDERS:
            raise InputError(f"{name} is not supported in convolutional networks (supported: "
                             "Conv, AvgPool, GlobalAvgPool, Flatten, Dense, activations and "
                             "user layers)")
        steps.append(BUILDERS[kind](m, name, nd, backend, rule))
    return plan(tuple(steps), tuple(image_shape))


def first_spatial_layer(maps: Sequence[Layer]) -> str:
    """The first spatial layer's name, for input errors."""
    for i, m in enumerate(maps, 1):
        if getattr(m, "spatial", False):
            return f"layer {i} ({_NAMES.get(m.kind, m.kind)})"
    return "the network"
