"""Training dynamics of the infinite-width network under squared loss.

The function-space ODE and GD map are derived, solved and verified in SymPy in
`ntk_sym.symbolic.flow` and `ntk_sym.symbolic.discrete_flow`.
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
