"""Finite-width networks in NumPy, and their measured convergence to the infinite-width theory.

>>> import numpy as np, ntk_sym
>>> fnet = ntk_sym.finite.init(ntk_sym.mlp("relu", depth=2), width=256, seed=0)
>>> fnet.apply(np.ones((3, 2))).shape
(3,)
"""

from .functions import activation_functions, compile_expression
from .network import FiniteNetwork, Gradients, LayerScales, init
from .training import Trajectory, gradient_descent, linearized_descent

__all__ = [
    "FiniteNetwork",
    "Gradients",
    "LayerScales",
    "Trajectory",
    "activation_functions",
    "compile_expression",
    "gradient_descent",
    "init",
    "linearized_descent",
]
