"""The numeric layer maps: each layer kind on per-point data (`points`) and on a tile (`pairs`).

Every step maps the state before it to the state after it (`ntk_sym.numeric.state`), with the
equations of `ntk_sym.symbolic.maps` (s = σ_w², b = σ_b²):

* `Dense`: Σ' = sΣ + b, Θ' = Σ' + sΘ (standard: Σ + 1 + sΘ). Scaling keeps the angle; the
  bias is a sum of two kernels, whose gaps follow the gap-addition identity (`sum_gaps`):

      g∓(a + c) = g∓(a) + g∓(c) + (√(a₁₁c₂₂) − √(c₁₁a₂₂))² / (√(A₁₁A₂₂) + √(a₁₁a₂₂) + √(c₁₁c₂₂)),

  A = a + c. For the constant bias kernel c = b (g₋ = 0, g₊ = 2b) the correction is
  M = s b (√Σ₁₁ − √Σ₂₂)² / (√(Σ'₁₁Σ'₂₂) + s√(Σ₁₁Σ₂₂) + b). Every term is ≥ 0: nothing cancels.
* `Activation` (a compiled dual): Σ' = T, Θ' = ṪΘ; the dual supplies T's gaps itself.
* `ActivationDense`: an Activation and the Dense after it in one step, the hot loop of an MLP.
* `LayerNorm`: Σ' = Σ/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂); the angle is unchanged.
* `Fork` / `Join`: a residual block between them; Join adds the block's output to the state
  Fork saw (Σ, Θ and, by the identity above, the gaps).

`pairs(state, p1, p2, q1, q2, xp, ntk)` gets the points before (p) and after (q) the step;
`ntk` says whether the NTK is tracked at all. Steps never change their input arrays in place.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from ..errors import NTKSymError
from .dual import CompiledDual
from .state import Angle, Gaps, Pairs, Points, angle_gaps, points

#: Pairs with |cos θ| above this get their angle from the cancellation-free gaps; below it
#: 1 ∓ cos θ ≥ 0.02 and the direct formulas lose at most a factor 50 in relative accuracy of
#: the small quantity, i.e. ~1e-14, far below what reaches the kernels (ulps of θ).
NEAR_PARALLEL = 0.98
#: The same test on sin²θ = 1 − cos²θ, which the engine has at hand: one reduction per tile.
_NEAR_SIN2 = 1.0 - NEAR_PARALLEL**2
_NEAR_SIN = _NEAR_SIN2**0.5


def ensure_angle(
    state: Pairs, p1: Points, p2: Points, needs_theta: bool, xp: types.ModuleType = np
) -> Angle:
    """The angle of the state's Σ: kept if known, else cos θ = Σ/√(Σ₁₁Σ₂₂) directly, refined
    near 0 and π by `angle_from`."""
    if state.angle is not None:
        a = state.angle
        if needs_theta and a.theta is None:
            return Angle(xp.arctan2(a.sin, a.cos), a.cos, a.sin)
        return a
    cos = xp.multiply(p1.inv_root[:, None], p2.inv_root[None, :])
    cos *= state.cov
    sin2 = xp.multiply(cos, cos)
    xp.subtract(1.0, sin2, out=sin2)
    return angle_from(cos, sin2, state.gaps, needs_theta, xp)


def angle_from(cos, sin2, gaps: Gaps, needs_theta: bool, xp: types.ModuleType = np) -> Angle:
    """The `Angle` from cos θ and sin²θ = 1 − cos²θ as computed directly (sin2 becomes sin θ,
    in place), refined near 0 and π by `refined_angle`."""
    near = bool(sin2.min() < _NEAR_SIN2)  # one reduction; most tiles have no such pair
    rows = cols = None
    if near:
        rows, cols = xp.nonzero(sin2 < _NEAR_SIN2)
    sin = xp.sqrt(sin2, out=sin2)  # NaN where rounding put |cos θ| above 1: those are near
    return refined_angle(cos, sin, rows, cols, gaps, needs_theta, xp)


def refined_angle(cos, sin, rows, cols, gaps: Gaps, needs_theta: bool, xp=np) -> Angle:
    """The `Angle` of direct cos θ, sin θ with the near pairs (rows, cols) (None: there are
    none) taken from the gaps P = g₋, Q = g₊ instead (cos and sin are changed in place), by the
    half-angle relation tan(θ/2) = √(P/Q): θ = atan2(2√(PQ), Q − P), cos θ = (Q − P)/(Q + P),
    sin θ = 2√(PQ)/(Q + P), each accurate to rounding near 0 and π. A point of zero variance
    gets θ = π/2 (its inverse root is 0), which gives the exact covariance 0."""
    theta = xp.arccos(cos) if needs_theta else None
    if rows is not None:
        P, Q = gaps(rows, cols)
        P, Q = xp.maximum(P, 0.0), xp.maximum(Q, 0.0)
        y, x, total = 2.0 * xp.sqrt(P * Q), Q - P, P + Q
        cos[rows, cols], sin[rows, cols] = x / total, y / total
        if theta is not None:
            theta[rows, cols] = xp.arctan2(y, x)
    return Angle(theta, cos, sin)


def _outer(u, v):
    return u[:, None] * v[None, :]


def sum_gaps(
    first: Gaps,
    second: Gaps,
    a1: Points,
    a2: Points,
    c1: Points,
    c2: Points,
    out1: Points,
    out2: Points,
) -> Gaps:
    """Gaps of the sum of two kernels a and c (module docstring); a1, a2, c1, c2, out1, out2
    are their points and those of the sum, on the tile's rows and columns."""

    def gaps(rows, cols):
        am, ap = first(rows, cols)
        cm, cp = second(rows, cols)
        cross = (a1.root[rows] * c2.root[cols] - c1.root[rows] * a2.root[cols]) ** 2
        den = (
            out1.root[rows] * out2.root[cols]
            + a1.root[rows] * a2.root[cols]
            + c1.root[rows] * c2.root[cols]
        )
        # den > 0 at every pair the engine asks for: both variances of the sum are positive
        corr = cross / den
        return am + cm + corr, ap + cp + corr

    return gaps


