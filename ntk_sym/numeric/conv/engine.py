"""The convolutional kernel engine: a program of steps run on tiles of image pairs.

`Program` is a checked list of steps (`steps`) with the spatial shape at each step. The
engine runs it twice:

1. on each image with itself (the zipped layout, in chunks): this gives the per-point
   variances Σ(x, x)[p, p] at every step, which the angles of every tile need, and the
   diagonal kernels K(x, x);
2. on tiles of image pairs (t₁, t₂) (`ntk_sym.numeric.conv.gram`), from the per-point data.

The full pixel-pair kernel Σ[p, p'] is kept only when a layer mixes positions (AvgPool,
GlobalAvgPool); for Conv stacks ending in Flatten only the diagonal p = p' is ever read — a
Conv's Σ'[p, p] needs Σ[p+δ, p+δ] alone — so the tiles then hold (t₁, t₂, *S) instead of
(t₁, t₂, *S, *S) (neural-tangents' ``diagonal_spatial``).
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .layout import Layout
from .steps import ActivationStep, ConvStep, DenseStep, PoolStep, ReadoutStep, input_pairs


@dataclass(frozen=True)
class Program:
    """Steps, the spatial input shape of each (and the output's), whether pairs are full."""

    steps: tuple
    shapes: tuple[tuple[int, ...], ...]
    full: bool
    channels: int

    @property
    def nd(self) -> int:
        return len(self.shapes[0])


def plan(steps: tuple, input_shape: tuple[int, ...]) -> Program:
    """Check `steps` against images of shape `input_shape` = (*S, C) and record the shapes.

    The readout (GlobalAvgPool or Flatten) must come once, before any Dense-only tail, and
    the network must end with a Dense (the readout layer, as in `ntk_sym.serial`).
    """
    *spatial, channels = input_shape
    shape = tuple(spatial)
    shapes = [shape]
    pooled = False
    for step in steps:
        if isinstance(step, ConvStep | PoolStep):
            if pooled:
                raise InputError(f"{step.name}: comes after the readout (GlobalAvgPool or "
                                 "Flatten), where no spatial axes are left")
            shape = step.window.out_shape(shape, step.name)
        elif isinstance(step, ReadoutStep):
            if pooled:
                raise InputError(f"{step.name}: the images were already pooled or flattened")
            pooled, shape = True, ()
        shapes.append(shape)
    if not pooled:
        raise InputError("the network has no GlobalAvgPool or Flatten before its readout Dense: "
                         "its output would still have spatial axes")
    if not steps or not isinstance(steps[-1], DenseStep):
        raise InputError("a convolutional network must end with a Dense readout")
    full = any(isinstance(s, PoolStep) or (isinstance(s, ReadoutStep) and s.kind == "gap")
               for s in steps)
    return Program(tuple(steps), tuple(shapes), full, channels)


@dataclass(frozen=True)
class PointData:
    """Per-image quantities: `var[i]` = Σ(x, x)[p, p] at the input of step i, (*Sᵢ, n) (the
    image index last, as in `layout`); the diagonal kernels `nngp`, `ntk` = K(x, x), (n,)."""

    var: tuple
    nngp: object
    ntk: object

    def rows(self, start: int, stop: int) -> PointData:
        sl = slice(start, stop)
        return PointData(tuple(v[..., sl] for v in self.var), self.nngp[sl], self.ntk[sl])

    def astype(self, dtype) -> PointData:
        return PointData(tuple(v.astype(dtype, copy=False) for v in self.var),
                         self.nngp.astype(dtype, copy=False), self.ntk.astype(dtype, copy=False))

    def __len__(self) -> int:
        return self.nngp.shape[0]


def forward(program: Program, X1, X2, lay: Layout, var1, var2, xp: types.ModuleType = np,
            ntk: bool = True):
    """(Σ, Θ) after the last step between the images X1 and X2 in layout `lay`. var1(i, state)
    and var2(i, state) give the per-point variances at step i's input."""
    state = input_pairs(X1, X2, lay, xp)
    for i, step in enumerate(program.steps):
        v1 = var1(i, state, lay)
        v2 = v1 if lay.zipped else var2(i, state, lay)
        state = step.pairs(state, v1, v2, lay, program.shapes[i], xp, ntk)
        lay = step.layout(lay)
    return state.cov, state.ntk


def point_data(program: Program, X, xp: types.ModuleType = np, chunk: int = 256) -> PointData:
    """`PointData` of the images X (n, *S, C), each run with itself in chunks of `chunk`."""
    steps = len(program.steps)
    parts: list[list] = [[] for _ in range(steps)]
    nngp, ntk = [], []
    for start in range(0, X.shape[0], chunk):
        Xc = X[start:start + chunk]

        def record(i, state, lay):
            v = lay.diagonal(state.cov, xp)
            parts[i].append(v)
            return v

        lay = Layout(zipped=True, full=program.full, nd=program.nd)
        k, t = forward(program, Xc, Xc, lay, record, None, xp)
        nngp.append(k)
        ntk.append(t)
    return PointData(tuple(xp.concatenate(p, axis=-1) for p in parts), xp.concatenate(nngp),
                     xp.concatenate(ntk))


def tile_kernels(program: Program, X1, X2, P1: PointData, P2: PointData,
                 xp: types.ModuleType = np, ntk: bool = True):
    """(Σ, Θ) blocks (t₁, t₂) between the images X1, X2 with per-point data P1, P2."""
    lay = Layout(zipped=False, full=program.full, nd=program.nd)
    return forward(program, X1, X2, lay, lambda i, s, lay: P1.var[i],
                   lambda i, s, lay: P2.var[i], xp, ntk)


__all__ = ["ActivationStep", "ConvStep", "DenseStep", "PointData", "PoolStep", "Program",
           "ReadoutStep", "forward", "plan", "point_data", "tile_kernels"]
