"""Finite convolutional networks in NumPy: forward pass, backprop and the empirical NTK.

The twins of the convolutional layers (`ntk_sym.layers.conv`), with images (N, *S, C)
channels last, NTK parameterization and every weight ~ N(0, 1):

* `FiniteConv`: h'[p, d] = (σ_w/√(kC)) Σ_δ Σ_c W[δ, c, d] h[σp + δ, c] + σ_b b[d], k window
  offsets, C input channels, zero (SAME), wrapped (CIRCULAR) or no (VALID) padding;
* `FiniteAvgPool`: block means; `FiniteGlobalAvgPool`: the mean over positions;
  `FiniteFlatten`: positions and channels as one vector;
* `FiniteDense` on vectors: h' = (σ_w/√n) W h + σ_b b; `FiniteActivation`: φ entrywise.

Every hidden Conv and Dense has `width` output channels/units, the last Dense one output f.
As width → ∞, f's covariance over the weights and its empirical NTK Σ_θ ∂f(x)/∂θ·∂f(x')/∂θ
tend to the NNGP and NTK of the layers, with fluctuations O(width^{-1/2}). `FiniteCNN.fit`
trains one network (several outputs allowed) by full-batch gradient descent.

`init_cnn` builds the twins from a network's layer maps (`twins_of`; a window given as one
integer covers every spatial axis, so the twins need the images' rank) and draws the weights,
now for a given input shape or at the first input; ``ntk_sym.finite.init(net, width, seed)``
and ``ntk_sym.layers.conv.finite_cnn`` call it. Nothing here imports ntk_sym.layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..errors import InputError, NTKSymError
from ..symbolic.conv_maps import resolve_window
from ..symbolic.maps import Layer
from .functions import activation_functions

ArrayFunction = Callable[[np.ndarray], np.ndarray]


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


@dataclass(frozen=True)
class FiniteConv:
    """h'[p, d] = (σ_w/√(kC)) Σ_δ Σ_c W[δ, c, d] h[σp + δ, c] + σ_b b[d]."""

    size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    w_std: float = 1.0
    b_std: float = 0.0

    def init(self, rng: np.random.Generator, fan_in: int, fan_out: int):
        k = math.prod(self.size)
        return rng.standard_normal((k, fan_in, fan_out)), rng.standard_normal(fan_out)

    def forward(self, params, a):
        W, b = params
        patches, *geometry = _patches(a, self.size, self.strides, self.padding)
        k, c, d = W.shape
        c_w = self.w_std / math.sqrt(k * c)
        h = c_w * (patches.reshape(-1, k * c) @ W.reshape(k * c, d))
        h = h.reshape(*patches.shape[:-2], d) + self.b_std * b
        return h, (patches, geometry, c_w)

    def backward(self, params, cache, delta, summed: bool = False):
        """(δ_in, gradients of W and b) for δ = ∂f/∂h' (N, *O, D): per example, (N, #W) and
        (N, #b), or summed over the examples, (1, #W) and (1, #b)."""
        W, _ = params
        patches, (padded_shape, pads, out), c_w = cache
        n, (k, c, d) = delta.shape[0], W.shape
        flat_delta = delta.reshape(n, -1, d)
        if summed:
            gW = c_w * (patches.reshape(-1, k * c).T @ flat_delta.reshape(-1, d)).reshape(1, -1)
            gb = self.b_std * flat_delta.sum(axis=(0, 1))[None]
        else:
            gW = c_w * np.einsum("nqkc,nqd->nkcd", patches.reshape(n, -1, k, c), flat_delta)
            gW = gW.reshape(n, -1)
            gb = self.b_std * flat_delta.sum(axis=1)
        back = c_w * (delta.reshape(-1, d) @ W.reshape(k * c, d).T)
        back = back.reshape(*delta.shape[:-1], k, c)
        return _unpatch(back, padded_shape, pads, self.size, self.strides, out,
                        self.padding), (gW, gb)


