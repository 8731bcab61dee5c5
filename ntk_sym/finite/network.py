"""A finite-width MLP in NumPy with the conventions of `ntk_sym.network`, and its empirical kernels.

Layer l = 0..L maps a⁽ˡ⁾ ∈ ℝ^{n_l} (a⁽⁰⁾ = x, n_0 = d; n_1 = … = n_L = width; n_{L+1} = 1) to

    h⁽ˡ⁺¹⁾ = c_W⁽ˡ⁾ W⁽ˡ⁾ a⁽ˡ⁾ + c_b b⁽ˡ⁾,     a⁽ˡ⁺¹⁾ = φ(h⁽ˡ⁺¹⁾),     f(x) = h⁽ᴸ⁺¹⁾,

NTK parameterization: W, b ~ N(0, 1), c_W⁽ˡ⁾ = σ_w/√n_l, c_b = σ_b, every learning rate η.
Standard parameterization: W ~ N(0, σ_w²/n_l), b ~ N(0, σ_b²), c_W = c_b = 1, weight learning rate
η/n_l and bias learning rate η. The forward pass has the same law in both.

Gradients by backpropagation of δ⁽ˡ⁾ = ∂f/∂h⁽ˡ⁾: δ⁽ᴸ⁺¹⁾ = 1, δ⁽ˡ⁾ = φ'(h⁽ˡ⁾) ⊙ c_W⁽ˡ⁾ W⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾,
∂f/∂W⁽ˡ⁾ = c_W⁽ˡ⁾ δ⁽ˡ⁺¹⁾ a⁽ˡ⁾ᵀ, ∂f/∂b⁽ˡ⁾ = c_b δ⁽ˡ⁺¹⁾. The empirical NTK, with each parameter's
learning-rate weight r (1 in the NTK parameterization; 1/n_l for weights in the standard one),

    Θ̂(x, x') = Σ_θ r_θ ∂f(x)/∂θ ∂f(x')/∂θ
             = Σ_l [ r_W c_W⁽ˡ⁾² ⟨δ⁽ˡ⁺¹⁾, δ'⁽ˡ⁺¹⁾⟩ ⟨a⁽ˡ⁾, a'⁽ˡ⁾⟩ + r_b c_b² ⟨δ⁽ˡ⁺¹⁾, δ'⁽ˡ⁺¹⁾⟩ ],

factorises per layer into Gram matrices of backward signals and of activations, so the Jacobian
(one row of length #parameters per input) is never formed. With these weights Θ̂ → Θ (NTK
parameterization) and Θ̂ → Θ_sp (standard) as the width grows. The empirical NNGP is the Gram of
the readout's inputs, K̂(x, x') = σ_w² ⟨a⁽ᴸ⁾, a'⁽ᴸ⁾⟩/n_L + σ_b², the covariance of f over the
readout layer's weights given the hidden layers; it tends to Σ⁽ᴸ⁺¹⁾.

An *ensemble* of E independent networks is stored with a leading axis of length E on every
parameter and every output; a single network (``ensemble=None``) has E = 1 internally and its
outputs are returned without that axis.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, NTKSymError
from ..network import Network
from .functions import activation_functions

Seed = int | np.random.Generator | np.random.SeedSequence


@dataclass(frozen=True)
class LayerScales:
    """Multipliers of one layer: h = c_w W a + c_b b; learning-rate weights r_w, r_b."""

    c_w: float
    c_b: float
    r_w: float
    r_b: float


@dataclass
class Gradients:
    """Per-layer parameter gradients, ensemble axis first: W (E, n_out, n_in), b (E, n_out)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


