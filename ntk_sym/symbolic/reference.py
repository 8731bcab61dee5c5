"""The mpmath reference backend: a network's layer maps iterated at arbitrary precision.

This path is deliberately plain: pair by pair, it carries (Σ₁₁, Σ₁₂, Σ₂₂, Θ) in the covariance
form through the network's layer maps (`ntk_sym.symbolic.maps`), printed for mpmath
(`printing.MPMATH`) from the same SymPy expressions that `recursion` prints, with the
catalogue's closed forms (or a two-dimensional mpmath quadrature where there is none) at `dps`
digits. At 50 digits the cancellations that the float64 engine avoids by construction cost
nothing here, which is what makes it a reference for that engine.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath as mp
import numpy as np

from ..errors import NTKSymError
from .activations import Activation
from .maps import ActivationMap, Layer, ResidualMap
from .printing import MPMATH, compile_function
from .symbols import X, q11, q12, q22
from .traced import STATE, traced

State = tuple[mp.mpf, mp.mpf, mp.mpf, mp.mpf]


def gaussian_expectation(f: Callable, g: Callable, a: mp.mpf, c: mp.mpf, b: mp.mpf) -> mp.mpf:
    """𝔼[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by nested mpmath Gauss–Legendre quadrature.

    With u = √a z₁ and v = (c/√a) z₁ + √(b − c²/a) z₂ the integral runs over the square
    |z₁|, |z₂| ≤ L with L chosen so that the Gaussian tail e^{−L²/2} is below the working precision.
    The inner integral is split at v = 0 and the outer one at u = 0, where rectifiers have kinks, so
    each piece is smooth and the rule converges at its full rate.
    """
    norm = 1 / mp.sqrt(2 * mp.pi)
    L = mp.sqrt(2 * (mp.mp.dps + 5) * mp.log(10))

    def density(z: mp.mpf) -> mp.mpf:
        return norm * mp.exp(-z * z / 2)

    def integrate(fn: Callable, cut: mp.mpf) -> mp.mpf:
        points = [-L, cut, L] if -L < cut < L else [-L, L]
        return mp.quad(fn, points, method="gauss-legendre")

    if a == 0:
        return f(mp.mpf(0)) * integrate(lambda z: density(z) * g(mp.sqrt(b) * z), mp.mpf(0))
    sa = mp.sqrt(a)
    slope = c / sa
    rest = mp.sqrt(max(b - c * c / a, mp.mpf(0)))

    def inner(z1: mp.mpf) -> mp.mpf:
        if rest == 0:
            return g(slope * z1)
        return integrate(lambda z2: density(z2) * g(slope * z1 + rest * z2), -slope * z1 / rest)

    return integrate(lambda z1: density(z1) * f(sa * z1) * inner(z1), mp.mpf(0))


def _dual_functions(act: Activation) -> tuple[Callable, Callable]:
    """(T, Ṫ) as mpmath functions of (q11, q12, q22)."""
    phi = compile_function((X,), act.expr, MPMATH)
    dphi = compile_function((X,), act.derivative, MPMATH)
    if act.dual is not None:
        T = compile_function((q11, q12, q22), act.dual, MPMATH)
        Td = compile_function((q11, q12, q22), act.derivative_dual, MPMATH)
        return _guard_degenerate(T, phi), _guard_degenerate(Td, dphi)
    return (
        lambda a, c, b: gaussian_expectation(phi, phi, a, c, b),
        lambda a, c, b: gaussian_expectation(dphi, dphi, a, c, b),
    )


def _guard_degenerate(fn: Callable, integrand: Callable) -> Callable:
    """Closed forms divide by √(q11 q22); a zero variance means u ≡ 0, handled by quadrature."""

    def wrapped(a, c, b):
        if a == 0 or b == 0:
            # 𝔼[h(0) h(v)] with h = φ or φ': the only degenerate case the engine meets
            return gaussian_expectation(integrand, integrand, a, c, b)
        rho = c / mp.sqrt(a * b)
        if abs(rho) > 1:  # rounding of identical inputs at the working precision
            c = mp.sign(rho) * mp.sqrt(a * b)
        # at |ρ| = 1 a square root of a rounded-to-negative determinant may turn complex;
        # its imaginary part is rounding noise at the working precision
        return mp.re(fn(a, c, b))

    return wrapped


def _step(m: Layer) -> Callable[[State], State]:
    """One layer's map on an mpmath state (Σ₁₁, Σ₁₂, Σ₂₂, Θ)."""
    if isinstance(m, ResidualMap):
        block = [_step(b) for b in m.block]

        def residual(state: State) -> State:
            out = state
            for step in block:
                out = step(out)
            return tuple(a + b for a, b in zip(out, state, strict=True))

        return residual
    if isinstance(m, ActivationMap):
        T, Td = _dual_functions(m.phi)
        return lambda s: (T(s[0], s[0], s[0]), T(*s[:3]), T(s[2], s[2], s[2]), Td(*s[:3]) * s[3])
    mapped = compile_function(tuple(STATE), tuple(traced(m)), MPMATH)
    name = type(m).__name__

    def step(state: State) -> State:
        out = tuple(mp.mpmathify(v) for v in mapped(*state))
        if not all(isinstance(v, mp.mpf) and mp.isfinite(v) for v in out):
            raise NTKSymError(f"{name}: the map gave a value that is not a finite real number, "
                              f"{out}, at (Σ₁₁, Σ₁₂, Σ₂₂, Θ) = {tuple(state)}")
        return out

    return step


def pair_recursion(maps: tuple[Layer, ...]) -> Callable[[State], tuple[mp.mpf, mp.mpf]]:
    """The layer maps as one mpmath function of an input state (Σ₁₁, Σ₁₂, Σ₂₂) = (‖x‖², x·x',
    ‖x'‖²)/d, with Θ = 0, returning (NNGP, NTK) of the pair at the current precision.

    Build it inside ``mp.workdps``: the compiled duals keep the precision they were made at.
    """
    steps = [_step(m) for m in maps]

    def run(state: State) -> tuple[mp.mpf, mp.mpf]:
        state = (*state, mp.mpf(0))
        for step in steps:
            state = step(state)
        return state[1], state[3]

    return run


def kernels_mpmath(
    maps: tuple[Layer, ...], X1: np.ndarray, X2: np.ndarray | None, dps: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of the layer maps as object arrays of mpmath numbers at `dps` digits.

    Input kernel Σ = x·x'/d, Θ = 0; each pair (x, x') is carried through every layer.
    """
    symmetric = X2 is None
    X2 = X1 if X2 is None else X2
    with mp.workdps(dps):
        run = pair_recursion(maps)
        d = X1.shape[1]
        A = [[mp.mpf(float(v)) for v in row] for row in X1]
        B = A if symmetric else [[mp.mpf(float(v)) for v in row] for row in X2]

        def dot(x, y):
            return mp.fsum(p * r for p, r in zip(x, y, strict=True)) / d

        nngp = np.empty((len(A), len(B)), dtype=object)
        ntk = np.empty_like(nngp)
        for i, x in enumerate(A):
            for j, y in enumerate(B):
                if symmetric and j < i:
                    nngp[i, j], ntk[i, j] = nngp[j, i], ntk[j, i]
                    continue
                nngp[i, j], ntk[i, j] = run((dot(x, x), dot(x, y), dot(y, y)))
    return nngp, ntk