@dataclass(frozen=True)
class FiniteDense:
    """h' = (σ_w/√n) W h + σ_b b on vectors h (N, n)."""

    w_std: float = 1.0
    b_std: float = 0.0

    def init(self, rng: np.random.Generator, fan_in: int, fan_out: int):
        return rng.standard_normal((fan_out, fan_in)), rng.standard_normal(fan_out)

    def forward(self, params, a):
        if a.ndim != 2:
            raise InputError("Dense: comes after GlobalAvgPool or Flatten in a convolutional "
                             f"network (its input has spatial axes, shape {a.shape[1:]})")
        W, b = params
        if a.shape[1] != W.shape[1]:
            raise InputError(f"Dense: its input has {a.shape[1]} features, but the network was "
                             f"drawn for {W.shape[1]} (images of another size before Flatten?)")
        c_w = self.w_std / math.sqrt(W.shape[1])
        return c_w * a @ W.T + self.b_std * b, (a, c_w)

    def backward(self, params, cache, delta, summed: bool = False):
        W, _ = params
        a, c_w = cache
        if summed:
            grads = ((c_w * delta.T @ a).reshape(1, -1), self.b_std * delta.sum(axis=0)[None])
        else:
            gW = c_w * np.einsum("ni,nj->nij", delta, a).reshape(delta.shape[0], -1)
            grads = (gW, self.b_std * delta)
        return c_w * delta @ W, grads


@dataclass(frozen=True)
class FiniteActivation:
    """a = φ(h) entrywise."""

    phi: ArrayFunction
    dphi: ArrayFunction
    name: str = "activation"

    def forward(self, params, h):
        return self.phi(h), h

    def backward(self, params, h, delta, summed: bool = False):
        return self.dphi(h) * delta, ()


@dataclass(frozen=True)
class FiniteAvgPool:
    """Block means (padding VALID)."""

    size: tuple[int, ...]
    strides: tuple[int, ...]

    def forward(self, params, a):
        patches, *geometry = _patches(a, self.size, self.strides, "VALID")
        return patches.mean(axis=-2), geometry

    def backward(self, params, geometry, delta, summed: bool = False):
        k = math.prod(self.size)
        grad = np.repeat(delta[..., None, :] / k, k, axis=-2)
        padded_shape, pads, out = geometry
        return _unpatch(grad, padded_shape, pads, self.size, self.strides, out, "VALID"), ()


@dataclass(frozen=True)
class FiniteGlobalAvgPool:
    """The mean over all positions: (N, *S, C) → (N, C)."""

    def forward(self, params, a):
        return a.mean(axis=tuple(range(1, a.ndim - 1))), a.shape

    def backward(self, params, shape, delta, summed: bool = False):
        positions = math.prod(shape[1:-1])
        spatial = (slice(None),) + (None,) * (len(shape) - 2) + (slice(None),)
        return np.broadcast_to(delta[spatial] / positions, shape).copy(), ()


@dataclass(frozen=True)
class FiniteFlatten:
    """Positions and channels as one vector: (N, *S, C) → (N, P·C)."""

    def forward(self, params, a):
        return a.reshape(a.shape[0], -1), a.shape

    def backward(self, params, shape, delta, summed: bool = False):
        return delta.reshape(shape), ()


_WEIGHTED = (FiniteConv, FiniteDense)