def dense_gaps(
    prev: Gaps, s: float, b: float, p1: Points, p2: Points, q1: Points, q2: Points
) -> Gaps:
    """Gaps of sΣ + b from those of Σ: s g∓ plus M (and 2b for g₊), module docstring."""
    if b == 0:
        return lambda rows, cols: tuple(s * g for g in prev(rows, cols))

    def gaps(rows, cols):
        gm, gp = prev(rows, cols)
        r1, r2 = p1.root[rows], p2.root[cols]
        mismatch = s * b * (r1 - r2) ** 2 / (q1.root[rows] * q2.root[cols] + s * (r1 * r2) + b)
        return s * gm + mismatch, s * gp + mismatch + 2.0 * b

    return gaps


@dataclass(frozen=True)
class Dense:
    """Σ' = sΣ + b, Θ' = Σ' + sΘ (standard parameterization: Σ + 1 + sΘ)."""

    w_std: float
    b_std: float
    standard: bool
    name: str = "Dense"

    @property
    def s(self) -> float:
        return self.w_std**2

    @property
    def b(self) -> float:
        return self.b_std**2

    def points(self, p: Points, xp: types.ModuleType = np) -> Points:
        var = self.s * p.var + self.b
        return points(var, self._ntk(p.var, var, p.ntk), xp)

    def _ntk(self, cov, new, ntk):
        weights = cov + 1.0 if self.standard else new
        return weights + self.s * ntk if ntk is not None else weights + 0.0

    def pairs(self, state: Pairs, p1, p2, q1, q2, xp=np, ntk: bool = True) -> Pairs:
        cov = xp.multiply(state.cov, self.s)
        cov += self.b
        angle = state.angle if self.b == 0 else None
        return Pairs(
            cov,
            self._ntk(state.cov, cov, state.ntk) if ntk else None,
            angle,
            dense_gaps(state.gaps, self.s, self.b, p1, p2, q1, q2),
            state.bounds,
        )


