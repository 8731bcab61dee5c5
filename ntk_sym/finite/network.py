"""A finite-width network in NumPy built from a tuple of layer twins, and its empirical kernels.

The network is ``net.finite_layers()`` (`ntk_sym.finite.layers`): every hidden Dense has output
width n = `width`, the readout (the last layer, a Dense) has output width 1, and f(x) is the
readout's output. For ``mlp(φ, L, σ_w, σ_b)`` this is

    h⁽ˡ⁺¹⁾ = c_W⁽ˡ⁾ W⁽ˡ⁾ a⁽ˡ⁾ + c_b b⁽ˡ⁾,     a⁽ˡ⁺¹⁾ = φ(h⁽ˡ⁺¹⁾),     f(x) = h⁽ᴸ⁺¹⁾,

with a⁽⁰⁾ = x. The forward pass has the same law in both parameterizations.

Gradients by backpropagation: δ = ∂f/∂(layer output) is pulled back through each twin from
δ = 1 at the readout (a Residual adds the skip's δ to the block's). For the Dense layer k with
input a_k and output signal δ_k, ∂f/∂W_k = c_W δ_k a_kᵀ and ∂f/∂b_k = c_b δ_k. No weight is
shared between layers, so the empirical NTK with each parameter's learning-rate weight r
(1 in the NTK parameterization; 1/fan_in for weights in the standard one) factorises per Dense:

    Θ̂(x, x') = Σ_θ r_θ ∂f(x)/∂θ ∂f(x')/∂θ
             = Σ_k [ r_W c_W,k² ⟨δ_k, δ'_k⟩ ⟨a_k, a'_k⟩ + r_b c_b,k² ⟨δ_k, δ'_k⟩ ],

Gram matrices of backward signals and of Dense inputs, so the Jacobian (one row of length
#parameters per input) is never formed. With these weights Θ̂ → Θ (NTK parameterization) and
Θ̂ → Θ_sp (standard) as the width grows. The empirical NNGP is the covariance of f over the
readout's weights given the rest of the network, K̂(x, x') = σ_w² ⟨a, a'⟩/n + σ_b² with a the
readout's input; it tends to the NNGP.

An *ensemble* of E independent networks is stored with a leading axis of length E on every
parameter and every output; a single network (``ensemble=None``) has E = 1 internally and its
outputs are returned without that axis.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, NTKSymError
from ..symbolic.conv_maps import is_convolutional
from .conv import FiniteCNN, init_cnn
from .layers import (
    FINITE_LAYER_KINDS,
    FiniteDense,
    FiniteLayer,
    FiniteResidual,
    LayerScales,
)

Seed = int | np.random.Generator | np.random.SeedSequence


@dataclass
class Gradients:
    """Per-Dense parameter gradients, ensemble axis first: W (E, n_out, n_in), b (E, n_out)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


@dataclass(frozen=True)
class _Step:
    """One twin in the network, with its Dense index (into weights/biases) or its inner steps."""

    layer: FiniteLayer
    dense: int | None = None
    block: tuple[_Step, ...] = ()


@dataclass
class Trace:
    """What one forward pass keeps for backpropagation.

    outputs, inputs: each Dense layer's output h and input a, (E, n, width) (in Dense order;
    the readout's output has last axis 1). Unpacks as ``pres, acts = fnet.forward(x)``: for an
    MLP these are the pre-activations h⁽¹⁾ … h⁽ᴸ⁺¹⁾ and the activations a⁽⁰⁾ … a⁽ᴸ⁾.
    """

    outputs: list[np.ndarray]
    inputs: list[np.ndarray]
    saved: list = field(repr=False)

    @property
    def output(self) -> np.ndarray:
        """f(X), (E, n)."""
        return self.outputs[-1][..., 0]

    def __iter__(self):
        return iter((self.outputs, self.inputs))


