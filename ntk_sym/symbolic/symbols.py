"""The SymPy symbols every module shares.

Convention: ``X`` is the pre-activation an activation is written in; a pair of pre-activations
(u, v) ~ N(0, [[q11, q12], [q12, q22]]) is described by its covariance entries, or equivalently by
the two variances and the angle ``theta`` in [0, π] with q12 = sqrt(q11 q22) cos(theta).
"""

import sympy as sp

X = sp.Symbol("x", real=True)
q11, q22 = sp.symbols("q_11 q_22", positive=True)
q12 = sp.Symbol("q_12", real=True)
theta = sp.Symbol("theta", nonnegative=True)

__all__ = ["X", "q11", "q12", "q22", "theta"]
