"""The numeric maps of the convolutional layers on a tile of pair kernels.

A tile's state (`Pairs`) holds Σ and Θ as pair arrays (`layout.Layout`) and a function giving
the cancellation-free gaps g∓ = √(Σ₁₁Σ₂₂) ∓ Σ₁₂ ≥ 0 at chosen entries. Every step gets the
per-point variances v₁ = Σ(x, x)[p, p], v₂ = Σ(x', x')[p', p'] of its input and returns the
state after it (s = σ_w², b = σ_b², k = the window's offset count):

* `ConvStep`: Σ' = s·(1/k)Σ_δ Σ[p+δ, p'+δ] + b, Θ' = Σ' + s·(1/k)Σ_δ Θ[p+δ, p'+δ].
* `PoolStep` (AvgPool): Σ' = (1/k²)Σ_{δ,δ'} Σ[p+δ, p'+δ'], the same for Θ.
* `ActivationStep`: Σ' = T(v₁, Σ, v₂), Θ' = Ṫ·Θ entrywise, from a compiled dual.
* `ReadoutStep`: GlobalAvgPool (mean over all pixel pairs) or Flatten (mean over p = p').
* `DenseStep`: Σ' = sΣ + b, Θ' = Σ' + sΘ (standard: Σ + 1 + sΘ), entrywise.

Angles. An activation needs θ between the two positions. It takes cos θ = Σ/√(v₁v₂) directly
where |cos θ| ≤ `NEAR_COS`, and elsewhere forms θ from the gaps P = g₋, Q = g₊ by
θ = atan2(2√(PQ), Q − P), without cancellation. A Conv's gaps follow from those of its input:
the window sum A = Σ_δ a_δ of the 2×2 blocks a_δ = [[u_δ², a₁₂], [a₁₂, v_δ²]] has

    g∓(A) = Σ_δ g∓(a_δ) + W / (√(Σu²·Σv²) + Σ u_δ v_δ),   W = Σ_{δ<δ'} (u_δ v_δ' − u_δ' v_δ)²

(Lagrange's identity for √(Σu²Σv²) − Σuv), so every term is ≥ 0 and identical receptive fields
give g₋ = 0 exactly; the bias adds M = sb(√m₁ − √m₂)²/(√(Σ'₁₁Σ'₂₂) + s√(m₁m₂) + b) with m the
window means of u², v² (the gap-addition identity of the Dense layer). After AvgPool and the
readout, whose terms are correlated, the gaps are the direct ones written as
g₋ = ((v₁ + v₂)/2 − Σ) − (√v₁ − √v₂)²/2, which is exactly 0 when Σ = v₁ = v₂, so identical
receptive fields (and identical images) stay exact there too; near-duplicates that are not
identical then get θ to ~√ε only.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..dual import CompiledDual
from .layout import Layout
from .window import Window, window_sum

#: Entries with |cos θ| above this get their angle from the gaps. Below it sin θ ≥ 0.014, and
#: an error of a few ulps in Σ/√(v₁v₂) moves θ = arccos by at most ~1e-13, ~ε/sin θ.
NEAR_COS = 1.0 - 1e-4

#: gaps(idx) -> (g₋, g₊) at the pair entries idx (a tuple of index arrays, as np.nonzero gives).
Gaps = Callable[[tuple], tuple[object, object]]


@dataclass(frozen=True)
class Pairs:
    """Σ and Θ of a tile (Θ is None while it is zero, or when not wanted) and Σ's gaps
    (None: the direct form, from Σ and the variances, see the module docstring)."""

    cov: object
    ntk: object
    gaps: Gaps | None
    #: the error bound a dual with ``reports_bound`` returned at this step (`numeric.dual`)
    bound: tuple | None = None


def input_pairs(X1, X2, lay: Layout, xp: types.ModuleType = np) -> Pairs:
    """Σ⁰[p, p'] = x_p·x'_{p'}/C of images X1 (t₁, *S, C), X2 (t₂, *S, C), Θ⁰ = 0, and gaps
    from the unit pixel vectors: g∓ = |x_p||x'_{p'}|/C · ‖x̂_p ∓ x̂'_{p'}‖²/2."""
    channels = X1.shape[-1]
    letters = "hwl"[: lay.nd]
    first = "a" + letters + "z"
    second = ("a" if lay.zipped else "b") + (letters.upper() if lay.full else letters) + "z"
    target = letters + (letters.upper() if lay.full else "") + ("a" if lay.zipped else "ab")
    cov = xp.einsum(f"{first},{second}->{target}", X1, X2) / channels

    def units(X):
        X = xp.moveaxis(X, 0, -2)  # (*S, t, C): indexed by (*position, image)
        norm = xp.sqrt(xp.einsum("...c,...c->...", X, X))
        safe = xp.where(norm > 0, norm, 1.0)
        return X / safe[..., None], norm / np.sqrt(channels)

    U1, r1 = units(X1)
    U2, r2 = (U1, r1) if X2 is X1 else units(X2)

    def gaps(idx):
        left, right = lay.split(idx)
        a, b = U1[left], U2[right]
        scale = r1[left] * r2[right] / 2.0
        return scale * ((a - b) ** 2).sum(-1), scale * ((a + b) ** 2).sum(-1)

    return Pairs(cov, None, gaps)


def _inv_root(v, xp):
    root = xp.sqrt(v)
    return xp.where(root > 0, 1.0 / xp.where(root > 0, root, 1.0), 0.0)


def variance_gaps(cov, v1, v2, lay: Layout, xp: types.ModuleType = np) -> Gaps:
    """g∓ from Σ and the variances, with g₋ = ((v₁ + v₂)/2 − Σ) − (√v₁ − √v₂)²/2 (exactly 0
    when Σ = v₁ = v₂) and g₊ = ((v₁ + v₂)/2 + Σ) − (√v₁ − √v₂)²/2."""

    def gaps(idx):
        left, right = lay.split(idx)
        a, c, s = v1[left], v2[right], cov[idx]
        mean, spread = (a + c) / 2.0, (xp.sqrt(a) - xp.sqrt(c)) ** 2 / 2.0
        return (mean - s) - spread, (mean + s) - spread

    return gaps


def angle(state: Pairs, v1, v2, lay: Layout, needs_theta: bool, xp: types.ModuleType = np):
    """(θ or None, cos θ, sin θ) of the state's Σ (module docstring). A position of zero
    variance has no direction: θ = π/2 there, which gives the exact covariance 0."""
    cos = xp.multiply(lay.left(_inv_root(v1, xp)), lay.right(_inv_root(v2, xp)))
    cos *= state.cov
    sin = xp.multiply(cos, cos)
    near = sin > NEAR_COS**2  # |cos θ| > NEAR_COS, rounding beyond 1 included
    xp.subtract(1.0, sin, out=sin)
    xp.sqrt(sin, out=sin)  # NaN where |cos θ| > 1: those entries are near, redone below
    theta = xp.arccos(cos) if needs_theta else None
    if xp.any(near):
        # nonzero of the flat mask, then unravel: much cheaper than nonzero of an n-D mask
        idx = xp.unravel_index(xp.flatnonzero(near), near.shape)
        gaps = state.gaps or variance_gaps(state.cov, v1, v2, lay, xp)
        P, Q = (xp.maximum(g, 0.0) for g in gaps(idx))
        y, x, total = 2.0 * xp.sqrt(P * Q), Q - P, P + Q
        cos[idx], sin[idx] = x / total, y / total
        if theta is not None:
            theta[idx] = xp.arctan2(y, x)
    return theta, cos, sin


def _affine_gaps(gm, gp, m1, m2, s: float, b: float, xp):
    """Gaps of sA + b from those of A with variances m₁, m₂ (the Dense identity)."""
    if b == 0:
        return s * gm, s * gp
    r1, r2 = xp.sqrt(m1), xp.sqrt(m2)
    mismatch = s * b * (r1 - r2) ** 2 / (
        xp.sqrt(s * m1 + b) * xp.sqrt(s * m2 + b) + s * (r1 * r2) + b)
    return s * gm + mismatch, s * gp + mismatch + 2.0 * b


def window_gaps(prev: Gaps, v1, v2, lay: Layout, window: Window, shape, s: float, b: float,
                xp: types.ModuleType = np) -> Gaps:
    """Gaps of a Conv's output from its input's gaps `prev` and variances (module docstring)."""
    root1, root2 = xp.sqrt(v1), xp.sqrt(v2)
    offsets = window.offsets()

    def gaps(idx):
        left, right = lay.split(idx)
        m = idx[0].shape[0]
        gm_sum, gp_sum = xp.zeros(m), xp.zeros(m)
        U, V = xp.zeros((len(offsets), m)), xp.zeros((len(offsets), m))
        for j, delta in enumerate(offsets):
            src1, ok1 = window.source(left, delta, shape)
            src2, ok2 = window.source(right, delta, shape)
            U[j] = xp.where(ok1, root1[src1], 0.0)
            V[j] = xp.where(ok2, root2[src2], 0.0)
            both = xp.nonzero(ok1 & ok2)[0]
            if both.size:
                gm, gp = prev(lay.join(tuple(a[both] for a in src1), tuple(a[both] for a in src2)))
                gm_sum[both] += gm
                gp_sum[both] += gp
        wedge = U[:, None, :] * V[None, :, :] - U[None, :, :] * V[:, None, :]
        W = (wedge**2).sum(axis=(0, 1)) / 2.0
        A1, A2 = (U**2).sum(0), (V**2).sum(0)
        den = xp.sqrt(A1) * xp.sqrt(A2) + (U * V).sum(0)
        extra = xp.where(den > 0, W / xp.where(den > 0, den, 1.0), 0.0)
        k = window.count
        return _affine_gaps((gm_sum + extra) / k, (gp_sum + extra) / k, A1 / k, A2 / k, s, b, xp)

    return gaps


@dataclass(frozen=True)
class ConvStep:
    """Σ' = s·(window mean of Σ) + b, Θ' = Σ' + s·(window mean of Θ)."""

    window: Window
    w_std: float
    b_std: float
    name: str = "Conv"

    def layout(self, lay: Layout) -> Layout:
        return lay

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True) -> Pairs:
        s, b = self.w_std**2, self.b_std**2
        scale = s / self.window.count
        groups = lay.groups()
        cov = window_sum(state.cov, groups, self.window, shape, xp)
        new_ntk = None
        if ntk and state.ntk is not None:
            # Θ' = Σ' + s·mean(Θ) = s·mean(Σ + Θ) + b: one window sum, the maps are linear
            new_ntk = window_sum(state.ntk, groups, self.window, shape, xp)
            new_ntk += cov
            new_ntk *= scale
            if b:
                new_ntk += b
        cov *= scale
        if b:
            cov += b
        if ntk and state.ntk is None:
            new_ntk = cov.copy()
        prev = state.gaps or variance_gaps(state.cov, v1, v2, lay, xp)
        return Pairs(cov, new_ntk, window_gaps(prev, v1, v2, lay, self.window, shape, s, b, xp))