def finite_layers_of(net: object) -> tuple[FiniteLayer, ...]:
    """The tuple of twins describing `net`: ``net.finite_layers()`` of a network
    (``ntk_sym.serial(...)``, ``ntk_sym.mlp(...)``), or `net` itself as a tuple/list of twins."""
    if hasattr(net, "finite_layers"):
        layers = net.finite_layers()
    elif isinstance(net, tuple | list):
        layers = net
    else:
        raise NTKSymError(
            f"net must be an ntk_sym Network (serial or mlp, with finite_layers()) or a tuple of "
            f"finite layers, got {type(net).__name__}"
        )
    return check_layers(tuple(layers))


def check_layers(layers: tuple, where: str = "the network") -> tuple[FiniteLayer, ...]:
    """`layers` if every entry is a twin and the last one is the Dense readout."""
    if not layers:
        raise NTKSymError(f"{where} has no layers: an empty layer list cannot be evaluated")
    _check_kinds(layers, where)
    if not isinstance(layers[-1], FiniteDense):
        raise NTKSymError(
            f"{where} must end with a Dense readout (one output), but its last layer is "
            f"{type(layers[-1]).__name__}"
        )
    return layers


def _check_kinds(layers: tuple, where: str) -> None:
    for position, layer in enumerate(layers):
        if not isinstance(layer, FINITE_LAYER_KINDS):
            raise NTKSymError(
                f"layer {position} of {where} is {type(layer).__name__}, not a finite layer twin"
            )
        if isinstance(layer, FiniteResidual):
            if not layer.block:
                raise NTKSymError(f"layer {position} of {where}: Residual with an empty block")
            _check_kinds(layer.block, f"the Residual at layer {position}")


def _plan(layers: Sequence[FiniteLayer], dense: list[FiniteDense]) -> tuple[_Step, ...]:
    steps = []
    for layer in layers:
        if isinstance(layer, FiniteDense):
            steps.append(_Step(layer, dense=len(dense)))
            dense.append(layer)
        elif isinstance(layer, FiniteResidual):
            steps.append(_Step(layer, block=_plan(layer.block, dense)))
        else:
            steps.append(_Step(layer))
    return tuple(steps)


def _contains_dense(step: _Step) -> bool:
    return step.dense is not None or any(_contains_dense(s) for s in step.block)


