"""Finite-width twins of the image layers, in the protocol of `ntk_sym.finite.protocol`.

Images are ``(E, N, *S, C)``, channels last (E ensemble members, N images, S the spatial axes: one
for sequences, two for images). NTK parameterization, every weight ~ N(0, 1):

* `FiniteConv`: h'[p, d] = (σ_w/√(kC)) Σ_δ Σ_c W[δ, c, d] h[σp + δ, c] + σ_b b[d], k window
  offsets, C input channels, zero (SAME), wrapped (CIRCULAR) or no (VALID) padding. Parameters
  W (E, k, C, D), b (E, D). With u_p the patch at output position p, ∂f/∂W = c_w Σ_p u_p ⊗ δ_p
  and ∂f/∂b = σ_b Σ_p δ_p; its empirical-NTK term is formed from these per-image gradients.
* `FiniteAvgPool`: block means (padding VALID); `FiniteGlobalAvgPool`: the mean over positions,
  ``(E, N, *S, C) → (E, N, C)``; `FiniteFlatten`: positions and channels as one vector.

A window given as one integer covers every spatial axis, so it is resolved against the input's
rank at `init` and in `forward`. As the width grows, the output's covariance over the weights
and the empirical NTK tend to the NNGP and NTK of `ntk_sym.layers.conv`, with fluctuations
O(width^{-1/2}).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..symbolic.conv_maps import resolve_window
from .protocol import FiniteLayer, Shape


def _pads(shape, size, strides, padding):
    if padding == "VALID":
        out = tuple((n - k) // s + 1 for n, k, s in zip(shape, size, strides, strict=True))
        return out, [(0, 0)] * len(shape)
    out = tuple(-(-n // s) for n, s in zip(shape, strides, strict=True))
    pads = []
    for n, k, s, o in zip(shape, size, strides, out, strict=True):
        total = max((o - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return out, pads


def _patches(a, size, strides, padding):
    """(patches (N, *O, k, C), padded shape, pads, out shape) of a (N, *S, C)."""
    shape = a.shape[1:-1]
    out, pads = _pads(shape, size, strides, padding)
    mode = "wrap" if padding == "CIRCULAR" else "constant"
    padded = np.pad(a, [(0, 0), *pads, (0, 0)], mode=mode)
    views = []
    for delta in itertools.product(*(range(k) for k in size)):
        index = tuple(slice(d, d + s * (o - 1) + 1, s)
                      for d, s, o in zip(delta, strides, out, strict=True))
        views.append(padded[(slice(None), *index)])
    return np.stack(views, axis=-2), padded.shape, pads, out


def _unpatch(grad, padded_shape, pads, size, strides, out, padding):
    """The adjoint of `_patches`: gradient (N, *O, k, C) back to the input (N, *S, C)."""
    total = np.zeros(padded_shape)
    for j, delta in enumerate(itertools.product(*(range(k) for k in size))):
        index = tuple(slice(d, d + s * (o - 1) + 1, s)
                      for d, s, o in zip(delta, strides, out, strict=True))
        total[(slice(None), *index)] += grad[..., j, :]
    for axis, (lo, hi) in enumerate(pads, 1):
        n = padded_shape[axis] - lo - hi
        if padding == "CIRCULAR":
            # padded position i holds input position (i − lo) mod n: fold the copies back
            shape = list(total.shape)
            shape[axis] = n
            folded = np.zeros(shape)
            np.add.at(folded, (slice(None),) * axis + ((np.arange(total.shape[axis]) - lo) % n,),
                      total)
            total = folded
        else:
            total = np.take(total, np.arange(lo, lo + n), axis=axis)
    return total


def _check_image(shape: Shape, who: str) -> int:
    """The number of spatial axes of an input of per-point `shape`, which must be an image."""
    if len(shape) not in (2, 3):
        raise InputError(f"{who} takes images (N, L, C) or (N, H, W, C), channels last; its "
                         f"input has per-point shape {shape}")
    return len(shape) - 1


def _merge(x: np.ndarray) -> np.ndarray:
    """(E, N, *S, C) as (E·N, *S, C), the batch layout of `_patches`."""
    return x.reshape(-1, *x.shape[2:])


@dataclass(frozen=True)
class FiniteConv(FiniteLayer):
    """h'[p, d] = (σ_w/√(kC)) Σ_δ Σ_c W[δ, c, d] h[σp + δ, c] + σ_b b[d]."""

    filter_shape: int | tuple[int, ...] = 3
    strides: int | tuple[int, ...] = 1
    padding: str = "SAME"
    w_std: float = 1.0
    b_std: float = 0.0
    has_parameters = True

    def _window(self, nd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        size = resolve_window(self.filter_shape, nd)
        return size, resolve_window(self.strides, len(size))

    def init(self, rng, in_shape, width, size):
        nd = _check_image(in_shape, "Conv")
        window, strides = self._window(nd)
        if len(window) != nd:
            raise InputError(f"Conv: filter {window} for images with {nd} spatial axes")
        out, _ = _pads(in_shape[:-1], window, strides, self.padding)
        if min(out) < 1:
            raise InputError(f"Conv: filter {window} is larger than the images {in_shape[:-1]}")
        k = math.prod(window)
        w = rng.standard_normal((size, k, in_shape[-1], width))
        return (w, rng.standard_normal((size, width))), (*out, width)

    def forward(self, params, a):
        w, b = params
        window, strides = self._window(a.ndim - 3)
        patches, *geometry = _patches(_merge(a), window, strides, self.padding)
        e, (k, c, d) = a.shape[0], w.shape[1:]
        flat = patches.reshape(e, -1, k * c)
        h = self._c_w(w) * (flat @ w.reshape(e, k * c, d)) + self.b_std * b[:, None, :]
        return h.reshape(*a.shape[:2], *patches.shape[1:-2], d), (flat, geometry, a.shape)

    def backward(self, params, cache, delta):
        w, _ = params
        flat = cache[0]
        signal = delta.reshape(w.shape[0], -1, w.shape[-1])
        gw = self._c_w(w) * (flat.transpose(0, 2, 1) @ signal).reshape(w.shape)
        return self._pullback(w, cache, signal), (gw, self.b_std * signal.sum(axis=1))

    def _c_w(self, w: np.ndarray) -> float:
        """c_w = σ_w/√(kC) for weights W (E, k, C, D)."""
        return self.w_std / math.sqrt(w.shape[1] * w.shape[2])

    def _pullback(self, w, cache, signal):
        """δ_in from the output signal (E, N·O, D): the adjoint of the patch extraction."""
        _, (padded, pads, out), in_shape = cache
        e, (k, c, d) = w.shape[0], w.shape[1:]
        back = self._c_w(w) * (signal @ w.reshape(e, k * c, d).transpose(0, 2, 1))
        window, strides = self._window(len(in_shape) - 3)
        back = back.reshape(-1, *out, k, c)
        back = _unpatch(back, padded, pads, window, strides, out, self.padding)
        return back.reshape(in_shape)

    def tangent_backward(self, params, cache1, delta1, cache2, delta2):
        """Σ_θ ∂f(x_i)/∂θ ∂f(x'_j)/∂θ from the per-image gradients c_w Σ_p u_p ⊗ δ_p and
        σ_b Σ_p δ_p."""
        w, _ = params
        same = cache2 is cache1 and delta2 is delta1
        sides = [self._per_image(w, cache1, delta1)]
        sides.append(sides[0] if same else self._per_image(w, cache2, delta2))
        (gw1, gb1), (gw2, gb2) = sides
        theta = gw1 @ gw2.transpose(0, 2, 1) + gb1 @ gb2.transpose(0, 2, 1)
        d = w.shape[-1]
        in1 = self._pullback(w, cache1, delta1.reshape(w.shape[0], -1, d))
        in2 = in1 if same else self._pullback(w, cache2, delta2.reshape(w.shape[0], -1, d))
        return in1, in2, theta

    def _per_image(self, w, cache, delta):
        flat, _, in_shape = cache
        e, n, (k, c, d) = w.shape[0], in_shape[1], w.shape[1:]
        u = flat.reshape(e, n, -1, k * c)
        signal = delta.reshape(e, n, -1, d)
        # a matrix product per image (BLAS), not einsum's loops: 50x faster at width 64
        gw = self._c_w(w) * (u.transpose(0, 1, 3, 2) @ signal).reshape(e, n, -1)
        return gw, self.b_std * signal.sum(axis=2)


@dataclass(frozen=True)
class FiniteAvgPool(FiniteLayer):
    """Block means of `window` positions moved by `strides` (padding VALID)."""

    window: int | tuple[int, ...] = 2
    strides: int | tuple[int, ...] | None = None

    def _window(self, nd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        size = resolve_window(self.window, nd)
        return size, resolve_window(size if self.strides is None else self.strides, len(size))

    def init(self, rng, in_shape, width, size):
        nd = _check_image(in_shape, "AvgPool")
        window, strides = self._window(nd)
        out, _ = _pads(in_shape[:-1], window, strides, "VALID")
        if len(window) != nd or min(out) < 1:
            raise InputError(f"AvgPool: window {window} does not fit images {in_shape[:-1]}")
        return (), (*out, in_shape[-1])

    def forward(self, params, a):
        window, strides = self._window(a.ndim - 3)
        patches, *geometry = _patches(_merge(a), window, strides, "VALID")
        y = patches.mean(axis=-2)
        return y.reshape(*a.shape[:2], *y.shape[1:]), (geometry, a.shape)

    def backward(self, params, cache, delta):
        geometry, in_shape = cache
        window, strides = self._window(len(in_shape) - 3)
        k = math.prod(window)
        grad = np.repeat(_merge(delta)[..., None, :] / k, k, axis=-2)
        padded, pads, out = geometry
        return _unpatch(grad, padded, pads, window, strides, out, "VALID").reshape(in_shape), ()


@dataclass(frozen=True)
class FiniteGlobalAvgPool(FiniteLayer):
    """The mean over all positions: ``(E, N, *S, C) → (E, N, C)``."""

    def init(self, rng, in_shape, width, size):
        _check_image(in_shape, "GlobalAvgPool")
        return (), (in_shape[-1],)

    def forward(self, params, a):
        return a.mean(axis=tuple(range(2, a.ndim - 1))), a.shape

    def backward(self, params, shape, delta):
        positions = math.prod(shape[2:-1])
        spatial = (slice(None), slice(None)) + (None,) * (len(shape) - 3) + (slice(None),)
        return np.broadcast_to(delta[spatial] / positions, shape).copy(), ()


@dataclass(frozen=True)
class FiniteFlatten(FiniteLayer):
    """Positions and channels as one vector: ``(E, N, *S, C) → (E, N, P·C)``."""

    def init(self, rng, in_shape, width, size):
        _check_image(in_shape, "Flatten")
        return (), (math.prod(in_shape),)

    def forward(self, params, a):
        return a.reshape(*a.shape[:2], -1), a.shape

    def backward(self, params, shape, delta):
        return delta.reshape(shape), ()


__all__ = ["FiniteAvgPool", "FiniteConv", "FiniteFlatten", "FiniteGlobalAvgPool"]
