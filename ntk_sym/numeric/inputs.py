"""Validation of user arrays: shapes, dtypes and finiteness, with errors that name the problem."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def as_inputs(X: object, name: str = "X1") -> np.ndarray:
    """`X` as a float64 array of shape (n, d) with finite entries, or an `InputError`."""
    if np.iscomplexobj(X):
        raise InputError(
            f"{name} is complex; the kernels are defined for real inputs (pass the real part, "
            "or the real and imaginary parts as separate features, explicitly)"
        )
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a numeric array of shape (n, d): {err}") from None
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be 2-D with shape (n_points, n_features), got {arr.ndim}-D shape "
            f"{arr.shape}; reshape a single point with X[None, :] or a 1-D sample with X[:, None]"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(
            f"{name} has non-finite entries (first at row {bad[0]}, column {bad[1]}: "
            f"{arr[tuple(bad)]})"
        )
    return arr


def as_input_pair(X1: object, X2: object | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a pair of input arrays; X2 None means X2 = X1 (and is returned as None)."""
    A = as_inputs(X1, "X1")
    if X2 is None:
        return A, None
    B = as_inputs(X2, "X2")
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"X1 and X2 must have the same number of features, got {A.shape[1]} and {B.shape[1]}"
        )
    return A, B