@dataclass(frozen=True)
class Activation:
    """Σ' = T(Σ₁₁, Σ₁₂, Σ₂₂), Θ' = Ṫ Θ, from the compiled dual."""

    dual: CompiledDual
    name: str = "Activation"

    @property
    def needs_theta(self) -> bool:
        return self.dual.needs_theta

    def points(self, p: Points, xp: types.ModuleType = np) -> Points:
        T, Tdot = self.dual.diag(p.var)
        extra = (self.dual.per_point(p.var),) if self.dual.per_point else ()
        return points(T, Tdot * p.ntk, xp, extra)

    def transform(self, state: Pairs, p1, p2, q1, q2, xp):
        """(T12, Ṫ12, gaps of T12, bounds so far) on the tile; q1, q2 hold T(Σ(x, x)) as `var`
        and the dual's per-point data in `extra`."""
        angle = ensure_angle(state, p1, p2, self.needs_theta, xp)
        a, c = p1.var[:, None], p2.var[None, :]
        dual = self.dual
        data = {"extra": (q1.extra[0], q2.extra[0])} if dual.per_point else {}
        args = (a, c, angle.theta, angle.cos, angle.sin, q1.var[:, None], q2.var[None, :])
        T12, Tdot, *bound = dual.pair(*args, **data)
        bounds = state.bounds + ((self.name, bound[0]),) if dual.reports_bound else state.bounds

        def gaps(rows, cols):
            t = None if angle.theta is None else angle.theta[rows, cols]
            some = {"extra": (data["extra"][0][:, rows], data["extra"][1][:, cols])} if data else {}
            return dual.gaps(
                p1.var[rows],
                p2.var[cols],
                t,
                angle.cos[rows, cols],
                angle.sin[rows, cols],
                q1.var[rows],
                q2.var[cols],
                T12[rows, cols],
                **some,
            )

        return T12, Tdot, gaps, bounds

    def pairs(self, state: Pairs, p1, p2, q1, q2, xp=np, ntk: bool = True) -> Pairs:
        T12, Tdot, gaps, bounds = self.transform(state, p1, p2, q1, q2, xp)
        new_ntk = xp.multiply(Tdot, state.ntk) if ntk and state.ntk is not None else None
        return Pairs(T12, new_ntk, None, gaps, bounds)


