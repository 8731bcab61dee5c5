"""A two-dimensional rule for the few pairs the Mehler series leaves: near ρ = ±1, at large
variances or with kinks.

With u = √q₁ z₁, v = √q₂ (c z₁ + s z₂) (c = cos θ, s = sin θ, z₁, z₂ independent N(0, 1)),

    T₁₂ = 𝔼[φ(u) φ(v)],   Ṫ₁₂ = 𝔼[φ'(u) φ'(v)],
    g₋ = ½ 𝔼[(φ(u) − φ(v))²] − ½ (√T₁₁ − √T₂₂)²,   g₊ = ½ 𝔼[(φ(u) + φ(v))²] − ½ (√T₁₁ − √T₂₂)²,

the gaps without cancellation: for c > 0, φ(u) − φ(v) = (u − v) ∫₀¹ φ'(v + t(u − v)) dt
(Gauss–Legendre in t), with u − v = (√q₁ − √q₂) z₁ + √q₂ (1 − c) z₁ − √q₂ s z₂ and
1 − c = s²/(1 + c); for an odd φ and c < 0, φ(u) + φ(v) = φ(u) − φ(−v) likewise. (The other
gap is not small there, and is summed directly.)

Nodes. Smooth φ: the trapezoidal rule in both variables, with the x-resolution h_x that made
the one-dimensional coefficients converge: step h_x/max(√q₁, √q₂, 1) in z₁ and h_x/max(s√q₂, 1)
in z₂ (the inner integrand varies on the scale 1/(s√q₂), so near ρ = ±1 few nodes do).
Kinked φ: composite Gauss–Legendre, the outer panels split at the kinks x_j/√q₁ and around
x_j/(c√q₂) (where v's kink crosses z₂ = 0) in steps of s/|c|, the width over which the inner
integral smooths that kink; the inner integral is split at z₂ = (x_j/√q₂ − c z₁)/s for every
outer node, so every piece is analytic. One pair at a time: these pairs are few.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Gauss–Legendre nodes of the mean-value integral ∫₀¹ φ'(v + t(u − v)) dt.
_MEAN_NODES = 6
#: Gauss–Legendre nodes per outer panel, per inner piece (kinked φ).
_PANEL_NODES, _PIECE_NODES = 16, 64


def _legendre01(n: int):
    t, w = np.polynomial.legendre.leggauss(n)
    return (t + 1) / 2, w / 2


def _density(z, xp):
    return xp.exp(-z * z / 2) / math.sqrt(2 * math.pi)


class PairRule:
    """The rule for one activation (phi, dphi array functions; kinks; odd: φ(−x) = −φ(x))."""

    def __init__(self, phi: Callable, dphi: Callable, kinks: tuple[float, ...], odd: bool, xp=np):
        self.phi, self.dphi, self.kinks, self.odd, self.xp = phi, dphi, kinks, odd, xp
        self._t, self._wt = (xp.asarray(a) for a in _legendre01(_MEAN_NODES))

    def __call__(self, q1, q2, cos, sin, T1, T2, resolution: float, window: float):
        """(T₁₂, Ṫ₁₂, g₋, g₊) on 1-D arrays of pairs."""
        xp = self.xp
        out = [xp.empty(cos.shape) for _ in range(4)]
        for i in range(cos.shape[0]):
            vals = self.one(
                float(q1[i]), float(q2[i]), float(cos[i]), float(sin[i]), resolution, window
            )
            mismatch = (
                0.5
                * (float(T1[i]) - float(T2[i])) ** 2
                / (math.sqrt(float(T1[i])) + math.sqrt(float(T2[i])) or 1.0) ** 2
            )
            out[0][i], out[1][i] = vals[0], vals[1]
            out[2][i], out[3][i] = vals[2] - mismatch, vals[3] - mismatch
        return tuple(out)

    def nodes(self, q1, q2, c, s, resolution, window):
        """(z1 (N1,), w1 (N1,), z2 (N1, N2) or (N2,), w2 likewise); weights include ϕ."""
        xp = self.xp
        L, inner = window, 2 * window / 3
        r1, r2 = math.sqrt(q1), math.sqrt(q2)
        if not self.kinks:
            h1 = resolution / max(r1, r2, 1.0)
            n1 = int(2 * L / h1) | 1
            z1 = xp.linspace(-L, L, n1)
            w1 = _density(z1, xp) * (2 * L / (n1 - 1))
            h2 = resolution / max(s * r2, 1.0)
            n2 = int(2 * inner / h2) | 1
            z2 = xp.linspace(-inner, inner, n2)
            return z1, w1, z2, _density(z2, xp) * (2 * inner / (n2 - 1))
        width = min(1.0, 1.0 / max(r1, r2, 1e-300))
        edges = [np.linspace(-L, L, int(2 * L / width) + 1)]
        for x in self.kinks:
            if r1 > 0:
                edges.append([x / r1])
            if r2 * c != 0:
                # v's kink crosses the inner window for |z₁ − x/(c√q₂)| ≤ (s/|c|)·window: there
                # the inner integral is a kink smoothed over s/|c|, so panels of that width
                steps = np.arange(-np.ceil(inner), np.ceil(inner) + 1)
                edges.append(x / (r2 * c) + (s / abs(c)) * steps)
        edges = np.unique(np.clip(np.concatenate(edges), -L, L))
        t, wt = np.polynomial.legendre.leggauss(_PANEL_NODES)
        half = np.diff(edges)[:, None] / 2
        z1 = ((edges[:-1, None] + edges[1:, None]) / 2 + half * t).ravel()
        w1 = (half * wt).ravel()
        w1 = w1 * np.exp(-z1 * z1 / 2) / math.sqrt(2 * math.pi)
        if s == 0 or r2 == 0:
            splits = np.zeros((z1.size, 0))
        else:
            splits = np.stack([(x / r2 - c * z1) / s for x in self.kinks], axis=1)
        splits = np.sort(np.clip(splits, -inner, inner), axis=1)
        ends = np.full((z1.size, 1), inner)
        pieces = np.concatenate([-ends, splits, ends], axis=1)  # (N1, J+2)
        t, wt = np.polynomial.legendre.leggauss(_PIECE_NODES)
        lo, hi = pieces[:, :-1, None], pieces[:, 1:, None]
        half = (hi - lo) / 2
        z2 = ((lo + hi) / 2 + half * t).reshape(z1.size, -1)
        w2 = (half * wt).reshape(z1.size, -1) * np.exp(-z2 * z2 / 2) / math.sqrt(2 * math.pi)
        return tuple(xp.asarray(a) for a in (z1, w1, z2, w2))

    def one(self, q1, q2, c, s, resolution, window):
        """(T₁₂, Ṫ₁₂, ½𝔼[(φu − φv)²], ½𝔼[(φu + φv)²]) of one pair."""
        xp = self.xp
        z1, w1, z2, w2 = self.nodes(q1, q2, c, s, resolution, window)
        r1, r2 = math.sqrt(q1), math.sqrt(q2)
        z1c = z1[:, None]
        u = r1 * z1c
        v = r2 * (c * z1c + s * z2)
        weights = w1[:, None] * w2
        fu, fv = self.phi(u), self.phi(v)
        gu, gv = self.dphi(u), self.dphi(v)
        T12 = xp.sum(weights * fu * fv)
        Td12 = xp.sum(weights * gu * gv)
        # 1 − c and 1 + c from s where they are small
        one_minus = s * s / (1 + c) if c > 0 else 1 - c
        one_plus = s * s / (1 - c) if c < 0 else 1 + c
        root_diff = (q1 - q2) / (r1 + r2) if r1 + r2 > 0 else 0.0
        diff = root_diff * z1c + r2 * one_minus * z1c - r2 * s * z2  # u − v
        total = root_diff * z1c + r2 * one_plus * z1c + r2 * s * z2  # u + v
        # the mean-value form only where the segment is short (the gap small); else directly
        minus = diff * self._mean_slope(v, diff) if c > 0 else fu - fv
        plus = total * self._mean_slope(-v, total) if self.odd and c < 0 else fu + fv
        return (
            float(T12),
            float(Td12),
            0.5 * float(xp.sum(weights * minus * minus)),
            0.5 * float(xp.sum(weights * plus * plus)),
        )

    def _mean_slope(self, start, step):
        """∫₀¹ φ'(start + t·step) dt by Gauss–Legendre."""
        total = 0.0
        for t, w in zip(self._t.tolist(), self._wt.tolist(), strict=True):
            total = total + w * self.dphi(start + t * step)
        return total


__all__ = ["PairRule"]
