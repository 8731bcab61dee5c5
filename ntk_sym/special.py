"""Vectorised special functions NumPy lacks, accurate to float64 rounding."""

from __future__ import annotations

import math

import numpy as np

_erf_ufunc = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray | float) -> np.ndarray:
    """The error function, elementwise (math.erf is correctly rounded to ~1 ulp)."""
    return np.asarray(_erf_ufunc(np.asarray(x, dtype=np.float64)), dtype=np.float64)