@dataclass
class FiniteCNN:
    """One finite network: its twins and parameters, for images of shape `input_shape` ``(*S, C)``.

    Built by `init_cnn` (``ntk_sym.finite.init``) or `init_for`. Without an input shape the
    twins and weights are drawn at the first input (`pending` holds the recipe until then),
    as `ntk_sym.finite.FiniteNetwork` draws its first layer.
    """

    layers: tuple
    params: list
    input_shape: tuple[int, ...] | None = None
    pending: Callable[[tuple[int, ...]], FiniteCNN] | None = field(default=None, repr=False)

    def check_inputs(self, X: np.ndarray, label: str = "X") -> np.ndarray:
        """`X` as a float64 array of images (N, *S, C), drawing the network on first use."""
        try:
            a = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(f"{label} must be a numeric image array: {err}") from None
        if a.ndim not in (3, 4):
            raise InputError(f"{label} must be images (N, L, C) or (N, H, W, C), channels last, "
                             f"got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{label} has non-finite entries")
        if self.pending is not None:
            drawn = self.pending(a.shape[1:])
            self.layers, self.params, self.input_shape = drawn.layers, drawn.params, a.shape[1:]
            self.pending = None
        elif self.input_shape is not None and (
                a.ndim - 1 != len(self.input_shape) or a.shape[-1] != self.input_shape[-1]):
            # other image sizes are fine where GlobalAvgPool reads out (Flatten: FiniteDense)
            raise InputError(f"{label} has images of shape {a.shape[1:]}; the network was "
                             f"built for {self.input_shape} (rank and channels must agree)")
        return a

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, list]:
        """(f(X) of shape (N, outputs), the caches for the backward pass)."""
        a, caches = self.check_inputs(X), []
        for layer, params in zip(self.layers, self.params, strict=True):
            a, cache = layer.forward(params, a)
            caches.append(cache)
        return a, caches

    def apply(self, X: np.ndarray) -> np.ndarray:
        """f(X): (N,) for one output, else (N, outputs)."""
        f = self.forward(X)[0]
        return f[:, 0] if f.shape[1] == 1 else f

    __call__ = apply

    def gradients(self, X: np.ndarray, delta: np.ndarray | None = None,
                  summed: bool = False) -> np.ndarray:
        """Per-example gradients of Σ_j δ_ij f_j(x_i) with respect to θ, all parameters
        flattened: (N, #θ) (summed over the examples: (1, #θ)). The default δ = 1 (one
        output) gives ∂f(x_i)/∂θ."""
        f, caches = self.forward(X)
        delta = np.ones(f.shape) if delta is None else np.asarray(delta, dtype=np.float64)
        grads = []
        for layer, params, cache in zip(self.layers[::-1], self.params[::-1], caches[::-1],
                                        strict=True):
            delta, g = layer.backward(params, cache, delta, summed)
            grads.append(g)
        # in the order of `flat_params`: layers first to last
        rows = 1 if summed else f.shape[0]
        flat = [g.reshape(rows, -1) for group in grads[::-1] for g in group]
        return np.concatenate(flat, axis=1)

    def empirical_ntk(self, X1: np.ndarray, X2: np.ndarray | None = None) -> np.ndarray:
        """Θ̂(x, x') = Σ_θ ∂f(x)/∂θ · ∂f(x')/∂θ, (N₁, N₂)."""
        G1 = self.gradients(X1)
        G2 = G1 if X2 is None else self.gradients(X2)
        return G1 @ G2.T

    def empirical_nngp(self, X1: np.ndarray, X2: np.ndarray | None = None) -> np.ndarray:
        """K̂(x, x') = σ_w² ⟨a, a'⟩/n + σ_b², a (N, n) the readout Dense's input: (N₁, N₂), the
        covariance of each output over the readout's weights given the rest of the network."""
        a1 = self._readout_input(X1)
        a2 = a1 if X2 is None else self._readout_input(X2)
        readout = self.layers[-1]
        if not isinstance(readout, FiniteDense):
            raise NTKSymError("empirical_nngp needs a network that ends with a Dense readout, "
                              f"not {type(readout).__name__}")
        return readout.w_std**2 * (a1 @ a2.T) / a1.shape[1] + readout.b_std**2

    def _readout_input(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[1][-1][0]  # the readout Dense's cache is (a, c_w)

    def flat_params(self) -> np.ndarray:
        if self.pending is not None:
            raise NTKSymError("the network is not drawn yet: apply it to images once, or give "
                              "ntk_sym.finite.init an input_shape")
        return np.concatenate([p.ravel() for params in self.params for p in params])

    def with_flat_params(self, theta: np.ndarray) -> FiniteCNN:
        """A copy with the parameters taken from the flat vector `theta` (`flat_params` order)."""
        new, start = [], 0
        for params in self.params:
            group = []
            for p in params:
                group.append(theta[start:start + p.size].reshape(p.shape))
                start += p.size
            new.append(tuple(group))
        return FiniteCNN(self.layers, new, self.input_shape)

    def fit(self, X: np.ndarray, Y: np.ndarray, lr: float, steps: int) -> tuple[FiniteCNN, list]:
        """Full-batch gradient descent on the loss ½ Σ_ij (f_j(x_i) − Y_ij)² / N (Y of shape
        (N, outputs)), the NTK parameterization's learning rate `lr`: (trained copy, losses)."""
        net, losses = self, []
        Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        for _ in range(steps):
            residual = net.forward(X)[0] - Y
            losses.append(0.5 * float((residual**2).sum()) / len(X))
            step = net.gradients(X, residual / len(X), summed=True)[0]
            net = net.with_flat_params(net.flat_params() - lr * step)
        return net, losses


def init_for(layers: tuple, X: np.ndarray, width: int, seed: int = 0,
             outputs: int = 1) -> FiniteCNN:
    """A network of the twins `layers` for images shaped like X (N, *S, C): every hidden Conv
    and Dense has `width` outputs, the last Dense `outputs`; W, b ~ N(0, 1), drawn in layer
    order from ``numpy.random.default_rng(seed)``."""
    return _draw(tuple(layers), width, seed, outputs, np.asarray(X).shape[1:])


def _draw(layers: tuple, width: int, seed, outputs: int, input_shape: tuple[int, ...]
          ) -> FiniteCNN:
    rng = np.random.default_rng(seed)
    a = np.zeros((1, *input_shape))
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, _WEIGHTED))
    params = []
    for i, layer in enumerate(layers):
        if isinstance(layer, _WEIGHTED):
            p = layer.init(rng, a.shape[-1], outputs if i == last else width)
        else:
            p = ()
        params.append(p)
        a, _ = layer.forward(p, a)
    return FiniteCNN(layers, params, tuple(input_shape))


