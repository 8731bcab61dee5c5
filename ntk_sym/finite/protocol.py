"""The finite-layer protocol: what every layer's finite-width twin implements.

One twin per layer kind (`ntk_sym.finite.layers`, `ntk_sym.finite.conv`), returned by the
layer's ``finite()``; `ntk_sym.finite.network.FiniteNetwork` strings them together. Every array
carries two leading axes, E ensemble members and N input points: a layer's input is
x ``(E, N, *in_shape)``, with ``in_shape`` = (d,) for vectors, (L, C) for sequences and (H, W, C)
for images, channels last. Every parameter array has the leading axis E.

A twin subclasses `FiniteLayer` and implements

* ``init(rng, in_shape, width, size) -> (params, out_shape)``: draw the parameters, a tuple of
  arrays with leading axis ``size`` = E (``()`` for a layer without parameters), and give the
  output's shape. ``rng`` is the layer's own generator (None when ``has_parameters`` is False);
  ``width`` is the number of output units or channels a layer with parameters produces: the
  network's width, or the number of outputs for the readout.
* ``forward(params, x) -> (y, cache)``: the output and whatever the pullback needs.
* ``backward(params, cache, delta) -> (delta_in, grads)``: the vector–Jacobian product. For
  δ = ∂ℒ/∂y, shaped like y: δ_in = ∂ℒ/∂x and ∂ℒ/∂θ for every parameter array θ (the structure of
  ``params``), summed over the N points.
* ``rates(params)``: the learning-rate weight r_θ of every parameter array (the structure of
  ``params``): gradient descent moves θ ← θ − η r_θ ∂ℒ/∂θ. 1 in the NTK parameterization; 1/fan_in
  for the weights of a standard-parameterization Dense. Default: 1 for every array.
* ``tangent_backward(params, cache1, delta1, cache2, delta2) -> (in1, in2, theta)``: the
  pullback of two sides at once and this layer's term of the empirical NTK,

      theta[e, i, j] = Σ_θ r_θ ∂f(x_i)/∂θ · ∂f(x'_j)/∂θ     (θ over this layer's parameters),

  where δ1[e, i] = ∂f(x_i)/∂y_i (one scalar output per point, so each point's signal is its
  own gradient). The default pulls both sides back with ``backward`` and, for a layer with
  parameters, forms the per-point gradients by one ``backward`` per point; Dense and Conv
  override it with their factorised forms.

A user layer plugs in by returning such a twin from its ``finite()``: subclass `FiniteLayer`,
implement ``forward`` and ``backward`` (and ``init`` if it has parameters or changes the shape;
then set ``has_parameters = True``), and `ntk_sym.finite.init` builds, trains and measures any
network containing it::

    @dataclass(frozen=True)
    class FiniteScale(FiniteLayer):          # y = c·x, no parameters
        c: float
        def forward(self, params, x):
            return self.c * x, None
        def backward(self, params, cache, delta):
            return self.c * delta, ()

The functions below compose twins in series (a network, a Residual's block): `init_chain`,
`forward_chain`, `backward_chain` and `tangent_chain`, with parameters, caches and gradients as
lists of the layers' own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import NTKSymError

Shape = tuple[int, ...]
Params = tuple


class FiniteLayer:
    """Base of the finite twins: the defaults of the protocol (module docstring)."""

    #: Whether `init` draws parameters (and so needs its own generator).
    has_parameters: ClassVar[bool] = False

    def init(
        self, rng: np.random.Generator | None, in_shape: Shape, width: int, size: int
    ) -> tuple[Params, Shape]:
        """No parameters; the output has the input's shape."""
        return (), in_shape

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no forward map")

    def backward(self, params: Params, cache: Any, delta: np.ndarray) -> tuple[np.ndarray, Params]:
        raise NotImplementedError(f"{type(self).__name__} has no pullback")

    def rates(self, params: Params) -> tuple:
        """r_θ = 1 for every parameter array."""
        return tuple(1.0 for _ in params)

    def tangent_backward(
        self, params: Params, cache1: Any, delta1: np.ndarray, cache2: Any, delta2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
        """Both pullbacks and Σ_θ r_θ ∂f(x_i)/∂θ ∂f(x'_j)/∂θ from per-point gradients."""
        same = cache2 is cache1 and delta2 is delta1
        in1 = self.backward(params, cache1, delta1)[0]
        in2 = in1 if same else self.backward(params, cache2, delta2)[0]
        if not params:
            return in1, in2, 0.0
        g1 = self._per_point(params, cache1, delta1)
        g2 = g1 if same else self._per_point(params, cache2, delta2)
        theta = 0.0
        for rate, a, b in zip(self.rates(params), g1, g2, strict=True):
            theta = theta + rate * (a @ b.transpose(0, 2, 1))
        return in1, in2, theta

    def _per_point(self, params: Params, cache: Any, delta: np.ndarray) -> list[np.ndarray]:
        """∂f(x_i)/∂θ for every point, (E, N, #θ) per parameter array: one pullback per point."""
        rows = []
        for i in range(delta.shape[1]):
            only = np.zeros_like(delta)
            only[:, i] = delta[:, i]
            rows.append(self.backward(params, cache, only)[1])
        return [np.stack([g[k].reshape(g[k].shape[0], -1) for g in rows], axis=1)
                for k in range(len(params))]


# -- twins in series ---------------------------------------------------------------------------
def init_chain(
    layers: Sequence[FiniteLayer],
    rngs: Iterator[np.random.Generator],
    in_shape: Shape,
    widths: Sequence[int],
    size: int,
) -> tuple[list[Params], Shape]:
    """Parameters of `layers` in order (``widths[k]`` for layer k) and the output shape. Each
    layer with parameters takes the next generator of `rngs`. An error names the layer."""
    params, shape = [], in_shape
    for position, (layer, width) in enumerate(zip(layers, widths, strict=True)):
        rng = next(rngs) if layer.has_parameters else None
        try:
            p, shape = layer.init(rng, shape, width, size)
        except NTKSymError as err:
            raise type(err)(f"layer {position} ({type(layer).__name__}): {err}") from None
        params.append(p)
    return params, shape


def forward_chain(
    layers: Sequence[FiniteLayer], params: Sequence[Params], x: np.ndarray
) -> tuple[np.ndarray, list]:
    caches = []
    for layer, p in zip(layers, params, strict=True):
        x, cache = layer.forward(p, x)
        caches.append(cache)
    return x, caches


def backward_chain(
    layers: Sequence[FiniteLayer],
    params: Sequence[Params],
    caches: Sequence,
    delta: np.ndarray,
    stop: int = 0,
) -> tuple[np.ndarray, list[Params]]:
    """(δ at the input of layers[stop], gradients of every layer; () before `stop`)."""
    grads: list[Params] = [()] * len(layers)
    for k in range(len(layers) - 1, stop - 1, -1):
        delta, grads[k] = layers[k].backward(params[k], caches[k], delta)
    return delta, grads


def tangent_chain(
    layers: Sequence[FiniteLayer],
    params: Sequence[Params],
    caches1: Sequence,
    delta1: np.ndarray,
    caches2: Sequence,
    delta2: np.ndarray,
    stop: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
    """Both pullbacks through layers[stop:] and the sum of their empirical-NTK terms (added
    input side first, so the rounding does not depend on the direction of the pullback)."""
    terms = []
    for k in range(len(layers) - 1, stop - 1, -1):
        delta1, delta2, term = layers[k].tangent_backward(
            params[k], caches1[k], delta1, caches2[k], delta2
        )
        terms.append(term)
    theta: np.ndarray | float = 0.0
    for term in reversed(terms):
        theta = theta + term
    return delta1, delta2, theta


def leaves(tree: Any) -> Iterator:
    """The arrays (or rates) of a nested tuple/list of parameters, in order."""
    if isinstance(tree, tuple | list):
        for item in tree:
            yield from leaves(item)
    else:
        yield tree


def map_leaves(tree: Any, fn) -> Any:
    """`tree` with every array replaced by fn(array), lists and tuples kept."""
    if isinstance(tree, tuple | list):
        return type(tree)(map_leaves(item, fn) for item in tree)
    return fn(tree)