class FiniteNetwork:
    """A finite-width network (or an ensemble of them) built from a tuple of twins.

    Build one with `init`. The parameters are the lists `weights` (arrays (E, n_out, n_in)) and
    `biases` ((E, n_out)), one entry per Dense layer in forward order; the first Dense is drawn
    when the input dimension is first known unless `init` was given `input_dim`.
    """

    def __init__(
        self,
        net: object,
        layers: tuple[FiniteLayer, ...],
        width: int,
        seed: Seed,
        ensemble: int | None,
    ) -> None:
        self.net = net
        self.layers = layers
        self.width = width
        self.ensemble = ensemble
        self._size = 1 if ensemble is None else ensemble
        self.dense: list[FiniteDense] = []
        self._steps = _plan(layers, self.dense)
        self._rngs = _generators(seed, len(self.dense))
        # Backpropagation stops at the first top-level step holding a Dense: nothing before it
        # has parameters.
        self._first = next(i for i, s in enumerate(self._steps) if _contains_dense(s))
        count = len(self.dense)
        self.weights: list[np.ndarray | None] = [None] * count
        self.biases: list[np.ndarray | None] = [None] * count
        for k in range(1, count):
            self._draw(k, width)

    # -- construction ----------------------------------------------------------------------------
    def _draw(self, k: int, fan_in: int) -> None:
        fan_out = 1 if k == len(self.dense) - 1 else self.width
        self.weights[k], self.biases[k] = self.dense[k].draw(
            self._rngs[k], self._size, fan_in, fan_out
        )

    def scales(self, k: int) -> LayerScales:
        """c_w, c_b, r_w, r_b of Dense layer `k` (0 = the first) under its parameterization."""
        return self.dense[k].scales(self.weights[k].shape[-1])

    @property
    def input_dim(self) -> int | None:
        """d, or None while the first Dense has not been drawn."""
        return None if self.weights[0] is None else self.weights[0].shape[-1]

    def _with_parameters(self, select: slice, ensemble: int | None) -> FiniteNetwork:
        other = object.__new__(FiniteNetwork)
        other.__dict__.update(self.__dict__)
        # Private generator copies: a pending first layer is then drawn identically by both.
        other._rngs = copy.deepcopy(self._rngs)
        other.ensemble, other._size = ensemble, 1 if ensemble is None else ensemble
        other.weights = [None if w is None else w[select].copy() for w in self.weights]
        other.biases = [None if b is None else b[select].copy() for b in self.biases]
        return other

    def copy(self) -> FiniteNetwork:
        """An independent copy of the parameters (the pending first-layer generator is shared)."""
        return self._with_parameters(slice(None), self.ensemble)

    def member(self, index: int) -> FiniteNetwork:
        """Ensemble member `index` as a single network (a copy)."""
        if self.ensemble is None or not 0 <= index < self.ensemble:
            raise NTKSymError(f"member index {index} out of range for ensemble={self.ensemble}")
        if self.input_dim is None:
            raise NTKSymError(
                "the first layer is not drawn yet: apply the ensemble once or pass input_dim"
            )
        return self._with_parameters(slice(index, index + 1), None)

    def _squeeze(self, out: np.ndarray) -> np.ndarray:
        return out[0] if self.ensemble is None else out

    # -- inputs -----------------------------------------------------------------------------------
    def check_inputs(self, x: np.ndarray, label: str = "X") -> np.ndarray:
        """`x` as a finite float64 array (n, d), drawing the first layer on first use."""
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise InputError(f"{label} must be a 2-D array (n, d), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise InputError(f"{label} must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{label} has non-finite entries")
        if arr.shape[1] == 0:
            raise InputError(f"{label} must have at least one feature column")
        if self.input_dim is None:
            self._check_widths(arr.shape[1])
            self._draw(0, arr.shape[1])
        elif arr.shape[1] != self.input_dim:
            raise InputError(
                f"{label} has {arr.shape[1]} features; the network was built for {self.input_dim}"
            )
        return arr

    def _check_widths(self, input_dim: int) -> None:
        """Every Residual block must return the width it was given."""

        def walk(steps: tuple[_Step, ...], width: int, where: str) -> int:
            for position, step in enumerate(steps):
                if step.dense is not None:
                    width = 1 if step.dense == len(self.dense) - 1 else self.width
                elif step.block:
                    inner = walk(step.block, width, f"the Residual at layer {position}")
                    if inner != width:
                        raise InputError(
                            f"layer {position} of {where}: the Residual's block maps width "
                            f"{width} to {inner}, so out = block(x) + x does not fit (inputs "
                            f"with d = {input_dim} features, network width {self.width})"
                        )
            return width

        walk(self._steps, input_dim, "the network")

    # -- forward and backward ---------------------------------------------------------------------
    def _run(self, steps: tuple[_Step, ...], a: np.ndarray, trace: Trace, saved: list):
        for step in steps:
            if step.dense is not None:
                k = step.dense
                trace.inputs[k] = a
                a = step.layer.forward(self.weights[k], self.biases[k], a, self.scales(k))
                trace.outputs[k] = a
                saved.append(None)
            elif step.block:
                inner: list = []
                a = self._run(step.block, a, trace, inner) + a
                saved.append(inner)
            else:
                a, keep = step.layer.forward(a)
                saved.append(keep)
        return a

    def forward(self, x: np.ndarray) -> Trace:
        """One forward pass: each Dense's output and input, and what the pullbacks need.

        The input is broadcast to (E, n, d). Unpack as ``pres, acts = fnet.forward(x)``.
        """
        x = self.check_inputs(x)
        count = len(self.dense)
        trace = Trace([None] * count, [None] * count, [])
        self._run(self._steps, np.broadcast_to(x, (self._size, *x.shape)), trace, trace.saved)
        return trace

    def apply(self, x: np.ndarray) -> np.ndarray:
        """f(X): shape (n,), or (E, n) for an ensemble."""
        return self._squeeze(self.forward(x).output)

    def _pull(
        self,
        steps: tuple[_Step, ...],
        saved: list,
        delta: np.ndarray,
        deltas: list,
        stop: int = 0,
        keep_input: bool = True,
    ) -> np.ndarray:
        """Pull `delta` back through steps[stop:] in reverse, recording each Dense's δ.

        Without `keep_input` the signal is not pulled through steps[stop] when it is a Dense:
        nothing before it has parameters.
        """
        for position in range(len(steps) - 1, stop - 1, -1):
            step = steps[position]
            if step.dense is not None:
                k = step.dense
                deltas[k] = delta
                if keep_input or position > stop:
                    delta = step.layer.backward(self.weights[k], delta, self.scales(k))
            elif step.block:
                delta = self._pull(step.block, saved[position], delta, deltas) + delta
            else:
                delta = step.layer.backward(saved[position], delta)
        return delta

    def _backward(self, trace: Trace, signal: np.ndarray) -> list[np.ndarray]:
        """δ_k = ∂(Σᵢ gᵢ fᵢ)/∂h_k for every Dense k, from δ = `signal` (E, n, 1) at the readout."""
        deltas: list = [None] * len(self.dense)
        self._pull(self._steps, trace.saved, signal, deltas, self._first, keep_input=False)
        return deltas

    def vjp(self, x: np.ndarray, cotangent: np.ndarray) -> Gradients:
        """Gradients of Σᵢ gᵢ f(xᵢ) for every parameter (g = `cotangent`, (n,) or (E, n)).

        ∂/∂W_k = c_W Σᵢ δ_k,ᵢ a_k,ᵢᵀ and ∂/∂b_k = c_b Σᵢ δ_k,ᵢ, with δ = gᵢ at the readout.
        """
        return self.gradients(self.forward(x), cotangent)

    def gradients(
        self, trace: Trace, cotangent: np.ndarray, out: Gradients | None = None
    ) -> Gradients:
        """`vjp` from a stored `forward` pass.

        With `out` (gradients of matching shapes) the result is written there: training reuses
        one set of buffers, since allocating weight-sized arrays every step is slow.
        """
        g = np.broadcast_to(np.asarray(cotangent, dtype=np.float64), trace.output.shape)
        deltas = self._backward(trace, g[..., None].copy())
        if out is None:
            out = Gradients(
                [np.empty_like(w) for w in self.weights], [np.empty_like(b) for b in self.biases]
            )
        for k in range(len(self.dense)):
            s = self.scales(k)
            for member in range(self._size):
                # One 2-D product per member: NumPy's stacked matmul with a transposed operand
                # misses the BLAS fast path for these outer products (measured 4-15x slower).
                np.matmul(deltas[k][member].T, trace.inputs[k][member], out=out.weights[k][member])
            out.weights[k] *= s.c_w
            np.sum(deltas[k], axis=1, out=out.biases[k])
            out.biases[k] *= s.c_b
        return out

    # -- empirical kernels ------------------------------------------------------------------------
    def empirical_ntk(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Θ̂(X1, X2) = Σ_θ r_θ ∂f(X1)/∂θ ∂f(X2)/∂θᵀ by per-Dense Gram factorisation: (n1, n2).

        Shape (E, n1, n2) for an ensemble. See the module docstring for the formula.
        """
        sides = []
        for x in (x1,) if x2 is None else (x1, x2):
            trace = self.forward(x)
            sides.append((self._backward(trace, np.ones_like(trace.outputs[-1])), trace.inputs))
        (deltas1, acts1), (deltas2, acts2) = sides[0], sides[-1]
        theta = 0.0
        for k in range(len(self.dense)):
            s = self.scales(k)
            gram_delta = deltas1[k] @ deltas2[k].transpose(0, 2, 1)
            gram_act = acts1[k] @ acts2[k].transpose(0, 2, 1)
            theta = theta + gram_delta * (s.r_w * s.c_w**2 * gram_act + s.r_b * s.c_b**2)
        return self._squeeze(theta)

    def empirical_nngp(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """K̂(X1, X2) = σ_w² ⟨a, a'⟩/n + σ_b², a the readout's input: (n1, n2)."""
        a1 = self.forward(x1).inputs[-1]
        a2 = a1 if x2 is None else self.forward(x2).inputs[-1]
        readout = self.dense[-1]
        gram = a1 @ a2.transpose(0, 2, 1)
        return self._squeeze(readout.w_std**2 * gram / a1.shape[-1] + readout.b_std**2)


def _init_cnn(maps, width: int, seed: Seed, ensemble, input_dim, input_shape) -> FiniteCNN:
    if ensemble is not None:
        raise NTKSymError("ensemble= is not available for convolutional networks; draw "
                          "independent networks with different seeds")
    if input_dim is not None:
        raise NTKSymError("a convolutional network takes images: give input_shape=(H, W, C) "
                          "or (L, C) instead of input_dim=")
    _check_seed(seed)
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0
                   for n in input_shape):
            raise NTKSymError(f"input_shape must be positive integers, got {input_shape!r}")
    return init_cnn(maps, width, seed, input_shape=input_shape)


def parameter_count(net: object, width: int, input_dim: int) -> int:
    """Σ_k (fan_in + 1) fan_out over the Dense layers of one network of `net` (d = `input_dim`)."""
    dense: list[FiniteDense] = []
    _plan(finite_layers_of(net), dense)
    fan_in = [input_dim] + [width] * (len(dense) - 1)
    fan_out = [width] * (len(dense) - 1) + [1]
    return sum((a + 1) * b for a, b in zip(fan_in, fan_out, strict=True))


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


def init(
    net: object,
    width: int,
    seed: Seed = 0,
    *,
    ensemble: int | None = None,
    input_dim: int | None = None,
    input_shape: Sequence[int] | None = None,
) -> FiniteNetwork | FiniteCNN:
    """A finite-width network (or an ensemble of `ensemble` independent ones) described by `net`.

    `net` is anything `finite_layers_of` accepts: ``serial(...)``, ``mlp(...)`` or a tuple of
    twins. Each Dense layer draws from its own generator spawned from `seed` (an integer, a
    SeedSequence or a numpy Generator), so the first one, drawn when the input dimension is first
    seen (or now, with `input_dim`), does not depend on the order of calls.

    A convolutional ``serial(...)`` (Conv, AvgPool, GlobalAvgPool, Flatten) gives its finite CNN
    (`ntk_sym.finite.conv.FiniteCNN`, one output; ``ntk_sym.layers.conv.finite_cnn`` for more):
    `width` channels per hidden Conv, units per hidden Dense, the weights drawn as `init_for`
    draws them from `seed`, for images of `input_shape` ``(*S, C)`` now, or at the first input.
    Its `apply`, `empirical_ntk` and `empirical_nngp` mean what they mean here.
    """
    for label, value in (("width", width), ("ensemble", ensemble), ("input_dim", input_dim)):
        if value is None and label != "width":
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise NTKSymError(f"{label} must be a positive integer, got {value!r}")
    if is_convolutional(getattr(net, "layers", ())):
        return _init_cnn(net.layers, int(width), seed, ensemble, input_dim, input_shape)
    if input_shape is not None:
        raise NTKSymError("input_shape= is for convolutional networks (images); give an MLP's "
                          "input dimension as input_dim=")
    layers = finite_layers_of(net)
    fnet = FiniteNetwork(net, layers, int(width), seed, ensemble)
    if input_dim is not None:
        fnet._check_widths(int(input_dim))
        fnet._draw(0, int(input_dim))
    return fnet