@dataclass(frozen=True)
class PoolStep:
    """AvgPool: Σ' = (1/k²)Σ_{δ,δ'} Σ[p+δ, p'+δ'] (each image's position moves on its own)."""

    window: Window
    name: str = "AvgPool"

    def layout(self, lay: Layout) -> Layout:
        return lay

    def _pool(self, arr, lay: Layout, shape, xp):
        for group in lay.groups():
            arr = window_sum(arr, [group], self.window, shape, xp)
        arr /= self.window.count ** len(lay.groups())
        return arr

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True) -> Pairs:
        new_ntk = self._pool(state.ntk, lay, shape, xp) if ntk and state.ntk is not None else None
        return Pairs(self._pool(state.cov, lay, shape, xp), new_ntk, None)


@dataclass(frozen=True)
class ReadoutStep:
    """GlobalAvgPool ("gap": the mean over all pixel pairs) or Flatten ("flatten": over p = p')."""

    kind: str
    name: str = "GlobalAvgPool"

    def layout(self, lay: Layout) -> Layout:
        return lay.pooled()

    def _reduce(self, arr, lay: Layout, xp):
        if self.kind == "flatten" and lay.full:
            return lay.pixel_diagonal(arr).mean(-1)
        return arr.mean(axis=lay.spatial_axes())

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True) -> Pairs:
        new_ntk = self._reduce(state.ntk, lay, xp) if ntk and state.ntk is not None else None
        return Pairs(self._reduce(state.cov, lay, xp), new_ntk, None)


