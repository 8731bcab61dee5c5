"""Finite-width networks in NumPy, and their measured convergence to the infinite-width theory.

One network class, `FiniteNetwork`, built by `init` for every layer list (vectors or images):
forward pass, backpropagation, the empirical NTK and NNGP, and one training loop
(`gradient_descent` on ½‖f(X) − y‖²). Each layer's ``finite()`` returns its twin, in the protocol
of `ntk_sym.finite.protocol`, which a user layer can implement too.

>>> import numpy as np, ntk_sym
>>> fnet = ntk_sym.finite.init(ntk_sym.mlp("relu", depth=2), width=256, seed=0)
>>> fnet.apply(np.ones((3, 2))).shape
(3,)
"""

from .conv import FiniteAvgPool, FiniteConv, FiniteFlatten, FiniteGlobalAvgPool
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
from .protocol import FiniteLayer
from .training import Trajectory, gradient_descent, linearized_descent

__all__ = [
    "FiniteAvgPool",
    "FiniteConv",
    "FiniteDense",
    "FiniteElementwise",
    "FiniteFlatten",
    "FiniteGlobalAvgPool",
    "FiniteIdentity",
    "FiniteLayer",
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
