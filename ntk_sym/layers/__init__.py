"""Networks as compositions of layers, each carrying its derived kernel map.

>>> from ntk_sym.layers import Dense, Relu, Residual, LayerNorm, serial
>>> net = serial(Dense(1.5, 0.1), Relu(), Residual(Dense(), Relu(), Dense()), LayerNorm(), Dense())

Conventions are neural-tangents' ``stax``: input kernel Σ = x·x'/d, Θ = 0, and each layer's map
as in `ntk_sym.symbolic.maps`.

A new layer kind subclasses `Layer` and writes its kernel map on a `KernelState` (see `Layer`);
its numeric step, LaTeX and mpmath reference follow from that map.
"""

from ..symbolic.maps import KernelState, Layer
from .conv import AvgPool, Conv, Flatten, GlobalAvgPool
from .core import (
    Abs,
    Activation,
    Dense,
    Elu,
    Erf,
    Gelu,
    Identity,
    LayerNorm,
    LeakyRelu,
    Relu,
    Residual,
    Sigmoid,
    Silu,
    Softplus,
    Tanh,
)
from .serial import Serial, check_layers, mlp, serial

__all__ = [
    "Abs",
    "Activation",
    "AvgPool",
    "Conv",
    "Dense",
    "Elu",
    "Erf",
    "Flatten",
    "Gelu",
    "GlobalAvgPool",
    "Identity",
    "KernelState",
    "Layer",
    "LayerNorm",
    "LeakyRelu",
    "Relu",
    "Residual",
    "Serial",
    "Sigmoid",
    "Silu",
    "Softplus",
    "Tanh",
    "check_layers",
    "mlp",
    "serial",
]
