"""Finite-width networks in NumPy, and their measured convergence to the infinite-width theory.

A network is a tuple of layer twins (`ntk_sym.finite.layers`), usually ``net.finite_layers()``
of a serial network; an MLP description works as well. A convolutional network's `init` is a
`FiniteCNN` (`ntk_sym.finite.conv`), with the same `apply`, `empirical_ntk`, `empirical_nngp`.

>>> import numpy as np, ntk_sym
>>> fnet = ntk_sym.finite.init(ntk_sym.mlp("relu", depth=2), width=256, seed=0)
>>> fnet.apply(np.ones((3, 2))).shape
(3,)
"""

from .conv import FiniteCNN
from .functions import activation_functions, compile_expression
from .layers import (
    FiniteDense,
    FiniteElementwise,
    FiniteIdentity,
    FiniteLayerNorm,
    FiniteResidual,
    LayerScales,
)
from .network import FiniteNetwork, Gradients, Trace, finite_layers_of, init
from .training import Trajectory, gradient_descent, linearized_descent

__all__ = [
    "FiniteCNN",
    "FiniteDense",
    "FiniteElementwise",
    "FiniteIdentity",
    "FiniteLayerNorm",
    "FiniteNetwork",
    "FiniteResidual",
    "Gradients",
    "LayerScales",
    "Trace",
    "Trajectory",
    "activation_functions",
    "compile_expression",
    "finite_layers_of",
    "gradient_descent",
    "init",
    "linearized_descent",
]