class FiniteNetwork:
    """A finite-width MLP (or an ensemble of them) described by a `Network`.

    Build one with `init`. The parameters are the lists `weights` (arrays (E, n_{l+1}, n_l)) and
    `biases` ((E, n_{l+1})), l = 0..L; the first layer is drawn when the input dimension is first
    known unless `init` was given `input_dim`.
    """

    def __init__(
        self,
        net: Network,
        width: int,
        rngs: list[np.random.Generator],
        ensemble: int | None,
        input_dim: int | None,
    ) -> None:
        self.net = net
        self.width = width
        self.ensemble = ensemble
        self._size = 1 if ensemble is None else ensemble
        self._rngs = rngs
        self.phi, self.dphi = activation_functions(net.activation)
        self.weights: list[np.ndarray | None] = [None] * (net.depth + 1)
        self.biases: list[np.ndarray | None] = [None] * (net.depth + 1)
        for layer in range(1, net.depth + 1):
            self._draw(layer, width)
        if input_dim is not None:
            self._draw(0, input_dim)

    # -- construction ----------------------------------------------------------------------------
    def _draw(self, layer: int, fan_in: int) -> None:
        fan_out = 1 if layer == self.net.depth else self.width
        rng = self._rngs[layer]
        w = rng.standard_normal((self._size, fan_out, fan_in))
        b = rng.standard_normal((self._size, fan_out))
        if self.net.parameterization == "standard":
            w *= self.net.w_std / np.sqrt(fan_in)
            b *= self.net.b_std
        self.weights[layer], self.biases[layer] = w, b

    def scales(self, layer: int) -> LayerScales:
        """c_w, c_b, r_w, r_b of `layer` (0 = input layer) under the network's parameterization."""
        fan_in = self.weights[layer].shape[-1]
        if self.net.parameterization == "ntk":
            return LayerScales(self.net.w_std / np.sqrt(fan_in), self.net.b_std, 1.0, 1.0)
        return LayerScales(1.0, 1.0, 1.0 / fan_in, 1.0)

    @property
    def input_dim(self) -> int | None:
        """d, or None while the first layer has not been drawn."""
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
            self._draw(0, arr.shape[1])
        elif arr.shape[1] != self.input_dim:
            raise InputError(
                f"{label} has {arr.shape[1]} features; the network was built for {self.input_dim}"
            )
        return arr

    # -- forward and backward ---------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-activations [h⁽¹⁾ … h⁽ᴸ⁺¹⁾] and activations [a⁽⁰⁾ … a⁽ᴸ⁾], each (E, n, width).

        a⁽⁰⁾ is the input broadcast to (E, n, d); h⁽ᴸ⁺¹⁾ has last axis 1.
        """
        x = self.check_inputs(x)
        acts = [np.broadcast_to(x, (self._size, *x.shape))]
        pres = []
        for layer in range(self.net.depth + 1):
            s = self.scales(layer)
            h = s.c_w * (acts[-1] @ self.weights[layer].transpose(0, 2, 1))
            if s.c_b != 0.0:
                h += s.c_b * self.biases[layer][:, None, :]
            pres.append(h)
            if layer < self.net.depth:
                acts.append(self.phi(h))
        return pres, acts

    def apply(self, x: np.ndarray) -> np.ndarray:
        """f(X): shape (n,), or (E, n) for an ensemble."""
        pres, _ = self.forward(x)
        return self._squeeze(pres[-1][..., 0])

    def _backward(self, pres: list[np.ndarray], signal: np.ndarray) -> list[np.ndarray]:
        """[δ⁽¹⁾ … δ⁽ᴸ⁺¹⁾] from δ⁽ᴸ⁺¹⁾ = `signal` (E, n, 1); δ⁽ˡ⁾ = φ'(h⁽ˡ⁾) ⊙ c_W W⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾."""
        deltas = [signal]
        for layer in range(self.net.depth, 0, -1):
            back = self.scales(layer).c_w * (deltas[0] @ self.weights[layer])
            deltas.insert(0, self.dphi(pres[layer - 1]) * back)
        return deltas

    def vjp(self, x: np.ndarray, cotangent: np.ndarray) -> Gradients:
        """Gradients of Σᵢ gᵢ f(xᵢ) for every parameter (g = `cotangent`, (n,) or (E, n)).

        ∂/∂W⁽ˡ⁾ = c_W Σᵢ δᵢ⁽ˡ⁺¹⁾ aᵢ⁽ˡ⁾ᵀ and ∂/∂b⁽ˡ⁾ = c_b Σᵢ δᵢ⁽ˡ⁺¹⁾, with δ⁽ᴸ⁺¹⁾ᵢ = gᵢ.
        """
        return self.gradients(*self.forward(x), cotangent)

    def gradients(
        self,
        pres: list[np.ndarray],
        acts: list[np.ndarray],
        cotangent: np.ndarray,
        out: Gradients | None = None,
    ) -> Gradients:
        """`vjp` from a stored `forward` pass (pre-activations, activations).

        With `out` (gradients of matching shapes) the result is written there: training reuses
        one set of buffers, since allocating weight-sized arrays every step is slow.
        """
        g = np.broadcast_to(np.asarray(cotangent, dtype=np.float64), pres[-1].shape[:-1])
        deltas = self._backward(pres, g[..., None].copy())
        if out is None:
            out = Gradients(
                [np.empty_like(w) for w in self.weights], [np.empty_like(b) for b in self.biases]
            )
        for layer in range(self.net.depth + 1):
            s = self.scales(layer)
            for member in range(self._size):
                # One 2-D product per member: NumPy's stacked matmul with a transposed operand
                # misses the BLAS fast path for these outer products (measured 4-15x slower).
                np.matmul(
                    deltas[layer][member].T, acts[layer][member], out=out.weights[layer][member]
                )
            out.weights[layer] *= s.c_w
            np.sum(deltas[layer], axis=1, out=out.biases[layer])
            out.biases[layer] *= s.c_b
        return out

    # -- empirical kernels ------------------------------------------------------------------------
    def empirical_ntk(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """Θ̂(X1, X2) = Σ_θ r_θ ∂f(X1)/∂θ ∂f(X2)/∂θᵀ by per-layer Gram factorisation: (n1, n2).

        Shape (E, n1, n2) for an ensemble. See the module docstring for the formula.
        """
        sides = []
        for x in (x1,) if x2 is None else (x1, x2):
            pres, acts = self.forward(x)
            deltas = self._backward(pres, np.ones_like(pres[-1]))
            sides.append((deltas, acts))
        deltas1, acts1 = sides[0]
        deltas2, acts2 = sides[-1]
        theta = 0.0
        for layer in range(self.net.depth + 1):
            s = self.scales(layer)
            gram_delta = deltas1[layer] @ deltas2[layer].transpose(0, 2, 1)
            gram_act = acts1[layer] @ acts2[layer].transpose(0, 2, 1)
            theta = theta + gram_delta * (s.r_w * s.c_w**2 * gram_act + s.r_b * s.c_b**2)
        return self._squeeze(theta)

    def empirical_nngp(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """K̂(X1, X2) = σ_w² ⟨a⁽ᴸ⁾, a'⁽ᴸ⁾⟩/n_L + σ_b²: the readout-features Gram, (n1, n2)."""
        a1 = self.forward(x1)[1][-1]
        a2 = a1 if x2 is None else self.forward(x2)[1][-1]
        gram = a1 @ a2.transpose(0, 2, 1)
        return self._squeeze(self.net.w_std**2 * gram / a1.shape[-1] + self.net.b_std**2)


def _generators(seed: Seed, count: int) -> list[np.random.Generator]:
    if isinstance(seed, np.random.Generator):
        return seed.spawn(count)
    if isinstance(seed, np.random.SeedSequence):
        return [np.random.default_rng(s) for s in seed.spawn(count)]
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise NTKSymError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(count)]


def init(
    net: Network,
    width: int,
    seed: Seed = 0,
    *,
    ensemble: int | None = None,
    input_dim: int | None = None,
) -> FiniteNetwork:
    """A finite-width network (or an ensemble of `ensemble` independent ones) described by `net`.

    Each layer draws from its own generator spawned from `seed` (an integer, a SeedSequence or a
    numpy Generator), so the first layer, drawn when the input dimension is first seen (or now,
    with `input_dim`), does not depend on the order of calls.
    """
    if not isinstance(net, Network):
        raise NTKSymError(f"net must be an ntk_sym Network, got {type(net).__name__}")
    for label, value in (("width", width), ("ensemble", ensemble), ("input_dim", input_dim)):
        if value is None and label != "width":
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise NTKSymError(f"{label} must be a positive integer, got {value!r}")
    return FiniteNetwork(net, int(width), _generators(seed, net.depth + 1), ensemble, input_dim)
