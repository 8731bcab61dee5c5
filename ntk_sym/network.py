"""The network description shared by the kernel, dynamics and finite-width sides.

Convention (NTK parameterization, Jacot et al. 2018): input x ∈ ℝᵈ, `depth` hidden layers
``Dense → φ`` of width n, then a Dense readout with one output,

    h⁽¹⁾ = (σ_w/√d) W⁽⁰⁾ x + σ_b b⁽⁰⁾,
    h⁽ˡ⁺¹⁾ = (σ_w/√n) W⁽ˡ⁾ φ(h⁽ˡ⁾) + σ_b b⁽ˡ⁾,     W, b ~ N(0, 1),

and f(x) = h⁽ᴸ⁺¹⁾(x). The infinite-width kernels of f obey

    Σ⁽¹⁾ = σ_w² x·x'/d + σ_b²,                  Θ⁽¹⁾ = Σ⁽¹⁾,
    Σ⁽ˡ⁺¹⁾ = σ_w² 𝔼[φ(u)φ(v)] + σ_b²,           Σ̇⁽ˡ⁺¹⁾ = σ_w² 𝔼[φ'(u)φ'(v)],
    Θ⁽ˡ⁺¹⁾ = Σ⁽ˡ⁺¹⁾ + Σ̇⁽ˡ⁺¹⁾ Θ⁽ˡ⁾,               (u, v) ~ N(0, Σ⁽ˡ⁾ on {x, x'}),

and f's NNGP and NTK are Σ⁽ᴸ⁺¹⁾ and Θ⁽ᴸ⁺¹⁾. These match neural-tangents'
``stax.Dense(W_std=σ_w, b_std=σ_b, parameterization='ntk')``.

Standard parameterization (``parameterization="standard"``): h⁽ˡ⁺¹⁾ = W⁽ˡ⁾ a⁽ˡ⁾ + b⁽ˡ⁾ with
W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²). The NNGP is unchanged. Its NTK diverges with width under
one global learning rate, so it is defined for weight learning rates η/fan_in and bias learning
rate η (the per-layer scaling that gives a width-independent limit):

    Θ_sp⁽¹⁾ = x·x'/d + 1,   Θ_sp⁽ˡ⁺¹⁾ = 𝔼[φ(u)φ(v)] + 1 + Σ̇⁽ˡ⁺¹⁾ Θ_sp⁽ˡ⁾.

`finite.init` builds networks with exactly these conventions, and its empirical NTK uses the same
per-layer learning-rate weighting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy as sp

from .dynamics import predict, predict_gd
from .errors import NTKSymError
from .kernels import kernels
from .symbolic.activations import Activation, resolve
from .symbolic.recursion import latex, layer_equations, unrolled

Parameterization = Literal["ntk", "standard"]


@dataclass(frozen=True, eq=False)
class Network:
    """An MLP description: `depth` hidden ``Dense → φ`` layers, then a Dense readout.

    Attributes
    ----------
    activation: the `Activation` φ shared by every hidden layer.
    depth: number of hidden nonlinearities L ≥ 0 (depth 0 is the linear model Σ⁽¹⁾).
    w_std, b_std: σ_w > 0 and σ_b ≥ 0.
    parameterization: "ntk" (default) or "standard" (see the module docstring).
    """

    activation: Activation
    depth: int
    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: Parameterization = "ntk"

    def __post_init__(self) -> None:
        if int(self.depth) != self.depth or self.depth < 0:
            raise NTKSymError(f"depth must be a non-negative integer, got {self.depth!r}")
        for label, value, positive in (("w_std", self.w_std, True), ("b_std", self.b_std, False)):
            if not np.isfinite(value) or value < 0 or (positive and value == 0):
                need = "positive" if positive else "non-negative"
                raise NTKSymError(f"{label} (σ) must be finite and {need}, got {value!r}")
        if self.parameterization not in ("ntk", "standard"):
            raise NTKSymError(
                f"parameterization must be 'ntk' or 'standard', got {self.parameterization!r}"
            )
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "w_std", float(self.w_std))
        object.__setattr__(self, "b_std", float(self.b_std))

    def key(self) -> tuple:
        """Identity used to cache compiled kernels."""
        return (self.activation.key(), self.depth, self.w_std, self.b_std, self.parameterization)

    def kernels(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(NNGP, NTK) Gram matrices (n1, n2) in one pass; see `ntk_sym.kernels.kernels`."""
        return kernels(self, X1, X2, backend=backend, **options)

    def nngp(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: int
    ) -> np.ndarray:
        """NNGP Gram matrix Σ⁽ᴸ⁺¹⁾(X1, X2), shape (n1, n2); X2 defaults to X1."""
        return self.kernels(X1, X2, backend, **options)[0]

    def ntk(
        self, X1: object, X2: object | None = None, backend: str = "numpy", **options: int
    ) -> np.ndarray:
        """NTK Gram matrix Θ⁽ᴸ⁺¹⁾(X1, X2), shape (n1, n2); X2 defaults to X1."""
        return self.kernels(X1, X2, backend, **options)[1]

    def recursion(self, symbolic: bool = True) -> list[sp.Eq]:
        """The layer maps Σ⁽ˡ⁾ → Σ⁽ˡ⁺¹⁾, Σ̇⁽ˡ⁺¹⁾, Θ⁽ˡ⁺¹⁾ as SymPy equations (`recursion`)."""
        return layer_equations(self, symbolic)

    def latex(self, symbolic: bool = True) -> str:
        """The layer maps as a LaTeX ``aligned`` block (`recursion.latex`)."""
        return latex(self, symbolic)

    def unrolled(self, symbolic: bool = False, simplify: bool = False) -> tuple[sp.Expr, sp.Expr]:
        """(NNGP, NTK) in closed form in x·x', ‖x‖², ‖x'‖², d (small depths; `recursion`)."""
        return unrolled(self, symbolic, simplify)

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

    def __repr__(self) -> str:
        return (
            f"Network({self.activation.name}, depth={self.depth}, w_std={self.w_std}, "
            f"b_std={self.b_std}, parameterization={self.parameterization!r})"
        )


def mlp(
    activation: str | sp.Expr | Activation = "relu",
    depth: int = 1,
    w_std: float = 1.0,
    b_std: float = 0.0,
    parameterization: Parameterization = "ntk",
    **activation_params: float,
) -> Network:
    """A fully connected network: `depth` hidden ``Dense → φ`` layers and a Dense readout.

    `activation` is a catalogue name (parameters as keywords, e.g. ``alpha=0.2``), a SymPy
    expression in one symbol, or an `Activation`.
    """
    return Network(resolve(activation, **activation_params), depth, w_std, b_std, parameterization)