@dataclass(frozen=True)
class DenseStep:
    """Σ' = sΣ + b, Θ' = Σ' + sΘ (standard: Σ + 1 + sΘ), at every entry."""

    w_std: float
    b_std: float
    standard: bool = False
    name: str = "Dense"

    def layout(self, lay: Layout) -> Layout:
        return lay

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True) -> Pairs:
        s, b = self.w_std**2, self.b_std**2
        cov = xp.multiply(state.cov, s)
        cov += b
        new_ntk = None
        if ntk:
            new_ntk = state.cov + 1.0 if self.standard else cov.copy()
            if state.ntk is not None:
                new_ntk += s * state.ntk
        prev = state.gaps or variance_gaps(state.cov, v1, v2, lay, xp)

        def gaps(idx):
            left, right = lay.split(idx)
            gm, gp = prev(idx)
            return _affine_gaps(gm, gp, v1[left], v2[right], s, b, xp)

        return Pairs(cov, new_ntk, gaps)


@dataclass(frozen=True)
class ActivationStep:
    """Σ' = T(v₁, Σ, v₂), Θ' = Ṫ(v₁, Σ, v₂)·Θ at every entry, from a compiled dual."""

    dual: CompiledDual
    name: str = "Activation"

    def layout(self, lay: Layout) -> Layout:
        return lay

    @property
    def per_point(self):
        """The dual's per-point data map (the Hermite series' coefficients), or None."""
        return self.dual.per_point

    def pairs(self, state: Pairs, v1, v2, lay: Layout, shape, xp=np, ntk: bool = True,
              extra: tuple | None = None) -> Pairs:
        """`extra`: the dual's per-point data (m, *S, t) of both sets, for duals with
        `per_point` (then summed on the (position, image) grid, `CompiledDual.pair_grid`)."""
        dual = self.dual
        th, cos, sin = angle(state, v1, v2, lay, dual.needs_theta, xp)
        bound = None
        if extra is not None:
            grid, at = lay.grid, lay.points_grid
            T12, Tdot, bound, (T1, T2) = dual.pair_grid(
                grid(cos), grid(sin), at(v1), at(v2), at(extra[0]), at(extra[1]),
                **lay.grid_flags)
            T12, Tdot = T12.reshape(cos.shape), Tdot.reshape(cos.shape)
            T1, T2 = T1.reshape(v1.shape), T2.reshape(v2.shape)
        else:
            T1 = dual.diag(v1)[0]
            T2 = T1 if v2 is v1 else dual.diag(v2)[0]
            T12, Tdot = dual.pair(lay.left(v1), lay.right(v2), th, cos, sin, lay.left(T1),
                                  lay.right(T2))
        new_ntk = xp.multiply(Tdot, state.ntk) if ntk and state.ntk is not None else None

        def gaps(idx):
            left, right = lay.split(idx)
            a, c, t1, t2 = v1[left], v2[right], T1[left], T2[right]
            # duplicates (cos θ = 1, equal variances; every pixel with itself) have T₁₂ = T₁₁:
            # g₋ = 0 and g₊ = 2T₁₁ exactly, for any dual; the others go to the dual's gaps
            gm, gp = xp.zeros_like(a), 2.0 * xp.sqrt(t1 * t2)
            other = xp.nonzero((cos[idx] != 1.0) | (a != c))[0]
            if other.size:
                sub = tuple(i[other] for i in idx)
                some = {} if extra is None else {"extra": (
                    extra[0][(slice(None), *(i[other] for i in left))],
                    extra[1][(slice(None), *(i[other] for i in right))])}
                gm[other], gp[other] = dual.gaps(
                    a[other], c[other], None if th is None else th[sub], cos[sub], sin[sub],
                    t1[other], t2[other], T12[sub], **some)
            return gm, gp

        return Pairs(T12, new_ntk, gaps, bound)
