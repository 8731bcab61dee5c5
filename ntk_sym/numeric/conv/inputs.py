"""Validation of image inputs (n, L, C) or (n, H, W, C), with errors that name the layer."""

from __future__ import annotations

import numpy as np

from ...errors import InputError


def as_images(X: object, name: str, layer: str) -> np.ndarray:
    """`X` as a float64 array (n, L, C) or (n, H, W, C) with finite entries."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a numeric image array: {err}") from None
    if arr.ndim not in (3, 4):
        raise InputError(
            f"{layer} needs images: {name} must be (n, L, C) or (n, H, W, C), channels last, got "
            f"{arr.ndim}-D shape {arr.shape}; add a channel axis with X[..., None]"
        )
    if 0 in arr.shape:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputError(f"{name} has non-finite entries (first at index {bad}: {arr[bad]})")
    return arr


def as_image_pair(X1: object, X2: object | None, layer: str):
    """Validate X1 and X2 (None: X2 = X1) as images of the same shape (H, W, C)."""
    A = as_images(X1, "X1", layer)
    if X2 is None:
        return A, None
    B = as_images(X2, "X2", layer)
    if A.shape[-1] != B.shape[-1]:
        raise InputError(f"{layer}: X1 has {A.shape[-1]} channels and X2 has {B.shape[-1]}; "
                         "the channels of the two image sets must agree")
    if A.shape[1:] != B.shape[1:]:
        raise InputError(f"{layer}: X1 images are {A.shape[1:-1]} and X2 images "
                         f"{B.shape[1:-1]}; both sets must have the same spatial shape")
    return A, B
