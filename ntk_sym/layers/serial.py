"""`serial(*layers)`: a network as a composition of layers, and the object users hold.

The network's input kernel is Σ = x·x'/d with Θ = 0; each layer maps (Σ, Θ) by its own map
(`ntk_sym.symbolic.maps`), and f's NNGP and NTK are Σ and Θ after the last layer.

Which layer lists are networks: at least one layer; the last layer is a Dense, the readout
(f = Dense(…), one output in the finite network; its NNGP is the covariance of f over the
readout's weights); a Residual's block must return the width it was given, so a block that
contains a Dense cannot come before the network's first Dense (it would add an n-wide output to
the d-wide input), and its output must be uncorrelated with the skip in the limit, so that the
kernels add (`ntk_sym.symbolic.maps.check_residual_blocks`). Anything else is refused with an
error naming the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..dynamics import predict, predict_gd
from ..errors import NTKSymError
from ..kernels import kernels
from ..numeric.finite_width import FiniteWidth
from ..numeric.finite_width import finite_width as _finite_width
from ..sphere import spectrum as sphere_spectrum
from ..symbolic import recursion
from ..symbolic.activations import Activation as Phi
from ..symbolic.maps import (
    ActivationMap,
    DenseMap,
    KernelMap,
    ResidualMap,
    check_residual_blocks,
)
from .core import Activation, Dense


def serial(*layers: KernelMap) -> Serial:
    """The network made of `layers` in order (see the module docstring for valid lists)."""
    return Serial(tuple(layers))


@dataclass(frozen=True)
class Serial:
    """A network as a tuple of layers; its kernels, recursion and predictions.

    Built by `serial` or `ntk_sym.mlp`. Equal layer tuples are equal networks (and share the
    compiled program).
    """

    layers: tuple[KernelMap, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        check_layers(self.layers)

    # -- kernels ------------------------------------------------------------------------------
    def kernels(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: object
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(NNGP, NTK) Gram matrices (n1, n2) in one pass; see `ntk_sym.kernels.kernels` for the
        backends ("numpy", "mpmath", "cupy", "dask") and options (dps, degree, tol, dtype, tile,
        threads, out, progress, chunks, report); ``error_bound=True`` returns (NNGP, NTK,
        ErrorBound) (`ntk_sym.numeric.bound`)."""
        return kernels(self.layers, X1, X2, backend, label=repr(self), **options)

    def nngp(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: object
    ) -> np.ndarray:
        """NNGP Gram matrix Σ(X1, X2), shape (n1, n2); X2 defaults to X1. Only the NNGP is
        computed and stored; ``out`` may be one array to fill."""
        return self._one(0, X1, X2, backend, options)

    def ntk(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: object
    ) -> np.ndarray:
        """NTK Gram matrix Θ(X1, X2), shape (n1, n2); X2 defaults to X1. Only the NTK is
        stored; ``out`` may be one array to fill."""
        return self._one(1, X1, X2, backend, options)

    def _one(self, which: int, X1, X2, backend: str, options: dict) -> np.ndarray:
        out = options.pop("out", None)
        if out is not None and not isinstance(out, tuple | list):
            out = (out, None) if which == 0 else (None, out)
        want = (which == 0, which == 1)
        return kernels(
            self.layers, X1, X2, backend, label=repr(self), out=out, want=want, **options
        )[which]

    # -- symbolic -----------------------------------------------------------------------------
    def recursion(self, symbolic: bool = True) -> list[sp.Eq]:
        """The whole chain of layer maps as SymPy equations, input first: Σ⁽⁰⁾ = x·x'/d,
        Θ⁽⁰⁾ = 0, then Σ⁽ˡ⁾, Θ⁽ˡ⁾ for every layer (`ntk_sym.symbolic.recursion.chain`);
        ``symbolic=True`` writes σ_w, σ_b as symbols."""
        return [eq for eq, _ in recursion.chain(self.layers, symbolic)]

    def latex(self, symbolic: bool = True) -> str:
        """The chain as a LaTeX ``aligned`` block, each layer tagged with its name."""
        return recursion.latex(self.layers, symbolic)

    def unrolled(self, symbolic: bool = False, simplify: bool = False) -> tuple[sp.Expr, sp.Expr]:
        """(NNGP, NTK) in closed form in x·x', ‖x‖², ‖x'‖², d (small depths; closed forms)."""
        return recursion.unrolled(self.layers, symbolic, simplify)

    def spectrum(self, dim: int, k_max: int, kernel: str = "ntk", **options: object):
        """Funk–Hecke eigenvalues μ_0 … μ_{k_max} of the kernel on S^{dim−1}, inputs of norm √dim
        (``ntk_sym.sphere.spectrum``; ``exact`` and ``dps`` are passed on).
        """
        return sphere_spectrum(self, dim, k_max, kernel, **options)

    # -- dynamics -----------------------------------------------------------------------------
    def predict(self, X_train: object, y_train: object, X_test: object, **options: object):
        """Gradient-flow predictions of the infinite-width network: mean, covariance and training
        loss at `times` (``ntk_sym.dynamics.predict``; loss ½‖f(X) − y‖² unless ``loss="mean"``).

        ``times`` (default 0, 1, 10, ∞), ``lr``, ``diag_reg``, ``loss`` and ``kernel`` ("ntk" for
        training all layers, "nngp" for the readout alone / the Bayesian posterior) are passed on.
        """
        return predict(self, X_train, y_train, X_test, **options)

    def predict_gd(self, X_train: object, y_train: object, X_test: object, **options: object):
        """The same after discrete gradient-descent ``steps`` (``ntk_sym.dynamics.predict_gd``)."""
        return predict_gd(self, X_train, y_train, X_test, **options)

    def finite_width(self, X: object, width: object) -> FiniteWidth:
        """The O(1/n) mean shift and variance over initialisations of the empirical NNGP and NTK
        of ``finite.init(self, width)`` networks at each point of X (`width`: an int ≥ 2 or one
        per hidden layer); see `ntk_sym.numeric.finite_width` and, for the derivation and the
        exact coefficients, `ntk_sym.symbolic.finite_width`."""
        return _finite_width(self, X, width)

    # -- the finite network ----------------------------------------------------------------------
    def finite_layers(self) -> tuple:
        """The finite-width twins of the layers (`ntk_sym.finite.layers`), for
        ``ntk_sym.finite.init(net, width)``."""
        return tuple(layer.finite() for layer in self.layers)

    # -- the MLP view -------------------------------------------------------------------------
    @property
    def mlp_form(self) -> tuple[Phi, int, float, float, str] | None:
        """(φ, depth, σ_w, σ_b, parameterization) if the network is ``mlp(φ, depth, σ_w, σ_b,
        parameterization)``: Dense, φ, Dense, …, Dense with equal layers; else None."""
        first = self.layers[0]
        if not isinstance(first, DenseMap) or len(self.layers) % 2 == 0:
            return None
        acts = self.layers[1::2]
        if any(m != first for m in self.layers[::2]) or not all(
            isinstance(a, ActivationMap) and a == acts[0] for a in acts
        ):
            return None
        phi = acts[0].phi if acts else None
        return phi, len(acts), first.w_std, first.b_std, first.parameterization

    def _mlp(self, index: int, what: str):
        form = self.mlp_form
        if form is None:
            raise NTKSymError(
                f"{what} is defined for uniform MLPs (ntk_sym.mlp); this network is {self!r}"
            )
        if form[0] is None and index == 0:
            raise NTKSymError("a network without activations (depth 0) has no activation")
        return form[index]

    @property
    def activation(self) -> Phi:
        """The activation of a uniform MLP."""
        return self._mlp(0, "activation")

    @property
    def depth(self) -> int:
        """The number of activations of a uniform MLP."""
        return self._mlp(1, "depth")

    @property
    def w_std(self) -> float:
        return self._mlp(2, "w_std")

    @property
    def b_std(self) -> float:
        return self._mlp(3, "b_std")

    @property
    def parameterization(self) -> str:
        return self._mlp(4, "parameterization")

    def __repr__(self) -> str:
        return f"serial({', '.join(map(repr, self.layers))})"


