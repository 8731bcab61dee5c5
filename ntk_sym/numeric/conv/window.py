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
        """Input positions of the output positions `coords` = (o₁, …, image) (index arrays) at
        offset δ: ((i₁, …, image), valid) with `valid` False where the position is padding
        (its index is then clipped to 0, so that it can still be read)."""
        *out, image = coords
        valid = np.ones(image.shape, dtype=bool)
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
        return (*new, image), valid


def _ranges(n: int, s: int, lo: int, out: int, d: int) -> tuple[slice, slice] | None:
    """(output slice, input slice) of the outputs o whose input o·s + d − lo lies in [0, n)."""
    first = max(0, -(-(lo - d) // s))
    last = min(out - 1, (n - 1 + lo - d) // s)
    if last < first:
        return None
    start = first * s + d - lo
    return slice(first, last + 1), slice(start, start + (last - first) * s + 1, s)


def window_sum(arr, groups: list[tuple[int, ...]], window: Window, shape: tuple[int, ...],
               xp: types.ModuleType = np):
    """The sum over the window's offsets δ of `arr` shifted by δ along every axis group (divide
    by `Window.count` for the mean).

    Each group lists the axes of one image's spatial position; all groups move by the same δ
    (a Conv on a pair kernel Σ[p, p'] shifts p and p' together). The sum is taken one spatial
    axis at a time (the window is a product of 1-D windows), adding shifted slices into the
    output: zero padding is never materialised, only CIRCULAR wraps by padding. Returns a new
    array.
    """
    out_shape = window.out_shape(shape, "window")
    pads = window.pads(shape)
    for axis in range(len(shape)):
        n, k, s, o = shape[axis], window.size[axis], window.strides[axis], out_shape[axis]
        lo = pads[axis][0]
        axes = [group[axis] for group in groups]
        if window.padding == "CIRCULAR" and lo + pads[axis][1] > 0:
            width = [(0, 0)] * arr.ndim
            for a in axes:
                width[a] = pads[axis]
            arr = xp.pad(arr, width, mode="wrap")
            n, lo = n + lo + pads[axis][1], 0
        parts = [r for r in (_ranges(n, s, lo, o, d) for d in range(k)) if r is not None]
        # start from an offset that covers every output (SAME's centre), else from zeros
        whole = next((r for r in parts if r[0] == slice(0, o)), None)
        total = None
        if whole is None:
            new_shape = list(arr.shape)
            for a in axes:
                new_shape[a] = o
            total = xp.zeros(new_shape, dtype=arr.dtype)
        for ranges in parts:
            target, source = [slice(None)] * arr.ndim, [slice(None)] * arr.ndim
            for a in axes:
                target[a], source[a] = ranges
            if total is None and ranges is whole:
                total = arr[tuple(source)].copy()
        for ranges in parts:
            if ranges is whole:
                continue
            target, source = [slice(None)] * arr.ndim, [slice(None)] * arr.ndim
            for a in axes:
                target[a], source[a] = ranges
            total[tuple(target)] += arr[tuple(source)]
        arr = total
    return arr
