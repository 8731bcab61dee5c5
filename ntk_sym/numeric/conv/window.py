"""Spatial windows: the offsets a Conv or AvgPool averages over, padding and strides.

A window of size k = (k₁, …) with strides s over an input of spatial shape n = (n₁, …) maps the
output position o to the input positions o·s + δ − lo for the k₁·k₂·… offsets δ (conventions of
neural-tangents' ``stax``, i.e. of XLA's convolutions):

* ``VALID``: no padding, output size ⌊(n − k)/s⌋ + 1 (the window must fit: n ≥ k);
* ``SAME``: output size ⌈n/s⌉, total padding max((out − 1)s + k − n, 0) with lo = total // 2
  before and the rest after; padded positions hold zeros and still count in the mean;
* ``CIRCULAR``: the sizes and offsets of SAME, but the positions wrap around (mod n).
"""

from __future__ import annotations

import itertools
import math
import types
from dataclasses import dataclass

import numpy as np

from ...errors import InputError

PADDINGS = ("SAME", "VALID", "CIRCULAR")


@dataclass(frozen=True)
class Window:
    """Window sizes, strides and padding over the spatial axes (module docstring)."""

    size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str

    @property
    def count(self) -> int:
        """k = the number of offsets, the denominator of every window mean."""
        return math.prod(self.size)

    def offsets(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(k) for k in self.size)))

    def out_shape(self, shape: tuple[int, ...], name: str) -> tuple[int, ...]:
        """Output spatial shape for input `shape`; `name` labels the error of a window that
        does not fit (VALID)."""
        if len(shape) != len(self.size):
            raise InputError(
                f"{name}: a {len(self.size)}-D window on {len(shape)}-D images (spatial shape "
                f"{shape}); inputs are (n, L, C) for 1-D and (n, H, W, C) for 2-D windows"
            )
        if self.padding == "VALID":
            if any(n < k for n, k in zip(shape, self.size, strict=True)):
                raise InputError(
                    f"{name}: the window {self.size} is larger than the image {shape} with "
                    "padding VALID"
                )
            return tuple(
                (n - k) // s + 1 for n, k, s in zip(shape, self.size, self.strides, strict=True)
            )
        return tuple(-(-n // s) for n, s in zip(shape, self.strides, strict=True))

    def pads(self, shape: tuple[int, ...]) -> list[tuple[int, int]]:
        """(before, after) padding of each spatial axis."""
        if self.padding == "VALID":
            return [(0, 0)] * len(shape)
        out = self.out_shape(shape, "window")
        pads = []
        for n, k, s, o in zip(shape, self.size, self.strides, out, strict=True):
            total = max((o - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads

    def source(self, coords: tuple, delta: tuple[int, ...], shape: tuple[int, ...]):
        """Input positions of the output positions `coords` = (point, o₁, …) (index arrays) at
        offset δ: ((point, i₁, …), valid) with `valid` False where the position is padding
        (its index is then clipped to 0, so that it can still be read)."""
        point, *out = coords
        valid = np.ones(point.shape, dtype=bool)
        new = []
        for o, d, s, (lo, _), n in zip(out, delta, self.strides, self.pads(shape), shape,
                                       strict=True):
            i = o * s + d - lo
            if self.padding == "CIRCULAR":
                i = i % n
            else:
                inside = (i >= 0) & (i < n)
                valid &= inside
                i = np.where(inside, i, 0)
            new.append(i)
        return (point, *new), valid


def window_mean(arr, groups: list[tuple[int, ...]], window: Window, shape: tuple[int, ...],
                xp: types.ModuleType = np):
    """The mean over the window's offsets δ of `arr` shifted by δ along every axis group.

    Each group lists the axes of one image's spatial position; all groups move by the same δ
    (a Conv on a pair kernel Σ[p, p'] shifts p and p' together). Returns a new array.
    """
    pads = window.pads(shape)
    if any(p != (0, 0) for p in pads):
        width = [(0, 0)] * arr.ndim
        for group in groups:
            for axis, p in zip(group, pads, strict=True):
                width[axis] = p
        arr = xp.pad(arr, width, mode="wrap" if window.padding == "CIRCULAR" else "constant")
    out = window.out_shape(shape, "window")
    total = None
    for delta in window.offsets():
        index = [slice(None)] * arr.ndim
        for group in groups:
            for axis, d, s, o in zip(group, delta, window.strides, out, strict=True):
                index[axis] = slice(d, d + s * (o - 1) + 1, s)
        part = arr[tuple(index)]
        total = part.copy() if total is None else xp.add(total, part, out=total)
    total /= window.count
    return total
