"""The float64 kernel engine: NNGP and NTK blocks of a network given as a list of layer steps.

Each pair (x, x') is carried through the layers as its covariance Σ(x, x'), its NTK Θ(x, x'),
the per-point variances Σ(x, x), Σ(x', x') (exact for identical inputs: the one-dimensional
diagonal recursion) and the angle θ of Σ. An angle is formed only where a layer needs one (an
activation): cos θ = Σ/√(Σ₁₁Σ₂₂) directly, and near 0 and π from the cancellation-free gaps
g∓ = √(Σ₁₁Σ₂₂) ∓ Σ₁₂, which every layer kind carries exactly (`ntk_sym.numeric.steps`: sums of
kernels by the gap-addition identity, scaling and LayerNorm keep θ, activations by their dual's
own gaps). So identical inputs keep θ = 0 and antipodal ones θ = π through every layer, and
pairs that are identical at the input (equal vectors) are copied from the diagonal.

The input kernel is Σ = x·x'/d, Θ = 0. A leading Dense is folded into the input: the first
angle is then that of the augmented vectors (σ_w x/√d, σ_b) (`ntk_sym.numeric.angles`), exact
for duplicates, parallel and antipodal inputs. An activation followed by a Dense is one fused
step (`steps.ActivationDense`), the whole hidden layer of an MLP.

Everything that depends on one input only lives in `PointData`, computed once per input set;
`kernel_tile` does the O(n1 n2) work for one block of pairs, and `ntk_sym.numeric.gram` tiles,
threads and mirrors it. Only the kernels asked for are returned; the NTK is not computed at all
when only the NNGP is wanted.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .angles import augmented, first_layer, unit_rows
from .state import Pairs, Points, angle_gaps, points
from .steps import Activation, ActivationDense, Dense, Fork, Join


@dataclass(frozen=True)
class Program:
    """A network as the engine runs it: the Dense folded into the input (or None) and the
    remaining steps, with Activation → Dense pairs fused."""

    first: Dense | None
    steps: tuple


def plan(steps: Sequence) -> Program:
    """Fold a leading Dense into the input and fuse every Activation directly followed by a
    Dense into one `ActivationDense` step."""
    steps = list(steps)
    first = steps.pop(0) if steps and isinstance(steps[0], Dense) else None
    fused: list = []
    for step in steps:
        if isinstance(step, Dense) and fused and isinstance(fused[-1], Activation):
            fused[-1] = ActivationDense(fused[-1], step)
        else:
            fused.append(step)
    for i, (step, after) in enumerate(zip(fused, fused[1:], strict=False)):
        if isinstance(step, ActivationDense) and isinstance(after, Activation | ActivationDense):
            fused[i] = dataclasses.replace(step, then_angle=True, then_theta=after.needs_theta)
    return Program(first, tuple(fused))


@dataclass(frozen=True)
class PointData:
    """Per-point quantities of n inputs: `units` (n, d+1) unit augmented input vectors, `q`
    (n,) their squared norms (Σ after the folded Dense, or x·x/d), and `stages`, the `Points`
    after the input and after every step."""

    units: object
    q: object
    stages: tuple[Points, ...]

    def rows(self, start: int, stop: int) -> PointData:
        """The points start:stop (views, no copies)."""
        return PointData(
            self.units[start:stop],
            self.q[start:stop],
            tuple(p.rows(start, stop) for p in self.stages),
        )

    def astype(self, dtype: np.dtype) -> PointData:
        """All arrays cast to `dtype` (computed in float64 first, then rounded once)."""
        return PointData(
            self.units.astype(dtype, copy=False),
            self.q.astype(dtype, copy=False),
            tuple(p.astype(dtype) for p in self.stages),
        )

    @property
    def output(self) -> Points:
        return self.stages[-1]

    def __len__(self) -> int:
        return self.q.shape[0]


def point_data(program: Program, X, xp: types.ModuleType = np) -> PointData:
    """`PointData` of the rows of X (float64), by the layers' one-dimensional diagonal maps."""
    first = program.first
    w, b = (first.w_std, first.b_std) if first is not None else (1.0, 0.0)
    units, q = unit_rows(augmented(X, w, b, xp), xp)
    if first is None:
        ntk = xp.zeros_like(q)
    else:
        ntk = (q - first.b) / first.s + 1.0 if first.standard else q
    now = points(q, ntk, xp)
    stages, stack = [now], []
    for step in program.steps:
        if isinstance(step, Fork):
            stack.append(now)
        elif isinstance(step, Join):
            now = step.points(stack.pop(), now, xp)
        else:
            now = step.points(now, xp)
        stages.append(now)
    return PointData(units, q, tuple(stages))


def _needs_theta(program: Program) -> bool:
    return any(getattr(step, "needs_theta", False) for step in program.steps)


def kernel_tile(
    program: Program,
    P1: PointData,
    P2: PointData,
    xp: types.ModuleType = np,
    want: tuple[bool, bool] = (True, True),
):
    """(NNGP or None, NTK or None, bounds) blocks (n1, n2) between the points of P1 and P2, in
    their dtype; `want` says which of the two are needed, and `bounds` the (layer name, bound)
    that duals with ``reports_bound`` returned on this tile."""
    track_ntk = want[1]
    angle, (same_rows, same_cols) = first_layer(
        P1.units, P1.q, P2.units, P2.q, _needs_theta(program), xp
    )
    p1, p2 = P1.stages[0], P2.stages[0]
    cov = xp.multiply(p1.root[:, None], p2.root[None, :])
    cov *= angle.cos
    ntk = None
    if track_ntk and program.first is not None:
        first = program.first
        ntk = (cov - first.b) / first.s + 1.0 if first.standard else cov.copy()
    state = Pairs(cov, ntk, angle, angle_gaps(angle, p1, p2, xp))
    stack = []
    for k, step in enumerate(program.steps, 1):
        q1, q2 = P1.stages[k], P2.stages[k]
        if isinstance(step, Fork):
            stack.append((state, p1, p2))
        elif isinstance(step, Join):
            skip, s1, s2 = stack.pop()
            state = step.pairs(skip, state, s1, s2, p1, p2, q1, q2, xp, track_ntk)
        else:
            state = step.pairs(state, p1, p2, q1, q2, xp, track_ntk)
        p1, p2 = q1, q2
    nngp, ntk = state.cov, state.ntk
    if track_ntk and ntk is None:  # no Dense anywhere: Θ = 0
        ntk = xp.zeros_like(nngp)
    if same_rows.size:
        nngp[same_rows, same_cols] = P1.output.var[same_rows]
        if track_ntk:
            ntk[same_rows, same_cols] = P1.output.ntk[same_rows]
    return (nngp if want[0] else None), (ntk if track_ntk else None), state.bounds
