"""Training dynamics of the infinite-width network under squared loss.

symbolic, discrete_symbolic: the function-space ODE and GD map, derived, solved, verified in SymPy.
flow, discrete: Gaussian (mean, covariance) predictions at any times / step counts, from kernels.
api: the same from a `Network` (`predict`, `predict_gd`).
"""

from .api import predict, predict_gd
from .discrete import max_stable_lr, predict_gd_from_kernels
from .ensemble import Prediction
from .flow import predict_from_kernels

__all__ = [
    "Prediction",
    "max_stable_lr",
    "predict",
    "predict_from_kernels",
    "predict_gd",
    "predict_gd_from_kernels",
]
