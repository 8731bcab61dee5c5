"""Compile a network's tangent maps (`ntk_sym.symbolic.tangent`) into a `TangentProgram`.

Each layer's pointwise map and its coefficients are lambdified once per layer kind and cached
(`compile_map`; the σ's are arguments, so every Dense of one parameterization shares one
function), each activation's closed-form jvp once per activation (`compile_tangent`), and the
Hermite rules of a series activation once per activation (`compile_series_tangent`). A program
walks the layers in order: a residual block becomes FORK, its steps, JOIN; a spatial layer its
window map, then (Conv) its pointwise map.

Directions: tied, the two directions d log σ_w, d log σ_b of every Dense and Conv layer at
once (`PARAMETERS`); else one direction per layer and σ, named ``"layer 3 w_std"`` (nested
layers ``"layer 2.1 w_std"``) in network order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import sympy as sp

from ..numeric import tangent as numeric
from ..numeric.conv.window import Window
from ..numeric.hermite import Coefficients
from ..numeric.tangent import PARAMETERS, CompiledMap, CompiledTangent, TangentProgram
from ..symbolic.activations import Activation
from ..symbolic.conv_maps import resolve_window
from ..symbolic.hermite import kink_points
from ..symbolic.maps import Layer
from ..symbolic.symbols import X
from ..symbolic.tangent import dual_tangent, has_sigmas, map_tangent
from .backends import broadcast, compile_phi
from .printing import compile_for
from .series import DEFAULT_TOL, check_domain, point_coefficients

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


def _map_key(layer: Layer) -> Layer:
    """The layer with its σ's at fixed values: the compiled map takes the σ's as arguments."""
    if has_sigmas(layer) and dataclasses.is_dataclass(layer):
        return dataclasses.replace(layer, w_std=1.0, b_std=0.0)
    return layer


def compile_map(layer: Layer) -> CompiledMap:
    """The `CompiledMap` of `layer`'s pointwise map (cached per layer, σ's aside)."""
    return _compile_map(_map_key(layer))


@lru_cache(maxsize=256)
def _compile_map(layer: Layer) -> CompiledMap:
    tangent = map_tangent(layer)
    outputs = (
        *tangent.outputs,
        *(c for row in tangent.by_state for c in row),
        *(c for row in tangent.by_log_sigma for c in row),
    )
    fn = compile_for(tangent.arguments, outputs, "numpy", cse=True)
    zero = tuple(sp.sympify(e) == 0 for e in outputs)
    return CompiledMap(fn, len(tangent.arguments) - 4, zero)


_SERIES: dict[tuple, Callable] = {}


def compile_series_tangent(act: Activation, tol: float = DEFAULT_TOL) -> Callable:
    """q (m,) -> (c, d): the Hermite coefficients of φ and φ' at the variances q, (K, m) each,
    by the rule and term count of the kernel's series (`ntk_sym.compile.series`); cached per
    activation identity and tol."""
    key = (act.key(), tol)
    if key not in _SERIES:
        _SERIES[key] = _series_coefficients(act, tol)
    return _SERIES[key]


def _series_coefficients(act: Activation, tol: float) -> Callable:
    check_domain(act)
    phi, dphi = compile_phi(act)
    kinks = tuple(sorted(float(k) for k in kink_points(act.expr) | kink_points(act.derivative)))
    rules = Coefficients(phi, dphi, kinks, act.name)

    def coefficients(q):
        H = point_coefficients(rules, np.asarray(q, dtype=float), tol)
        return H.c, H.d

    return coefficients


def trainable(layers: Sequence[Layer], prefix: str = "") -> list[tuple[str, Layer]]:
    """(position, layer) of every Dense and Conv layer, in network order (blocks included)."""
    out = []
    for i, m in enumerate(layers, 1):
        where = f"{prefix}{i}"
        if getattr(m, "kind", None) == "residual":
            out += trainable(m.block, f"{where}.")
        elif has_sigmas(m):
            out.append((where, m))
    return out


def parameter_names(layers: Sequence[Layer], tied: bool) -> tuple[str, ...]:
    """The names of the derivative axis (module docstring)."""
    if tied:
        return PARAMETERS
    return tuple(f"layer {w} {p}" for w, _ in trainable(layers) for p in PARAMETERS)


_SPATIAL = ("conv", "avg_pool", "global_avg_pool", "flatten")
_NAMES = {"conv": "Conv", "avg_pool": "AvgPool", "global_avg_pool": "GlobalAvgPool",
          "flatten": "Flatten", "dense": "Dense", "layer_norm": "LayerNorm"}


@lru_cache(maxsize=64)
def compile_gradients(
    layers: tuple[Layer, ...], input_shape: tuple[int, ...], tied: bool = True
) -> TangentProgram:
    """The `TangentProgram` of `layers` for inputs of spatial shape `input_shape` (() for
    vectors), with tied or per-layer directions."""
    names = parameter_names(layers, tied)
    positions = {w: i for i, (w, _) in enumerate(trainable(layers))}
    D = len(names)

    def columns(where: str) -> np.ndarray:
        if tied:
            return np.eye(2)
        out = np.zeros((D, 2))
        out[2 * positions[where] : 2 * positions[where] + 2] = np.eye(2)
        return out

    nd = len(input_shape)

    def window(m) -> Window:
        if m.kind == "conv":
            size = resolve_window(m.filter_shape, nd)
            return Window(size, resolve_window(m.strides, len(size)), m.padding)
        size = resolve_window(m.window, nd)
        return Window(size, resolve_window(m.strides, len(size)), "VALID")

    def steps(maps: Sequence[Layer], prefix: str) -> list:
        out: list = []
        for i, m in enumerate(maps, 1):
            where = f"{prefix}{i}"
            kind = getattr(m, "kind", "layer")
            label = _NAMES.get(kind, type(m).__name__)
            if kind == "activation":
                label = m.phi.name
            name = f"layer {where} ({label})"
            if kind == "residual":
                out += [numeric.FORK, *steps(m.block, f"{where}."), numeric.JOIN]
            elif kind == "activation":
                out.append(_activation_step(m.phi, name))
            elif kind == "identity":
                continue
            else:
                if kind in _SPATIAL:
                    has_window = kind in ("conv", "avg_pool")
                    out.append(numeric.WindowStep(kind, window(m) if has_window else None, name))
                if kind not in _SPATIAL or has_sigmas(m):
                    sigmas = (m.w_std, m.b_std) if has_sigmas(m) else ()
                    cols = columns(where) if sigmas else None
                    out.append(numeric.PointwiseStep(compile_map(m), sigmas, cols, name))
        return out

    full = any(getattr(m, "kind", None) in ("avg_pool", "global_avg_pool") for m in layers)
    return TangentProgram(tuple(steps(layers, "")), names, tuple(input_shape), full)


def _activation_step(phi: Activation, name: str):
    if phi.dual is not None:
        return numeric.ClosedActivationStep(compile_tangent(phi), name)
    return numeric.SeriesActivationStep(compile_series_tangent(phi), _derivatives(phi), name)


def _derivatives(act: Activation) -> tuple[Callable, Callable, Callable]:
    """φ, φ', φ'' as array functions (Dirac deltas compile to 0, the a.e. derivative)."""
    phi, dphi = compile_phi(act)
    second = broadcast(compile_for((X,), sp.diff(act.derivative, X), "numpy"), np)
    return phi, dphi, second


__all__ = [
    "compile_gradients",
    "compile_map",
    "compile_series_tangent",
    "compile_tangent",
    "parameter_names",
    "trainable",
]
