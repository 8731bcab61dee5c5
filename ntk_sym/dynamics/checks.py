"""Validation of the dynamics' inputs: kernels, targets, times, step counts and scalar options.

Every check raises `InputError` with a message naming the argument and the problem; nothing is
silently turned into NaN.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError

LOSSES = ("sum", "mean")

#: Relative asymmetry ‖K − Kᵀ‖_max / ‖K‖_max tolerated in a symmetric kernel: kernels assembled
#: entry by entry in float64 differ from their transposes by a few ulps, far below this.
SYMMETRY_RTOL = 1e-10


def as_matrix(name: str, value: object, shape: tuple[int, int]) -> np.ndarray:
    """`value` as a finite float64 array of exactly `shape`."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a numeric array of shape {shape}: {err}") from None
    if arr.shape != shape:
        raise InputError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(f"{name} has non-finite entries (first at {bad}: {arr[bad]})")
    return arr


def as_symmetric(name: str, value: object, n: int) -> np.ndarray:
    """`value` as a finite symmetric (n, n) float64 matrix, symmetrised to remove rounding."""
    arr = as_matrix(name, value, (n, n))
    scale = np.max(np.abs(arr), initial=0.0)
    asym = np.max(np.abs(arr - arr.T), initial=0.0)
    if asym > SYMMETRY_RTOL * scale:
        raise InputError(
            f"{name} must be symmetric; max |K - K^T| = {asym:.3g} vs max |K| = {scale:.3g}"
        )
    return (arr + arr.T) / 2


def as_targets(value: object) -> np.ndarray:
    """Training targets y as a finite float64 array of shape (n,) or (n, k), n ≥ 1."""
    try:
        y = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"y_train must be a numeric array, shape (n,) or (n, k): {err}") from None
    if y.ndim not in (1, 2) or y.shape[0] == 0 or y.size == 0:
        raise InputError(f"y_train must have shape (n,) or (n, k) with n, k ≥ 1, got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"y_train has {int(np.sum(~np.isfinite(y)))} non-finite entries")
    return y


def as_times(value: float | Iterable[float]) -> np.ndarray:
    """Training times as a 1-D float64 array of values in [0, ∞] (∞ allowed, NaN not)."""
    try:
        times = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise InputError(f"times must be numbers in [0, inf]: {err}") from None
    if times.ndim != 1 or times.size == 0:
        raise InputError(f"times must be a non-empty 1-D sequence, got shape {times.shape}")
    if np.any(np.isnan(times)):
        raise InputError("times contain NaN")
    if np.any(times < 0):
        raise InputError(f"times must be non-negative, got {times[times < 0][0]!r}")
    return times


def as_steps(value: int | Iterable[int]) -> np.ndarray:
    """Numbers of gradient-descent steps as a 1-D int64 array of non-negative integers."""
    try:
        raw = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise InputError(f"steps must be non-negative integers: {err}") from None
    if raw.ndim != 1 or raw.size == 0:
        raise InputError(f"steps must be a non-empty 1-D sequence, got shape {raw.shape}")
    if not np.all(np.isfinite(raw)) or np.any(raw < 0) or np.any(raw != np.round(raw)):
        raise InputError(f"steps must be finite non-negative integers, got {raw.tolist()}")
    return raw.astype(np.int64)


def positive(name: str, value: float) -> float:
    """`value` as a finite float > 0."""
    x = float(value)
    if not np.isfinite(x) or x <= 0:
        raise InputError(f"{name} must be finite and positive, got {value!r}")
    return x


def non_negative(name: str, value: float) -> float:
    """`value` as a finite float ≥ 0."""
    x = float(value)
    if not np.isfinite(x) or x < 0:
        raise InputError(f"{name} must be finite and non-negative, got {value!r}")
    return x


def choice(name: str, value: str, options: tuple[str, ...]) -> str:
    """`value` if it is one of `options`."""
    if value not in options:
        raise InputError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value
