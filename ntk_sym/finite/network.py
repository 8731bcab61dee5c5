"""One finite-width network class for every layer list, and its empirical kernels.

`init(net, width, seed)` builds a `FiniteNetwork` from the twins of `net`'s layers
(``net.finite_layers()``, each layer's ``finite()``; the protocol is `ntk_sym.finite.protocol`).
Every hidden Dense has `width` units and every Conv `width` channels; the readout, the last
layer, a Dense, has `outputs` units (one by default), and f(x) is its output. Inputs are vectors
X (N, d) or images X (N, *S, C), channels last. For ``mlp(φ, L, σ_w, σ_b)`` this is

    h⁽ˡ⁺¹⁾ = c_W⁽ˡ⁾ W⁽ˡ⁾ a⁽ˡ⁾ + c_b b⁽ˡ⁾,     a⁽ˡ⁺¹⁾ = φ(h⁽ˡ⁺¹⁾),     f(x) = h⁽ᴸ⁺¹⁾,

with a⁽⁰⁾ = x; the forward pass has the same law in both parameterizations.

Gradients by backpropagation: each twin pulls δ = ∂ℒ/∂(its output) back to its input and gives
its parameters' gradients (a Residual adds the skip's δ to the block's). The empirical NTK, with
each parameter's learning-rate weight r_θ (1 in the NTK parameterization; 1/fan_in for weights
in the standard one), is

    Θ̂(x, x') = Σ_θ r_θ ∂f(x)/∂θ ∂f(x')/∂θ,

summed layer by layer from the pullbacks of δ = 1 at the readout (each twin's
``tangent_backward``; Dense factorises it into Gram matrices of its inputs and signals, so the
Jacobian is never formed). With these weights Θ̂ → Θ (NTK parameterization) and Θ̂ → Θ_sp
(standard) as the width grows. The empirical NNGP is the covariance of f over the readout's
weights given the rest of the network, K̂(x, x') = σ_w² ⟨a, a'⟩/n + σ_b² with a the readout's
input; it tends to the NNGP.

An *ensemble* of E independent networks is stored with a leading axis of length E on every
parameter and every output; a single network (``ensemble=None``) has E = 1 internally and its
outputs are returned without that axis. The parameters are drawn when the input's shape is first
seen (or at `init`, given `input_dim` or `input_shape`), each layer with parameters from its own
generator spawned from `seed`, so the draws do not depend on the order of calls.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, NTKSymError
from ..symbolic.maps import Layer
from .layers import FiniteDense, FiniteResidual
from .protocol import (
    FiniteLayer,
    Params,
    Shape,
    backward_chain,
    forward_chain,
    init_chain,
    leaves,
    map_leaves,
    tangent_chain,
)

Seed = int | np.random.Generator | np.random.SeedSequence


def _groups(layers: Sequence[FiniteLayer], tree: Sequence[Params]) -> Iterator[Params]:
    """The parameter (or gradient) tuple of every layer with parameters, in forward order,
    Residual blocks opened."""
    for layer, item in zip(layers, tree, strict=True):
        if isinstance(layer, FiniteResidual):
            yield from _groups(layer.block, item)
        elif layer.has_parameters:
            yield item


@dataclass
class Gradients:
    """Parameter gradients, ensemble axis first, in the structure of `FiniteNetwork.params`.

    `weights` and `biases` list them per layer with parameters (W, b of every Dense and Conv) in
    forward order, as `FiniteNetwork.weights` and `.biases` list the parameters.
    """

    tree: list[Params]
    layers: tuple[FiniteLayer, ...] = field(repr=False)

    @property
    def groups(self) -> list[Params]:
        return list(_groups(self.layers, self.tree))

    @property
    def weights(self) -> list[np.ndarray]:
        return [g[0] for g in self.groups]

    @property
    def biases(self) -> list[np.ndarray]:
        return [g[1] for g in self.groups if len(g) > 1]


@dataclass
class Trace:
    """What one forward pass keeps for backpropagation: f(X) (E, N) (several outputs:
    (E, N, K)) and each layer's cache."""

    output: np.ndarray
    caches: list = field(repr=False)

    @property
    def readout_input(self) -> np.ndarray:
        """a, the readout Dense's input (E, N, n)."""
        return self.caches[-1]