@dataclass(frozen=True)
class ActivationDense:
    """`Activation` then `Dense` in one step: Σ' = sT + b, Θ' = Σ' + sṪΘ (standard:
    T + 1 + sṪΘ). Its points keep the activation's output points in `extra`.

    `then_angle` (set by `engine.plan` when the next step is an activation) makes the step form
    the next angle itself (θ too if `then_theta`), so that this layer's arrays, which its gaps
    would otherwise keep alive, are freed with it: the tile's working set stays ~10 arrays.
    """

    activation: Activation
    dense: Dense
    then_angle: bool = False
    then_theta: bool = False

    @property
    def needs_theta(self) -> bool:
        return self.activation.needs_theta

    @property
    def name(self) -> str:
        return self.activation.name

    def points(self, p: Points, xp: types.ModuleType = np) -> Points:
        mid = self.activation.points(p, xp)
        out = self.dense.points(mid, xp)
        return Points(
            out.var,
            out.root,
            out.inv_root,
            out.ntk,
            (mid.var, mid.root, mid.inv_root, mid.ntk, *mid.extra),
        )

    def pairs(self, state: Pairs, p1, p2, q1, q2, xp=np, ntk: bool = True) -> Pairs:
        m1, m2 = _middle(q1), _middle(q2)
        if self.activation.dual.angle_form is not None:
            return self._homogeneous(state, p1, p2, m1, m2, q1, q2, xp, ntk)
        T12, Tdot, act_gaps, bounds = self.activation.transform(state, p1, p2, m1, m2, xp)
        s, b = self.dense.s, self.dense.b
        cov = xp.multiply(T12, s)
        cov += b
        new_ntk = None
        if ntk:
            if state.ntk is None:
                new_ntk = T12 + 1.0 if self.dense.standard else cov.copy()
            else:
                # Θ' = Σ' + s Ṫ Θ (standard: T + 1 + s Ṫ Θ), in place on arrays made here
                new_ntk = xp.multiply(Tdot, state.ntk)
                new_ntk *= s
                if self.dense.standard:
                    new_ntk += T12
                    new_ntk += 1.0
                else:
                    new_ntk += cov
        gaps = dense_gaps(act_gaps, s, b, m1, m2, q1, q2)
        return self._finish(Pairs(cov, new_ntk, None, gaps, bounds), q1, q2, xp)

    def _homogeneous(self, state, p1, p2, m1, m2, q1, q2, xp, ntk: bool) -> Pairs:
        """The same for T = j (ab)^{k/2} J̃(θ), Ṫ = κ (ab)^{(k−1)/2} K̃(θ) (`AngleForm`): with
        u = √(s j) √a^k per point, Σ' = u₁ u₂ J̃ + b, and Θ' = Σ' + (sκ √a₁^{k−1} √a₂^{k−1}) K̃ Θ,
        every constant and variance factor applied as a per-point vector (no outer products);
        standard parameterization: Θ' = j u₁u₂J̃/s + 1 + … with the same vectors. On NumPy
        with the form's compiled loop (`AngleForm.fused`) this and the next angle are one
        pass over the tile (`_fused`)."""
        form = self.activation.dual.angle_form
        k, s, b = form.degree, self.dense.s, self.dense.b
        angle = ensure_angle(state, p1, p2, self.needs_theta, xp)
        if form.fused is not None and xp is np:
            return self._fused(state, angle, p1, p2, m1, m2, q1, q2, ntk)
        J, K = form.parts(angle.theta, angle.cos, angle.sin)
        r1, r2 = p1.root**k, p2.root**k
        root_sj = (s * form.j) ** 0.5
        cov = xp.multiply(root_sj * r1[:, None], J)
        cov *= root_sj * r2[None, :]
        cov += b
        new_ntk = None
        if ntk:
            if self.dense.standard:  # Θ' = T + 1 + s Ṫ Θ
                weights = xp.multiply(form.j * r1[:, None], J)
                weights *= r2[None, :]
                weights += 1.0
            else:  # Θ' = Σ' + s Ṫ Θ
                weights = cov
            if state.ntk is None or form.kappa == 0:  # Θ = 0 so far, or Ṫ = 0 (step, sign)
                new_ntk = weights.copy() if weights is cov else weights
            else:
                new_ntk = xp.multiply(K, state.ntk)
                if k == 1:
                    new_ntk *= s * form.kappa
                else:
                    new_ntk *= (s * form.kappa) * p1.root[:, None] ** (k - 1)
                    new_ntk *= p2.root[None, :] ** (k - 1)
                new_ntk += weights
        J_at = (lambda rows, cols: J[rows, cols]) if xp.ndim(J) else (lambda rows, cols: J)
        gaps = self._gaps(angle, J_at, r1, r2, p1, p2, m1, m2, q1, q2, xp)
        return self._finish(Pairs(cov, new_ntk, None, gaps, state.bounds), q1, q2, xp)

    def _fused(self, state, angle, p1, p2, m1, m2, q1, q2, ntk: bool) -> Pairs:
        """`_homogeneous` as one compiled loop (`ntk_sym.compile.fused`); NumPy then forms θ'
        (arccos) and refines the near pairs as `angle_from` does."""
        form = self.activation.dual.angle_form
        k, s, b = form.degree, self.dense.s, self.dense.b
        cos = angle.cos
        shape, dtype = cos.shape, cos.dtype
        none = np.empty((0, 0), dtype)
        root_sj = (s * form.j) ** 0.5
        r1, r2 = p1.root**k, p2.root**k
        w1 = (s * form.kappa) * p1.root ** (k - 1)
        w2 = p2.root ** (k - 1)
        carry = ntk and state.ntk is not None and form.kappa != 0
        # an activation next reads only the angle: Σ' is then not stored (Pairs.cov None)
        cov = None if self.then_angle else np.empty(shape, dtype)
        new_ntk = np.empty(shape, dtype) if ntk else None
        next_cos = np.empty(shape, dtype) if self.then_angle else none
        next_sin = np.empty(shape, dtype) if self.then_angle else none
        near = form.fused(
            cos if angle.theta is None else angle.theta,
            cos,
            angle.sin,
            state.ntk if carry else None,
            root_sj * r1,
            root_sj * r2,
            w1.astype(dtype, copy=False),
            w2.astype(dtype, copy=False),
            q1.inv_root,
            q2.inv_root,
            b,
            s,
            self.dense.standard,
            _NEAR_SIN2,
            none if cov is None else cov,
            none if new_ntk is None else new_ntk,
            next_cos,
            next_sin,
        )

        def J_at(rows, cols):
            t = None if angle.theta is None else angle.theta[rows, cols]
            return form.parts(t, cos[rows, cols], angle.sin[rows, cols])[0]

        gaps = self._gaps(angle, J_at, r1, r2, p1, p2, m1, m2, q1, q2, np)
        if not self.then_angle:
            return Pairs(cov, new_ntk, None, gaps, state.bounds)
        rows = cols = None
        if near:
            rows, cols = np.nonzero(next_sin < _NEAR_SIN)
        following = refined_angle(next_cos, next_sin, rows, cols, gaps, self.then_theta, np)
        return Pairs(cov, new_ntk, following, angle_gaps(following, q1, q2, np), state.bounds)

    def _gaps(self, angle, J_at, r1, r2, p1, p2, m1, m2, q1, q2, xp) -> Gaps:
        """The gaps of Σ' = sT + b, T = j√a₁^k√a₂^k J̃(θ), from the dual's own gaps of T."""
        form, dual = self.activation.dual.angle_form, self.activation.dual

        def act_gaps(rows, cols):
            T12 = form.j * (r1[rows] * r2[cols]) * J_at(rows, cols)
            t = None if angle.theta is None else angle.theta[rows, cols]
            return dual.gaps(
                p1.var[rows],
                p2.var[cols],
                t,
                angle.cos[rows, cols],
                angle.sin[rows, cols],
                m1.var[rows],
                m2.var[cols],
                T12,
            )

        return dense_gaps(act_gaps, self.dense.s, self.dense.b, m1, m2, q1, q2)

    def _finish(self, state: Pairs, q1: Points, q2: Points, xp) -> Pairs:
        if not self.then_angle:
            return state
        angle = ensure_angle(state, q1, q2, self.then_theta, xp)
        return state.replace(angle=angle, gaps=angle_gaps(angle, q1, q2, xp))


