"""Gaussian expectations by a 2-D quadrature rule: the former default for activations without a
closed form, now selected by an explicit ``degree=`` (and used on the CuPy backend); the default
is the Hermite series (`series`), which needs no evaluation of φ per pair.

For u ~ N(0, q11), v ~ N(0, q22) with correlation cos θ write

    u = √q11 z₁,   v = √q22 (cos θ z₁ + sin θ z₂),   z₁, z₂ ~ N(0, 1) independent,

and approximate 𝔼[φ(u)φ(v)] = Σᵢⱼ wᵢ wⱼ φ(√q11 zᵢ) φ(√q22 (cos θ zᵢ + sin θ zⱼ)). Using the angle
rather than q12 keeps identical and antipodal inputs exact (sin θ = 0).

The rule is the trapezoidal rule on |z| ≤ 8.5 (the Gaussian tail beyond is below 1e-16) with
weights ∝ e^{−z²/2}. For integrands analytic in a strip |Im z| < τ it converges like e^{−2πτ/h}
in the step h, much faster than Gauss–Hermite, which converges only like e^{−τ√(2n)} there:
tanh(√q z) has poles at τ = π/(2√q). Measured against 25-digit mpmath integration
(tests/test_quadrature.py) for tanh at variances up to 3: Gauss–Hermite with 64 nodes errs by
~5e-5, 25 nodes by ~1e-2; this rule with the default 128 nodes by ~1e-15, and still ~2e-11 at
variance 6. Nodes needed grow like √q: at variance ~200 (inputs 16× longer than the unit scale)
tanh's default rule errs by ~3e-4, which also shows as an asymmetry K(x, x') ≠ K(x', x) of that
size; pass ``degree=512`` (error ~1e-12 there) when variances are large. Kinked activations
(ELU: a jump in φ') converge only algebraically; use a closed form where one exists.
"""

from __future__ import annotations

import numpy as np

from ..numeric.dual import CompiledDual, direct_gaps
from ..symbolic.activations import Activation
from .backends import array_module, compile_phi

#: Pair blocks are evaluated this many pairs at a time, to bound the (pairs × degree) temporary.
_PAIR_CHUNK = 2048


#: Half-width of the integration window in standard deviations: e^{−8.5²/2} ≈ 2e-16.
WINDOW = 8.5


def gaussian_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoidal nodes on [−WINDOW, WINDOW] and weights ∝ e^{−z²/2}, summing to 1."""
    if degree < 8:
        raise ValueError(f"quadrature degree must be at least 8, got {degree}")
    nodes = np.linspace(-WINDOW, WINDOW, degree)
    weights = np.exp(-nodes * nodes / 2)
    return nodes, weights / weights.sum()


def compile_quadrature(act: Activation, backend: str, degree: int) -> CompiledDual:
    """A `CompiledDual` whose expectations are quadrature sums (see the module docstring)."""
    xp = array_module(backend)
    phi, dphi = compile_phi(act, backend)
    z, w = (xp.asarray(a) for a in gaussian_rule(degree))

    def diag(q):
        u = xp.sqrt(q)[..., None] * z
        return phi(u) ** 2 @ w, dphi(u) ** 2 @ w

    def expectations(a, b, cos, sin):
        # a, b, cos, sin: 1-D arrays of one chunk of pairs
        u = xp.sqrt(a)[:, None] * z  # (m, i)
        v = xp.sqrt(b)[:, None, None] * (
            cos[:, None, None] * z[None, :, None] + sin[:, None, None] * z
        )  # (m, i, j)
        inner = phi(v) @ w  # (m, i)
        inner_d = dphi(v) @ w
        return (phi(u) * inner) @ w, (dphi(u) * inner_d) @ w

    def pair(a, b, th, cos, sin, T11, T22):
        full = xp.broadcast_arrays(a, b, cos, sin)
        shape = full[0].shape
        a, b, cos, sin = (x.ravel() for x in full)
        T12 = xp.empty(cos.size, dtype=cos.dtype)
        Tdot = xp.empty(cos.size, dtype=cos.dtype)
        for start in range(0, cos.size, _PAIR_CHUNK):
            sl = slice(start, start + _PAIR_CHUNK)
            T12[sl], Tdot[sl] = expectations(a[sl], b[sl], cos[sl], sin[sl])
        return T12.reshape(shape), Tdot.reshape(shape)

    return CompiledDual(diag, pair, direct_gaps, "quadrature")