def init_cnn(maps: Sequence[Layer], width: int, seed=0, outputs: int = 1,
             input_shape: Sequence[int] | None = None) -> FiniteCNN:
    """The finite CNN of the layer maps `maps` (Conv, activations, AvgPool, GlobalAvgPool or
    Flatten, Dense): `width` channels per hidden Conv and units per hidden Dense, `outputs`
    outputs, weights as `init_for` draws them from `seed`; for images of `input_shape`
    (*S, C) now, or at the first input when it is None."""
    maps = tuple(maps)
    _check_maps(maps)
    if input_shape is None:
        return FiniteCNN((), [], None, partial(_draw_maps, maps, width, seed, outputs))
    return _draw_maps(maps, width, seed, outputs, tuple(int(n) for n in input_shape))


def _draw_maps(maps: tuple, width: int, seed, outputs: int, input_shape: tuple[int, ...]
               ) -> FiniteCNN:
    if len(input_shape) not in (2, 3):
        raise InputError(f"a convolutional network takes images (L, C) or (H, W, C), channels "
                         f"last; got the input shape {input_shape}")
    return _draw(twins_of(maps, len(input_shape) - 1), width, seed, outputs, input_shape)


def twins_of(maps: Sequence[Layer], nd: int) -> tuple:
    """The finite twins of the layer maps `maps` for images with `nd` spatial axes."""
    _check_maps(maps)
    return tuple(_TWINS[m.kind](m, nd) for m in maps)


def _check_maps(maps: Sequence[Layer]) -> None:
    for i, m in enumerate(maps, 1):
        kind = getattr(m, "kind", None)
        if kind == "dense" and m.standard:
            raise NTKSymError(f"layer {i} (Dense): finite CNNs use the NTK parameterization")
        if kind not in _TWINS:
            raise NTKSymError(f"layer {i} ({m!r}) has no finite convolutional twin")


def _conv_twin(m, nd: int) -> FiniteConv:
    size = resolve_window(m.filter_shape, nd)
    return FiniteConv(size, resolve_window(m.strides, len(size)), m.padding, m.w_std, m.b_std)


def _pool_twin(m, nd: int) -> FiniteAvgPool:
    size = resolve_window(m.window, nd)
    return FiniteAvgPool(size, resolve_window(m.strides, len(size)))


#: map kind → its twin, given the map and the images' spatial rank.
_TWINS: dict[str, Callable] = {
    "conv": _conv_twin,
    "avg_pool": _pool_twin,
    "global_avg_pool": lambda m, nd: FiniteGlobalAvgPool(),
    "flatten": lambda m, nd: FiniteFlatten(),
    "dense": lambda m, nd: FiniteDense(m.w_std, m.b_std),
    "activation": lambda m, nd: FiniteActivation(*activation_functions(m.phi), m.phi.name),
}


__all__ = ["FiniteActivation", "FiniteAvgPool", "FiniteCNN", "FiniteConv", "FiniteDense",
           "FiniteFlatten", "FiniteGlobalAvgPool", "init_cnn", "init_for", "twins_of"]