def _middle(q: Points) -> Points:
    """The activation's output points that `ActivationDense.points` kept in `extra`."""
    return Points(*q.extra[:4], q.extra[4:])


@dataclass(frozen=True)
class LayerNorm:
    """Σ' = Σ/√(Σ₁₁Σ₂₂), Θ' = Θ/√(Σ₁₁Σ₂₂); θ unchanged."""

    name: str = "LayerNorm"

    def points(self, p: Points, xp: types.ModuleType = np) -> Points:
        if bool(xp.any(p.var <= 0)):
            where = int(xp.argmax(p.var <= 0))
            raise NTKSymError(
                f"{self.name}: input {where} has zero variance at this layer (Σ(x, x) = 0, e.g. "
                "x = 0 with no bias before it), and LayerNorm divides by √Σ(x, x)"
            )
        one = xp.ones_like(p.var)
        return Points(one, one, one, p.ntk / p.var)

    def pairs(self, state: Pairs, p1, p2, q1, q2, xp=np, ntk: bool = True) -> Pairs:
        scale = _outer(p1.inv_root, p2.inv_root)
        new_ntk = scale * state.ntk if ntk and state.ntk is not None else None
        prev = state.gaps

        def gaps(rows, cols):
            k = p1.inv_root[rows] * p2.inv_root[cols]
            return tuple(k * g for g in prev(rows, cols))

        return Pairs(scale * state.cov, new_ntk, state.angle, gaps, state.bounds)


@dataclass(frozen=True)
class Fork:
    """The start of a residual block: the engine keeps the state to add back at `Join`."""

    name: str = "Residual"


@dataclass(frozen=True)
class Join:
    """The end of a residual block: out = block + skip (Σ, Θ and gaps add)."""

    name: str = "Residual"

    def points(self, skip: Points, block: Points, xp: types.ModuleType = np) -> Points:
        return points(block.var + skip.var, block.ntk + skip.ntk, xp)

    def pairs(
        self, skip: Pairs, block: Pairs, s1, s2, b1, b2, q1, q2, xp=np, ntk: bool = True
    ) -> Pairs:
        new_ntk = None
        if ntk:
            parts = [t for t in (block.ntk, skip.ntk) if t is not None]
            new_ntk = (
                parts[0] + parts[1] if len(parts) == 2 else (parts[0].copy() if parts else None)
            )
        gaps = sum_gaps(block.gaps, skip.gaps, b1, b2, s1, s2, q1, q2)
        # the block started from the skip's state: its bounds include the skip's
        return Pairs(block.cov + skip.cov, new_ntk, None, gaps, block.bounds)
