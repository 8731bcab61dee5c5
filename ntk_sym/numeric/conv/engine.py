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
    image index last, as in `layout`), `theta[i]` = Θ(x, x)[p, p] there (None while Θ = 0);
    `extra[i]`: the per-point data (m, *Sᵢ, n) of step i's dual where it has `per_point`
    (the Hermite series' coefficients per (position, image)), else None; the diagonal kernels
    `nngp`, `ntk` = K(x, x), (n,); `bounds`: the (layer name, bound) that duals with
    ``reports_bound`` returned on the images' own pixel pairs."""

    var: tuple
    theta: tuple
    extra: tuple
    nngp: object
    ntk: object
    bounds: tuple = ()

    def rows(self, start: int, stop: int) -> PointData:
        sl = slice(start, stop)

        def cut(v):
            return None if v is None else v[..., sl]

        return PointData(tuple(map(cut, self.var)), tuple(map(cut, self.theta)),
                         tuple(map(cut, self.extra)), self.nngp[sl], self.ntk[sl], self.bounds)

    def astype(self, dtype) -> PointData:
        """The variances and kernels in `dtype`; the per-point series data stay float64 (the
        tiles' sums then run in float64 and are rounded once)."""

        def cast(v):
            return None if v is None else v.astype(dtype, copy=False)

        return PointData(tuple(map(cast, self.var)), tuple(map(cast, self.theta)), self.extra,
                         cast(self.nngp), cast(self.ntk), self.bounds)

    def __len__(self) -> int:
        return self.nngp.shape[0]


def forward(program: Program, X1, X2, lay: Layout, at1, at2, xp: types.ModuleType = np,
            ntk: bool = True):
    """(Σ, Θ, bounds) after the last step between the images X1 and X2 in layout `lay`.
    at1(i, state, lay) and at2(i, state, lay) give the per-point variances at step i's input and
    the step's per-point data (None if its dual has none); bounds: the (layer name, bound) of
    the duals that report one."""
    state = input_pairs(X1, X2, lay, xp)
    bounds = []
    for i, step in enumerate(program.steps):
        v1, e1 = at1(i, state, lay)
        v2, e2 = (v1, e1) if lay.zipped else at2(i, state, lay)
        given = {} if e1 is None else {"extra": (e1, e2)}
        state = step.pairs(state, v1, v2, lay, program.shapes[i], xp, ntk, **given)
        if state.bound is not None:
            bounds.append((step.name, state.bound))
        lay = step.layout(lay)
    return state.cov, state.ntk, bounds


def point_data(program: Program, X, xp: types.ModuleType = np, chunk: int = 256) -> PointData:
    """`PointData` of the images X (n, *S, C), each run with itself in chunks of `chunk`."""
    steps = program.steps
    var: list[list] = [[] for _ in steps]
    theta: list[list] = [[] for _ in steps]
    extra: list[list] = [[] for _ in steps]
    nngp, ntk, bounds = [], [], []
    for start in range(0, X.shape[0], chunk):
        Xc = X[start:start + chunk]

        def record(i, state, lay):
            v = lay.diagonal(state.cov, xp)
            var[i].append(v)
            theta[i].append(None if state.ntk is None else lay.diagonal(state.ntk, xp))
            per_point = getattr(steps[i], "per_point", None)
            if per_point is None:
                return v, None
            extra[i].append(per_point(v.reshape(-1)).reshape(-1, *v.shape))
            return v, extra[i][-1]

        lay = Layout(zipped=True, full=program.full, nd=program.nd)
        k, t, b = forward(program, Xc, Xc, lay, record, None, xp)
        nngp.append(k)
        ntk.append(t)
        bounds.extend(b)

    def joined(parts):
        return None if parts[0] is None else xp.concatenate(parts, axis=-1)

    return PointData(tuple(map(joined, var)), tuple(map(joined, theta)),
                     tuple(_joined_extra(s, v, e, xp) for s, v, e in zip(steps, var, extra,
                                                                          strict=True)),
                     xp.concatenate(nngp), xp.concatenate(ntk), tuple(bounds))


def _joined_extra(step, var: list, extra: list, xp):
    """The chunks' per-point data of one step as one array (`HermiteData.pack`: 4 rows per
    term, then T, Ṫ, slope and the 2-D rule's step and window, one value per pack). Chunks
    whose series stopped at fewer terms than another's are recomputed with that many
    (``per_point(q, least)``); the joined pack takes the finest step and widest window of
    the chunks' rules, which serve every chunk's pairs."""
    if not extra:
        return None
    terms = [e.shape[0] for e in extra]
    if len(set(terms)) > 1:
        most = (max(terms) - 5) // 4
        extra = [e if e.shape[0] == max(terms) else
                 step.per_point(v.reshape(-1), least=most).reshape(-1, *v.shape)
                 for e, v in zip(extra, var, strict=True)]
    joined = xp.concatenate(extra, axis=-1)
    if len(extra) > 1:
        joined[-2] = joined[-2].min()
        joined[-1] = joined[-1].max()
    return joined


def tile_kernels(program: Program, X1, X2, P1: PointData, P2: PointData,
                 xp: types.ModuleType = np, ntk: bool = True):
    """(Σ, Θ, bounds) blocks (t₁, t₂) between the images X1, X2 with per-point data P1, P2."""
    lay = Layout(zipped=False, full=program.full, nd=program.nd)
    return forward(program, X1, X2, lay, lambda i, s, lay: (P1.var[i], P1.extra[i]),
                   lambda i, s, lay: (P2.var[i], P2.extra[i]), xp, ntk)


__all__ = ["ActivationStep", "ConvStep", "DenseStep", "PointData", "PoolStep", "Program",
           "ReadoutStep", "forward", "plan", "point_data", "tile_kernels"]
