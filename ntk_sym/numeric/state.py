"""What the engine carries through the layers: per-point quantities and a tile's pair state.

Per point (O(n) work, done once per input set): the variance Σ(x, x) after each layer, its root
and inverse root, the diagonal NTK, and whatever else a layer needs of single points
(`Points.extra`, e.g. an activation's T(Σ(x, x)) or a dual's per-point coefficients).

Per pair (one tile of (n1, n2) pairs): the covariance Σ(x, x'), the NTK Θ(x, x') (None while it
is zero, before the first Dense, or when only the NNGP is wanted), the angle (θ, cos θ, sin θ) of
Σ when it is known (`Angle`; None when a layer has changed it), and a function returning the
cancellation-free gaps g∓ = √(Σ₁₁Σ₂₂) ∓ Σ₁₂ ≥ 0 at chosen pairs, from which the next angle is
formed where cos θ is close to ±1 (`ntk_sym.numeric.engine`).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: gaps(rows, cols) -> (g₋, g₊) at the pairs (rows[k], cols[k]) of a tile (1-D index arrays).
Gaps = Callable[[object, object], tuple[object, object]]


@dataclass(frozen=True)
class Points:
    """Per-point quantities of n inputs at one stage; the point index is the last axis.

    var: Σ(x, x);  root, inv_root: √var and 1/√var (0 where var = 0: such a point has no
    direction, and its angle to every point is taken as π/2);  ntk: Θ(x, x);  extra: arrays a
    layer stores for its tiles (see the layer).
    """

    var: object
    root: object
    inv_root: object
    ntk: object
    extra: tuple = ()

    def rows(self, start: int, stop: int) -> Points:
        """The points start:stop (views)."""
        sl = slice(start, stop)
        return Points(
            self.var[sl],
            self.root[sl],
            self.inv_root[sl],
            self.ntk[sl],
            tuple(a[..., sl] for a in self.extra),
        )

    def astype(self, dtype: np.dtype) -> Points:
        return Points(
            *(a.astype(dtype, copy=False) for a in (self.var, self.root, self.inv_root, self.ntk)),
            tuple(a.astype(dtype, copy=False) for a in self.extra),
        )

    def __len__(self) -> int:
        return self.var.shape[0]


def points(var, ntk, xp: types.ModuleType = np, extra: tuple = ()) -> Points:
    """`Points` from the variances and diagonal NTK (roots computed here)."""
    root = xp.sqrt(var)
    inv_root = xp.where(root > 0, 1.0 / xp.where(root > 0, root, 1.0), 0.0)
    return Points(var, root, inv_root, ntk, extra)


@dataclass(frozen=True)
class Angle:
    """θ (None when no layer needs it), cos θ and sin θ of a tile, each (n1, n2)."""

    theta: object
    cos: object
    sin: object


@dataclass(frozen=True)
class Pairs:
    """A tile's state after some layer (module docstring). Arrays are never changed in place
    once they are in a `Pairs`: a residual branch and the gap functions may still read them.
    `cov` may be None when the angle is given and the next step is an activation, which reads
    the angle only (`ntk_sym.numeric.steps.ActivationDense`)."""

    cov: object
    ntk: object
    angle: Angle | None
    gaps: Gaps
    #: (layer name, bound) of the duals that report error bounds, so far (`numeric.dual`)
    bounds: tuple = ()

    def replace(self, **changes: object) -> Pairs:
        return dataclasses.replace(self, **changes)


def angle_gaps(angle: Angle, p1: Points, p2: Points, xp: types.ModuleType = np) -> Gaps:
    """g∓ = √(Σ₁₁Σ₂₂)(1 ∓ cos θ) from an accurate angle: 1 − cos θ = sin²θ/(1 + cos θ) for
    cos θ > 0 and 1 + cos θ = sin²θ/(1 − cos θ) for cos θ < 0, so neither cancels."""

    def gaps(rows, cols):
        c, s = angle.cos[rows, cols], angle.sin[rows, cols]
        r = p1.root[rows] * p2.root[cols]
        s2 = s * s
        minus = xp.where(c > 0, s2 / (1.0 + xp.abs(c)), 1.0 - c)
        plus = xp.where(c < 0, s2 / (1.0 + xp.abs(c)), 1.0 + c)
        return r * minus, r * plus

    return gaps
