"""Compile the tangent recursion (`ntk_sym.symbolic.tangent`) into NumPy functions, cached."""

from __future__ import annotations

from collections.abc import Callable

from ..numeric.tangent import CompiledTangent
from ..symbolic.activations import Activation
from ..symbolic.tangent import dual_tangent, layer_tangent
from .printing import compile_for

_CACHE: dict[tuple, CompiledTangent] = {}


def compile_tangent(act: Activation) -> CompiledTangent:
    """The `CompiledTangent` of `act`, derived and compiled once per activation identity."""
    key = act.key()
    if key not in _CACHE:
        tangent = dual_tangent(act)
        outputs = (
            tangent.T,
            tangent.Tdot,
            *(tangent.dT[t] for t in tangent.tangents),
            *(tangent.dTdot[t] for t in tangent.tangents),
        )
        fn = compile_for(tangent.primal, outputs, "numpy", cse=True)
        degree = act.degree if tangent.form == "angle" else None
        _CACHE[key] = CompiledTangent(tangent.form, fn, len(tangent.tangents), degree)
    return _CACHE[key]


_LAYER: list[Callable] = []


def compile_layer() -> Callable:
    """The layer map and its jvp as one function of keyword arguments named by the symbols
    (``sigma_w^2``, ``dT``, ...; see `ntk_sym.symbolic.tangent.layer_tangent`), compiled once."""
    if not _LAYER:
        maps, tangents = layer_tangent()
        symbols = sorted(set().union(*(e.free_symbols for e in maps + tangents)), key=str)
        fn = compile_for(tuple(symbols), maps + tangents, "numpy", cse=True)
        names = [str(s) for s in symbols]
        _LAYER.append(lambda **values: fn(*(values[n] for n in names)))
    return _LAYER[0]