def finite_layers_of(net: object) -> tuple[FiniteLayer, ...]:
    """The tuple of twins describing `net`: ``net.finite_layers()`` of a network
    (``ntk_sym.serial(...)``, ``ntk_sym.mlp(...)``), or `net` itself as a tuple/list of twins."""
    if hasattr(net, "finite_layers"):
        _check_twins_exist(getattr(net, "layers", ()))
        layers = net.finite_layers()
    elif isinstance(net, tuple | list):
        layers = net
    else:
        raise NTKSymError(
            f"net must be an ntk_sym Network (serial or mlp, with finite_layers()) or a tuple of "
            f"finite layers, got {type(net).__name__}"
        )
    return check_layers(tuple(layers))


def _check_twins_exist(layers: Sequence, prefix: str = "") -> None:
    """Every kernel layer (Residual blocks included) has a ``finite()``; else name the first
    without."""
    for i, layer in enumerate(layers, 1):
        if isinstance(layer, Layer) and not callable(getattr(layer, "finite", None)):
            raise NTKSymError(
                f"layer {prefix}{i} ({layer!r}) has no finite twin: give its class a finite() "
                "method returning an ntk_sym.finite.FiniteLayer (see ntk_sym.finite.protocol)"
            )
        _check_twins_exist(getattr(layer, "block", ()), f"{prefix}{i}.")


def check_layers(layers: tuple, where: str = "the network") -> tuple[FiniteLayer, ...]:
    """`layers` if every entry is a twin and the last one is the Dense readout."""
    if not layers:
        raise NTKSymError(f"{where} has no layers: an empty layer list cannot be evaluated")
    _check_kinds(layers, where)
    if not isinstance(layers[-1], FiniteDense):
        raise NTKSymError(
            f"{where} must end with a Dense readout, but its last layer is "
            f"{type(layers[-1]).__name__}"
        )
    return layers


def _check_kinds(layers: tuple, where: str) -> None:
    for position, layer in enumerate(layers):
        if not isinstance(layer, FiniteLayer):
            raise NTKSymError(
                f"layer {position} of {where} is {type(layer).__name__}, not a finite layer twin "
                "(a subclass of ntk_sym.finite.FiniteLayer)"
            )
        if isinstance(layer, FiniteResidual):
            if not layer.block:
                raise NTKSymError(f"layer {position} of {where}: Residual with an empty block")
            _check_kinds(layer.block, f"the Residual at layer {position}")


