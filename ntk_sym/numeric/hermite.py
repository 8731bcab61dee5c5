"""Hermite coefficients of an activation by one-dimensional quadrature, and the series on tiles.

For u = √q z, z ~ N(0, 1), the normalised Hermite coefficients of φ are

    c_k(q) = 𝔼[φ(√q z) h_k(z)],   h_k = He_k/√k!  (orthonormal under the Gaussian),

and Mehler's formula gives, for corr(z₁, z₂) = ρ,

    T(q₁, q₂, ρ) = 𝔼[φ(√q₁ z₁) φ(√q₂ z₂)] = Σ_k c_k(q₁) c_k(q₂) ρ^k.

Truncated after K terms the error is at most |ρ|^{K+1} √(r_K(q₁) r_K(q₂)) (Cauchy–Schwarz), with
r_K(q) = Σ_{k>K} c_k(q)² = 𝔼[φ(u)²] − Σ_{k≤K} c_k(q)².

Quadrature. c_k = ∫ φ(√q z) ψ_k(z) ϕ(z)^{1/2} dz with the Hermite functions ψ_k = h_k ϕ^{1/2}
(|ψ_k| ≤ 1, computed by their three-term recurrence, no overflow), so the integrand is below
10⁻¹⁸ of its size beyond |z| = `WINDOW` whatever k. Smooth φ: the trapezoidal rule on
[−L, L], which converges like e^{−2πτ/h} for an integrand analytic in the strip |Im z| < τ (tanh:
τ = π/(2√q), so the step needed shrinks like 1/√q); the step is halved until the coefficients
stop changing, so variance 50 is as accurate as variance 1. Kinked φ (Max, Abs, Piecewise, ...):
Gauss–Legendre on the pieces between the kinks x_j/√q, each analytic, refined the same way.
The tails r_k are summed from the computed coefficients (not by subtraction), plus the remainder
beyond the last coefficient, 𝔼[φ²] − Σ c_k², which is only known to rounding: it is floored at
`REMAINDER_FLOOR`, so the bound never claims more than the arithmetic can deliver.

Everything here is NumPy (or CuPy) on arrays; φ and φ' arrive as array functions.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NTKSymError

#: Half-width in standard deviations of the first window tried: ϕ(z)^{1/2} ≈ 1e-20 there.
WINDOW = 13.5
#: Widest window tried before the Gaussian moments are declared divergent.
MAX_WINDOW = 40.0
#: Relative size |φ(√q L)| ϕ(L)^{1/2} / √𝔼[φ²] below which the window edge L is negligible.
EDGE = 1e-18
#: Relative change of the coefficients between a rule and its refinement that ends refinement
#: (trapezoidal and Gauss–Legendre errors then are ~ this squared; rounding is ~1e-15).
REFINE_TOL = 1e-12
#: Relative floor of the tail remainder beyond the last coefficient: 𝔼[φ²] − Σ c_k² is a
#: difference of numbers ~𝔼[φ²] summed over ~1000 nodes, known to ~1e-14 at best.
REMAINDER_FLOOR = 1e-14
#: Coefficients computed at most (and the first count tried).
MAX_TERMS, FIRST_TERMS = 1024, 64
#: Gauss–Legendre nodes per panel, and the panels per piece (between kinks) first and last tried.
PANEL_NODES = 32
FIRST_PANELS, MAX_PANELS = 4, 256
#: Trapezoidal nodes per unit √q·z: the first rule has 12 per unit of x (φ's own scale), at
#: least this many in total; refinement doubles up to MAX_TRAPEZOID.
MIN_TRAPEZOID, MAX_TRAPEZOID = 128, 16384


@dataclass(frozen=True)
class HermiteData:
    """Coefficients of φ and φ' at n variances, packed for the engine (`pack`, `unpack`).

    c, d: (K+1, n) coefficients of φ and φ';  rc, rd: (K+1, n) tails r_k = Σ_{j>k} c_j² (resp.
    d_j²) including the floored remainder;  T, Tdot: (n,) 𝔼[φ²], 𝔼[φ'²];  slope: (n,)
    Σ_k k d_k² = q 𝔼[φ''²] (truncated), for first-order error propagation;  resolution,
    window: the x-step and the half-width in z of the rule that converged (scalars).
    """

    c: object
    d: object
    rc: object
    rd: object
    T: object
    Tdot: object
    slope: object
    resolution: float
    window: float

    @property
    def terms(self) -> int:
        return self.c.shape[0]

    def pack(self, xp: types.ModuleType = np):
        """One (4(K+1) + 5, n) array: c, d, rc, rd, then rows T, Ṫ, slope, resolution, window."""
        n = self.T.shape[0]
        rows = [self.T, self.Tdot, self.slope, xp.full(n, self.resolution), xp.full(n, self.window)]
        return xp.concatenate([self.c, self.d, self.rc, self.rd, xp.stack(rows)])

    @classmethod
    def unpack(cls, array) -> HermiteData:
        m = (array.shape[0] - 5) // 4
        parts = (array[j * m : (j + 1) * m] for j in range(4))
        tail = array[4 * m :]
        # (m, n), or (m, *S, n) for the conv engine's points per (position, image)
        scalar = (float(tail[3].flat[0]), float(tail[4].flat[0])) if array[0].size else (
            1.0, WINDOW)
        return cls(*parts, tail[0], tail[1], tail[2], *scalar)


def hermite_functions(z, terms: int, xp: types.ModuleType = np):
    """ψ_k(z) = h_k(z) ϕ(z)^{1/2} for k < terms, shape (terms,) + z.shape.

    ψ₀ = (2π)^{−1/4} e^{−z²/4}, ψ₁ = z ψ₀, ψ_{k+1} = (z ψ_k − √k ψ_{k−1})/√(k+1).
    """
    out = xp.empty((terms,) + z.shape)
    out[0] = (2 * math.pi) ** -0.25 * xp.exp(-z * z / 4)
    if terms > 1:
        out[1] = z * out[0]
    for k in range(1, terms - 1):
        out[k + 1] = (z * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


def gauss_legendre_pieces(edges, panels: int):
    """Composite Gauss–Legendre nodes and dz-weights on consecutive pieces [edges[i], edges[i+1]],
    each cut into `panels` equal panels of `PANEL_NODES` nodes.

    edges: (..., P+1) non-decreasing; returns z, w of shape (..., P·panels·PANEL_NODES).
    Refinement adds panels rather than nodes: NumPy's high-order rules (leggauss beyond ~100
    nodes) carry errors of ~1e-14, which would floor the coefficients there.
    """
    t, wt = np.polynomial.legendre.leggauss(PANEL_NODES)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    cuts = lo + (hi - lo) * (np.arange(panels + 1) / panels)  # (..., P, panels+1)
    a, b = cuts[..., :-1, None], cuts[..., 1:, None]
    half = (b - a) / 2
    z = (a + b) / 2 + half * t
    w = half * wt + 0 * z
    shape = edges.shape[:-1] + (-1,)
    return z.reshape(shape), w.reshape(shape)


class Coefficients:
    """The 1-D rules of one activation: `compute(q)` gives the `HermiteData` at variances q.

    phi, dphi: array functions φ, φ'.  kinks: the points x_j where φ or φ' is not analytic.
    name: for error messages.
    """

    def __init__(
        self,
        phi: Callable,
        dphi: Callable,
        kinks: tuple[float, ...],
        name: str,
        xp: types.ModuleType = np,
    ):
        self.phi, self.dphi, self.kinks, self.name, self.xp = phi, dphi, kinks, name, xp
        self.last_nodes: int | None = None

    # -- rules ----------------------------------------------------------------------------------
    def window(self, q) -> float:
        """The smallest window L (from WINDOW up) at which φ's integrand is negligible."""
        xp = self.xp
        root = xp.sqrt(xp.max(q)) if q.size else 0.0
        scale = None
        L = WINDOW
        while True:
            z = xp.linspace(-L, L, 257)
            vals = self.phi(root * z)
            if not bool(xp.all(xp.isfinite(vals))):
                raise NTKSymError(
                    f"{self.name}: φ(u) is non-finite (overflow or a pole) for u within "
                    f"{L:g} standard deviations at the variance {float(root) ** 2:.4g}: its "
                    "Gaussian moments diverge or do not exist there"
                )
            if scale is None:
                weight = xp.exp(-z * z / 2)
                scale = float(xp.sqrt(xp.sum(vals * vals * weight) * (2 * L / 256))) or 1.0
            edge = float(xp.max(xp.abs(vals[[0, -1]]))) * math.exp(-L * L / 4)
            if edge <= EDGE * scale:
                return L
            if L >= MAX_WINDOW:
                raise NTKSymError(
                    f"{self.name}: the Gaussian moments of φ diverge (or are not float64-"
                    f"representable) at the variance {float(root) ** 2:.4g}: |φ(u)|·e^{{−u²/(4q)}} "
                    f"is still {edge / scale:.1e} of 𝔼[φ²]^{{1/2}} at {L:g} standard deviations"
                )
            L = min(MAX_WINDOW, L * 1.5)

    def compute(self, q, terms: int, nodes: int | None = None) -> HermiteData:
        """`HermiteData` with `terms` coefficients at the variances q (1-D array).

        nodes: the rule to start refining from (e.g. `last_nodes` of a call with fewer terms);
        the rule that converged is left in `last_nodes`.
        """
        xp = self.xp
        q = xp.asarray(q, dtype=float)
        L = self.window(q)
        root = max(float(xp.sqrt(xp.max(q))) if q.size else 0.0, 1.0)
        if self.kinks:
            nodes, (c, d, T, Tdot) = self._refine(
                lambda n: self._pieces(q, L, terms, n), nodes or FIRST_PANELS, MAX_PANELS, q
            )
            resolution = 2 * L * root / (nodes * PANEL_NODES)
        else:
            first = nodes or max(MIN_TRAPEZOID, int(2 * L * root * 6) | 1)
            if 2 * first > MAX_TRAPEZOID:  # no second rule to compare with: refuse up front
                raise NTKSymError(
                    f"{self.name}: the pre-activation variance {float(xp.max(q)):.4g} is too "
                    f"large for the Hermite series' quadrature ({first} nodes needed to resolve "
                    f"φ, at most {MAX_TRAPEZOID // 2} to start from)"
                )
            nodes, (c, d, T, Tdot) = self._refine(
                lambda n: self._trapezoid(q, L, terms, n), first, MAX_TRAPEZOID, q
            )
            resolution = 2 * L * root / (nodes - 1)
        # the coarser of the two rules compared was already converged: start there next time
        self.last_nodes = nodes // 2
        slope = (xp.arange(terms)[:, None] * d * d).sum(0)
        return HermiteData(c, d, _tails(c, T), _tails(d, Tdot), T, Tdot, slope, resolution, L)

    def _refine(self, rule: Callable, first: int, last: int, q):
        xp = self.xp
        n, previous = first, None
        while True:
            now = rule(n)
            if previous is not None:
                change = 0.0
                for j in (0, 1):  # coefficients relative to √T, and T itself
                    scale = xp.maximum(now[2 + j], 1e-300)
                    moved = xp.abs(now[j] - previous[j]) / xp.sqrt(scale)
                    change = max(change, float(xp.max(moved)))
                    moved = xp.abs(now[2 + j] - previous[2 + j]) / scale
                    change = max(change, float(xp.max(moved)))
                if change <= REFINE_TOL:
                    return n, now
            if 2 * n > last:
                raise NTKSymError(
                    f"{self.name}: the Hermite coefficients did not converge with {n} nodes "
                    f"at variances up to {float(xp.max(q)):.4g} (last relative change "
                    f"{change:.1e}); is φ smooth between its kinks?"
                )
            previous, n = now, 2 * n

    def _trapezoid(self, q, L: float, terms: int, nodes: int):
        """(c, d, T, Ṫ) by the trapezoidal rule with `nodes` nodes on [−L, L] (one GEMM each)."""
        xp = self.xp
        z = xp.linspace(-L, L, nodes)
        psi = hermite_functions(z, terms, xp)  # (K+1, N)
        # the step from its definition: z[1] − z[0] would lose ~1e-13 to the rounding of z[0] = −L
        return self._project(xp.sqrt(q)[:, None] * z, xp.full(nodes, 2 * L / (nodes - 1)), psi)

    def _project(self, u, w, psi):
        """(c, d, T, Ṫ) from φ, φ' at u = √q z, the dz-weights w and ψ_k(z) (ψ₀ = ϕ^{1/2}).

        c_k = Σ w φ ψ₀ ψ_k,  T = Σ w φ² ψ₀²; psi is (K+1, N) shared by all points.
        """
        f, g = self._values(u)
        root_density = w * psi[0]
        c, d = psi @ (f * root_density).T, psi @ (g * root_density).T  # (K+1, n)
        density = root_density * psi[0]
        return c, d, (f * f) @ density, (g * g) @ density

    def _values(self, u):
        xp = self.xp
        f, g = self.phi(u), self.dphi(u)
        if not (bool(xp.all(xp.isfinite(f))) and bool(xp.all(xp.isfinite(g)))):
            raise NTKSymError(f"{self.name}: φ or φ' is not finite at some quadrature node")
        return f, g

    def _pieces(self, q, L: float, terms: int, panels: int):
        """(c, d, T, Ṫ) by Gauss–Legendre on the pieces between the kinks x_j/√q."""
        xp = self.xp
        root = xp.sqrt(q)
        if all(k == 0 for k in self.kinks):  # the common case: one split at z = 0 for every q
            z, w = (xp.asarray(a) for a in gauss_legendre_pieces(np.array([-L, 0.0, L]), panels))
            return self._project(root[:, None] * z, w, hermite_functions(z, terms, xp))
        safe = xp.where(root > 0, root, 1.0)
        splits = xp.clip(xp.asarray(self.kinks)[None, :] / safe[:, None], -L, L)
        ends = xp.full((q.size, 1), L)
        edges = xp.concatenate([-ends, xp.sort(splits, axis=1), ends], axis=1)
        z, w = gauss_legendre_pieces(edges, panels)  # (n, nodes): every point its own pieces
        f, g = self._values(root[:, None] * z)
        psi0 = (2 * math.pi) ** -0.25 * xp.exp(-z * z / 4)
        fw, gw = f * w * psi0, g * w * psi0
        c, d = xp.empty((terms, q.size)), xp.empty((terms, q.size))
        prev, cur = xp.zeros_like(z), psi0
        for k in range(terms):  # the recurrence of `hermite_functions`, one order at a time
            c[k], d[k] = (fw * cur).sum(1), (gw * cur).sum(1)
            prev, cur = cur, (z * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
        density = w * psi0 * psi0
        return c, d, (f * f * density).sum(1), (g * g * density).sum(1)


def _tails(c, T):
    """r_k = Σ_{j>k} c_j² + max(T − Σ_j c_j², REMAINDER_FLOOR·T), summed from the top."""
    sq = c * c
    rest = T - sq.sum(0)
    floor = REMAINDER_FLOOR * T
    rest = rest * (rest > floor) + floor * (rest <= floor)
    suffix = sq[::-1].cumsum(0)[::-1]  # Σ_{j≥k}
    r = suffix - sq + rest
    return r
