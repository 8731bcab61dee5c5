"""`serial(*layers)`: a network as a composition of layers, and the object users hold.

The network's input kernel is Σ = x·x'/d with Θ = 0; each layer maps (Σ, Θ) by its own map
(`ntk_sym.symbolic.maps`), and f's NNGP and NTK are Σ and Θ after the last layer.

Which layer lists are networks: at least one layer; the last layer is a Dense, the readout
(f = Dense(…), one output in the finite network; its NNGP is the covariance of f over the
readout's weights); a Residual's block must return the width it was given, so a block that
contains a Dense cannot come before the network's first Dense (it would add an n-wide output to
the d-wide input), and its output must be uncorrelated with the skip in the limit, so that the
kernels add (`ntk_sym.symbolic.maps.check_residual_blocks`); a convolutional network has no
Residual (the image kernels have no residual step); every layer is hashable (it is a cache key),
and a layer compiled from its map (`ntk_sym.layers.Layer`) has a valid one
(`ntk_sym.symbolic.traced`). Anything else is refused with an error naming the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import sympy as sp

from ..dynamics import predict, predict_gd
from ..errors import NTKSymError
from ..kernels import Kernels, KernelsWithBound, kernels
from ..numeric.finite_width import FiniteWidth
from ..numeric.finite_width import finite_width as _finite_width
from ..sphere import spectrum as sphere_spectrum
from ..symbolic import recursion
from ..symbolic.activations import Activation as Phi
from ..symbolic.conv_maps import is_convolutional
from ..symbolic.maps import (
    DenseMap,
    Layer,
    ResidualMap,
    check_residual_blocks,
)
from ..symbolic.traced import traced
from .core import Activation, Dense


def serial(*layers: Layer) -> Serial:
    """The network made of `layers` in order (see the module docstring for valid lists)."""
    return Serial(tuple(layers))


@dataclass(frozen=True)
class Serial:
    """A network as a tuple of layers; its kernels, recursion and predictions.

    Built by `serial` or `ntk_sym.mlp`. Equal layer tuples are equal networks (and share the
    compiled program). Whether it is a uniform MLP, and with which φ, depth and σ's, is
    ``ntk_sym.mlp_spec(net)`` (`ntk_sym.symbolic.mlp`).
    """

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        check_layers(self.layers)

    # -- kernels ------------------------------------------------------------------------------
    @overload
    def kernels(
        self,
        X1: object,
        X2: object | None = ...,
        backend: str = ...,
        *,
        error_bound: Literal[True],
        **options: object,
    ) -> KernelsWithBound: ...

    @overload
    def kernels(
        self,
        X1: object,
        X2: object | None = ...,
        backend: str = ...,
        *,
        error_bound: Literal[False] = ...,
        **options: object,
    ) -> Kernels: ...

    def kernels(
        self,
        X1: object,
        X2: object | None = None,
        backend: str = "numpy",
        *,
        error_bound: bool = False,
        **options: object,
    ) -> Kernels | KernelsWithBound:
        """(NNGP, NTK) Gram matrices (n1, n2) in one pass; see `ntk_sym.kernels.kernels` for the
        backends ("numpy", "mpmath", "cupy", "dask") and options (dps, degree, tol, dtype, tile,
        threads, out, progress, chunks, report); ``error_bound=True`` returns three values,
        (NNGP, NTK, ErrorBound) (`ntk_sym.numeric.bound`)."""
        return kernels(
            self.layers, X1, X2, backend, label=repr(self), error_bound=error_bound, **options
        )

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

    def __repr__(self) -> str:
        return f"serial({', '.join(map(repr, self.layers))})"


def check_layers(layers: Sequence[Layer]) -> None:
    """Raise an `NTKSymError` naming the layer if `layers` is not a network (module docstring)."""
    if not layers:
        raise NTKSymError(
            "serial() needs at least one layer, e.g. serial(Dense(), Relu(), Dense())"
        )
    for i, layer in enumerate(layers, 1):
        if not isinstance(layer, Layer):
            raise NTKSymError(f"layer {i} is {layer!r}, not a layer of ntk_sym.layers")
        _check_layer(layer, str(i))
    if not isinstance(layers[-1], DenseMap):
        raise NTKSymError(
            f"layer {len(layers)} ({layers[-1]!r}) is the last layer, but a network ends in a "
            "Dense readout (the output f); add Dense() at the end"
        )
    if is_convolutional(layers):
        for i, layer in enumerate(layers, 1):
            if isinstance(layer, ResidualMap):
                raise NTKSymError(
                    f"layer {i} (Residual): residual blocks are not supported in convolutional "
                    "networks (the image kernels have no residual step); use them in networks "
                    "of vectors"
                )
    _check_widths(layers, at_input=True, prefix="")
    check_residual_blocks(tuple(layers))


def _check_layer(layer: Layer, where: str) -> None:
    """Refuse a layer that cannot be a cache key of the compiled programs (unhashable), or
    whose map, compiled from `apply` (kind "layer"), is not a valid map (`traced`)."""
    if isinstance(layer, ResidualMap):  # inner layers first: the block is part of the hash
        for j, inner in enumerate(layer.block, 1):
            _check_layer(inner, f"{where}.{j}")
    try:
        hash(layer)
    except TypeError:
        raise NTKSymError(
            f"layer {where} ({type(layer).__name__}) is not hashable: declare the class "
            "@dataclass(frozen=True), as the layers of ntk_sym.layers are"
        ) from None
    if layer.kind == Layer.kind:
        try:
            traced(layer)
        except NTKSymError as err:
            raise NTKSymError(f"layer {where}: {err}") from err


def _check_widths(layers: Sequence[Layer], at_input: bool, prefix: str) -> bool:
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
