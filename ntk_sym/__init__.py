"""ntk_sym: the Neural Tangent Kernel derived in SymPy, compiled, and validated.

>>> import ntk_sym
>>> net = ntk_sym.mlp("relu", depth=3, w_std=1.5, b_std=0.1)
>>> from ntk_sym.layers import Dense, Relu, Residual, LayerNorm
>>> res = ntk_sym.serial(Dense(), Relu(), Residual(Dense(), Relu(), Dense()), LayerNorm(), Dense())
"""

from . import dynamics, errors, finite, layers
from .network import Network, Serial, mlp, serial
from .symbolic import activations, verify

__all__ = [
    "Network",
    "Serial",
    "activations",
    "dynamics",
    "errors",
    "finite",
    "layers",
    "mlp",
    "serial",
    "verify",
]
__version__ = "0.1.0"