def check_layers(layers: Sequence[KernelMap]) -> None:
    """Raise an `NTKSymError` naming the layer if `layers` is not a network (module docstring)."""
    if not layers:
        raise NTKSymError(
            "serial() needs at least one layer, e.g. serial(Dense(), Relu(), Dense())"
        )
    for i, layer in enumerate(layers, 1):
        if not isinstance(layer, KernelMap):
            raise NTKSymError(f"layer {i} is {layer!r}, not a layer of ntk_sym.layers")
    if not isinstance(layers[-1], DenseMap):
        raise NTKSymError(
            f"layer {len(layers)} ({layers[-1]!r}) is the last layer, but a network ends in a "
            "Dense readout (the output f); add Dense() at the end"
        )
    _check_widths(layers, at_input=True, prefix="")
    check_residual_blocks(tuple(layers))


def _check_widths(layers: Sequence[KernelMap], at_input: bool, prefix: str) -> bool:
    """Walk the layers tracking whether the width is still the input's d; returns that."""
    for i, layer in enumerate(layers, 1):
        if isinstance(layer, ResidualMap):
            inner_at_input = _check_widths(layer.block, at_input, f"{prefix}{i}.")
            if at_input and not inner_at_input:
                raise NTKSymError(
                    f"layer {prefix}{i} (Residual) adds its block's output, of the hidden width "
                    "after the Dense inside it, to the network's d-dimensional input: the widths "
                    "do not fit; put a Dense before the Residual"
                )
        elif isinstance(layer, DenseMap):
            at_input = False
    return at_input


def mlp(
    activation: str | sp.Expr | Phi = "relu",
    depth: int = 1,
    w_std: float = 1.0,
    b_std: float = 0.0,
    parameterization: str = "ntk",
    **activation_params: float,
) -> Serial:
    """``serial(Dense, φ, Dense, φ, …, Dense)`` with `depth` activations φ and equal Dense layers
    (σ_w, σ_b, parameterization). `activation` is a catalogue name (parameters as keywords, e.g.
    ``alpha=0.2``), a SymPy expression in one symbol, or an `ntk_sym.symbolic.activations` entry.
    """
    if isinstance(depth, bool) or int(depth) != depth or depth < 0:
        raise NTKSymError(f"depth must be a non-negative integer, got {depth!r}")
    dense = Dense(w_std, b_std, parameterization)
    phi = Activation(activation, **activation_params)
    return Serial((dense,) + (phi, dense) * int(depth))
