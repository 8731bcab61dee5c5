"""ntk_sym: the Neural Tangent Kernel derived in SymPy, compiled, and validated.

>>> import ntk_sym
>>> net = ntk_sym.mlp("relu", depth=3, w_std=1.5, b_std=0.1)
"""

from . import dynamics, errors, finite
from .network import Network, mlp
from .symbolic import activations, verify

__all__ = ["Network", "activations", "dynamics", "errors", "finite", "mlp", "verify"]
__version__ = "0.1.0"
