"""The MLP view of a layer list: `mlp_spec(net)` is the `MLP` it is, or None.

A network is the uniform MLP ``ntk_sym.mlp(φ, L, σ_w, σ_b, parameterization)`` when its layers
are Dense, φ, Dense, φ, …, Dense with L equal activations and L + 1 equal Dense layers. Code that
has a faster or exact path for that family (`ntk_sym.sphere`'s closed forms, the tests' defining
equations) asks `mlp_spec` and falls back to the general layer walk on None; a network object
itself carries no MLP-only properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .activations import Activation as Phi
from .maps import ActivationMap, DenseMap, Layer


@dataclass(frozen=True)
class MLP:
    """The parameters of ``ntk_sym.mlp(activation, depth, w_std, b_std, parameterization)``.

    activation: the catalogue entry φ (None for depth 0, a single Dense); depth: the number of
    activations L; w_std, b_std: every Dense layer's σ_w, σ_b.
    """

    activation: Phi | None
    depth: int
    w_std: float
    b_std: float
    parameterization: str = "ntk"


def mlp_spec(net: object) -> MLP | None:
    """The `MLP` whose layers `net` (a network, or a sequence of layer maps) has, else None."""
    layers: Sequence[Layer] = tuple(getattr(net, "layers", net))
    if not layers or len(layers) % 2 == 0 or not isinstance(layers[0], DenseMap):
        return None
    first, acts = layers[0], layers[1::2]
    if any(m != first for m in layers[::2]) or not all(
        isinstance(a, ActivationMap) and a == acts[0] for a in acts
    ):
        return None
    phi = acts[0].phi if acts else None
    return MLP(phi, len(acts), first.w_std, first.b_std, first.parameterization)


__all__ = ["MLP", "mlp_spec"]
