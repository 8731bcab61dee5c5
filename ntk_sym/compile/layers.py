"""Compile a network's layer maps into the engine's program, once per network and backend.

Each symbolic map (`ntk_sym.symbolic.maps`) becomes a numeric step (`ntk_sym.numeric.steps`),
chosen from one kind → builder table: Dense and LayerNorm need only their numbers, an activation
its compiled dual (`compile_dual`, cached per activation), a residual block becomes Fork, its
steps, Join, and Identity disappears. A kind without a hand-written step (a user layer) is
compiled from its map (`ntk_sym.compile.mapped`, the step `ntk_sym.numeric.mapped.Mapped`).
`ntk_sym.numeric.engine.plan` then folds the leading Dense into the input and fuses
Activation → Dense pairs. Programs are cached per (maps, backend, rule), rule = (degree, tol)
choosing the dual of activations without a closed form (`compile_dual`): the maps are frozen
and hashable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from ..numeric import steps as numeric
from ..numeric.engine import Program, plan
from ..numeric.mapped import Mapped
from ..symbolic.maps import Layer
from .duals import compile_dual
from .mapped import compile_map


def _dense(m, where, backend, rule):
    return [numeric.Dense(m.w_std, m.b_std, m.standard, name=f"layer {where} (Dense)")]


def _activation(m, where, backend, rule):
    dual = compile_dual(m.phi, backend, *rule)
    return [numeric.Activation(dual, name=f"layer {where} ({m.phi.name})")]


def _layer_norm(m, where, backend, rule):
    return [numeric.LayerNorm(name=f"layer {where} (LayerNorm)")]


def _identity(m, where, backend, rule):
    return []


def _mapped(m, where, backend, rule):
    functions = compile_map(m, backend)
    return [Mapped(functions, name=f"layer {where} ({type(m).__name__})")]


def _residual(m, where, backend, rule):
    name = f"layer {where} (Residual)"
    return [numeric.Fork(name), *_steps(m.block, backend, rule, f"{where}."), numeric.Join(name)]


#: kind → builder of the numeric steps of one map: the hand-written steps of the built-in kinds.
#: Every other kind (``Layer.kind = "layer"``, user layers) is compiled from its map (`_mapped`).
BUILDERS: dict[str, Callable] = {
    "dense": _dense,
    "activation": _activation,
    "layer_norm": _layer_norm,
    "identity": _identity,
    "residual": _residual,
}


def _steps(maps: Sequence[Layer], backend: str, rule: tuple, prefix: str = "") -> list:
    out: list = []
    for i, m in enumerate(maps, 1):
        out.extend(BUILDERS.get(m.kind, _mapped)(m, f"{prefix}{i}", backend, rule))
    return out


@lru_cache(maxsize=256)
def compile_network(
    maps: tuple[Layer, ...],
    backend: str = "numpy",
    degree: int | None = None,
    tol: float | None = None,
) -> Program:
    """The engine's `Program` for the layer maps `maps` on `backend` (cached); degree and tol
    as in `compile_dual` (None: its defaults)."""
    return plan(_steps(maps, backend, (None if degree is None else int(degree), tol)))