class FiniteNetwork:
    """A finite-width network (or an ensemble of them) built from a tuple of twins.

    Build one with `init`. `params` holds each layer's parameters (``()`` for a layer without),
    None until the input shape is known; `weights` and `biases` list W and b of every Dense and
    Conv in forward order (views: writing into them changes the network).
    """

    def __init__(
        self,
        net: object,
        layers: tuple[FiniteLayer, ...],
        width: int,
        seed: Seed,
        ensemble: int | None,
        outputs: int = 1,
    ) -> None:
        self.net = net
        self.layers = layers
        self.width = width
        self.outputs = outputs
        self.ensemble = ensemble
        self._size = 1 if ensemble is None else ensemble
        count = sum(layer.has_parameters for layer in layers)
        self._rngs = _generators(seed, count)
        # Backpropagation stops at the first layer with parameters: nothing before it has any.
        self._first = next((i for i, layer in enumerate(layers) if layer.has_parameters), 0)
        self.params: list[Params] | None = None
        self.input_shape: Shape | None = None

    # -- construction ----------------------------------------------------------------------------
    def _draw(self, in_shape: Shape) -> None:
        widths = [self.width] * (len(self.layers) - 1) + [self.outputs]
        params, _ = init_chain(self.layers, iter(self._rngs), in_shape, widths, self._size)
        self.params, self.input_shape = params, in_shape

    @property
    def input_dim(self) -> int | None:
        """d of vector inputs, or None while the network is not drawn (or takes images)."""
        shape = self.input_shape
        return shape[0] if shape is not None and len(shape) == 1 else None

    @property
    def weights(self) -> list[np.ndarray]:
        """W of every layer with parameters (Dense (E, n_out, n_in), Conv (E, k, C, D))."""
        return [g[0] for g in _groups(self.layers, self._drawn())]

    @property
    def biases(self) -> list[np.ndarray]:
        """b of every layer with parameters ((E, n_out) or (E, D))."""
        return [g[1] for g in _groups(self.layers, self._drawn()) if len(g) > 1]

    def rates(self) -> list:
        """r_θ of every parameter array, in the structure of `params` (`protocol`)."""
        return [layer.rates(p) for layer, p in zip(self.layers, self._drawn(), strict=True)]

    def _drawn(self) -> list[Params]:
        if self.params is None:
            raise NTKSymError(
                "the network is not drawn yet: apply it to inputs once, or give "
                "ntk_sym.finite.init an input_dim or input_shape"
            )
        return self.params

    def _with_parameters(self, select: slice, ensemble: int | None) -> FiniteNetwork:
        other = object.__new__(FiniteNetwork)
        other.__dict__.update(self.__dict__)
        # Private generator copies: a pending network is then drawn identically by both.
        other._rngs = copy.deepcopy(self._rngs)
        other.ensemble, other._size = ensemble, 1 if ensemble is None else ensemble
        if self.params is not None:
            other.params = map_leaves(self.params, lambda p: p[select].copy())
        return other

    def copy(self) -> FiniteNetwork:
        """An independent copy of the parameters (a pending network draws the same ones)."""
        return self._with_parameters(slice(None), self.ensemble)

    def member(self, index: int) -> FiniteNetwork:
        """Ensemble member `index` as a single network (a copy)."""
        if self.ensemble is None or not 0 <= index < self.ensemble:
            raise NTKSymError(f"member index {index} out of range for ensemble={self.ensemble}")
        if self.params is None:
            raise NTKSymError(
                "the first layer is not drawn yet: apply the ensemble once or pass input_dim"
            )
        return self._with_parameters(slice(index, index + 1), None)

    def _squeeze(self, out: np.ndarray) -> np.ndarray:
        return out[0] if self.ensemble is None else out

    # -- inputs -----------------------------------------------------------------------------------
    def check_inputs(self, x: np.ndarray, label: str = "X") -> np.ndarray:
        """`x` as a finite float64 array, vectors (N, d) or images (N, *S, C), drawing the
        network on first use."""
        arr = np.asarray(x)
        if arr.ndim < 2:
            raise InputError(f"{label} must be a 2-D array (n, d) of vectors or images "
                             f"(n, L, C) / (n, H, W, C), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise InputError(f"{label} must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{label} has non-finite entries")
        if arr.shape[-1] == 0:
            raise InputError(f"{label} must have at least one feature column")
        shape = self.input_shape
        if shape is None:
            self._draw(arr.shape[1:])
        elif len(shape) == 1 and arr.shape[1:] != shape:
            raise InputError(
                f"{label} has shape {arr.shape[1:]} per point; the network was built for "
                f"{shape[0]} features"
            )
        elif arr.ndim - 1 != len(shape) or arr.shape[-1] != shape[-1]:
            # other image sizes are fine where GlobalAvgPool reads out (Flatten: Dense refuses)
            raise InputError(f"{label} has images of shape {arr.shape[1:]}; the network was "
                             f"built for {shape} (rank and channels must agree)")
        return arr

    # -- forward and backward ---------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> Trace:
        """One forward pass: f(X) with the ensemble axis, and what the pullbacks need."""
        x = self.check_inputs(x)
        out, caches = forward_chain(
            self.layers, self.params, np.broadcast_to(x, (self._size, *x.shape))
        )
        return Trace(out[..., 0] if self.outputs == 1 else out, caches)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """f(X): (N,) (several outputs: (N, K)), with a leading ensemble axis E for an ensemble."""
        return self._squeeze(self.forward(x).output)

    __call__ = apply

    def vjp(self, x: np.ndarray, cotangent: np.ndarray) -> Gradients:
        """Gradients of Σᵢ gᵢ·f(xᵢ) for every parameter (g = `cotangent`, shaped like f(X))."""
        return self.gradients(self.forward(x), cotangent)

    def gradients(self, trace: Trace, cotangent: np.ndarray) -> Gradients:
        """`vjp` from a stored `forward` pass."""
        g = np.broadcast_to(np.asarray(cotangent, dtype=np.float64), trace.output.shape)
        signal = g[..., None] if self.outputs == 1 else g
        _, grads = backward_chain(self.layers, self.params, trace.caches, signal, self._first)
        return Gradients(grads, self.layers)

    # -- empirical kernels ------------------------------------------------------------------------
    def empirical_ntk(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Θ̂(X1, X2) = Σ_θ r_θ ∂f(X1)/∂θ ∂f(X2)/∂θᵀ, layer by layer: (n1, n2), or
        (E, n1, n2) for an ensemble. See the module docstring for the formula."""
        if self.outputs != 1:
            raise NTKSymError(f"the empirical NTK is defined here for one output; this network "
                              f"has {self.outputs}")
        t1 = self.forward(x1)
        t2 = t1 if x2 is None else self.forward(x2)
        d1 = np.ones((*t1.output.shape, 1))
        d2 = d1 if x2 is None else np.ones((*t2.output.shape, 1))
        *_, theta = tangent_chain(
            self.layers, self.params, t1.caches, d1, t2.caches, d2, self._first
        )
        return self._squeeze(theta)

    def empirical_nngp(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """K̂(X1, X2) = σ_w² ⟨a, a'⟩/n + σ_b², a the readout's input: (n1, n2)."""
        a1 = self.forward(x1).readout_input
        a2 = a1 if x2 is None else self.forward(x2).readout_input
        readout = self.layers[-1]
        gram = a1 @ a2.transpose(0, 2, 1)
        return self._squeeze(readout.w_std**2 * gram / a1.shape[-1] + readout.b_std**2)


def parameter_count(net: object, width: int, input_dim: int | Sequence[int]) -> int:
    """The number of parameters of one network of `net` for inputs of dimension `input_dim` (or
    per-point shape), one output."""
    layers = finite_layers_of(net)
    shape = (int(input_dim),) if np.ndim(input_dim) == 0 else tuple(input_dim)
    widths = [width] * (len(layers) - 1) + [1]
    rngs = iter(np.random.default_rng(0) for _ in layers)
    # An ensemble of size 0 gives every parameter array's shape without drawing a number.
    params, _ = init_chain(layers, rngs, shape, widths, 0)
    return sum(int(np.prod(p.shape[1:])) for p in leaves(params))


def _generators(seed: Seed, count: int) -> list[np.random.Generator]:
    _check_seed(seed)
    if isinstance(seed, np.random.Generator):
        return seed.spawn(count)
    if isinstance(seed, np.random.SeedSequence):
        return [np.random.default_rng(s) for s in seed.spawn(count)]
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(count)]


def _check_seed(seed: Seed) -> None:
    if isinstance(seed, np.random.Generator | np.random.SeedSequence):
        return
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise NTKSymError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")


def _positive(label: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise NTKSymError(f"{label} must be a positive integer, got {value!r}")
    return int(value)


def init(
    net: object,
    width: int,
    seed: Seed = 0,
    *,
    ensemble: int | None = None,
    input_dim: int | None = None,
    input_shape: Sequence[int] | None = None,
    outputs: int = 1,
) -> FiniteNetwork:
    """A finite-width network (or an ensemble of `ensemble` independent ones) described by `net`.

    `net` is anything `finite_layers_of` accepts: ``serial(...)``, ``mlp(...)`` or a tuple of
    twins, vector or convolutional. `width` units per hidden Dense and channels per Conv, and
    `outputs` outputs. Each layer with parameters draws from its own generator spawned from
    `seed` (an integer, a SeedSequence or a numpy Generator). The parameters are drawn at the
    first input, or now for inputs of dimension `input_dim` (vectors) or per-point shape
    `input_shape` (``(d,)``, ``(L, C)`` or ``(H, W, C)``).
    """
    width, outputs = _positive("width", width), _positive("outputs", outputs)
    if ensemble is not None:
        ensemble = _positive("ensemble", ensemble)
    if input_dim is not None and input_shape is not None:
        raise NTKSymError("give input_dim (vectors) or input_shape, not both")
    if input_dim is not None:
        input_shape = (_positive("input_dim", input_dim),)
    fnet = FiniteNetwork(net, finite_layers_of(net), width, seed, ensemble, outputs)
    if input_shape is not None:
        shape = tuple(input_shape)
        if not shape or not all(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise NTKSymError(f"input_shape must be positive integers, got {input_shape!r}")
        fnet._draw(tuple(int(n) for n in shape))
    return fnet
