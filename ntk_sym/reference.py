"""The mpmath reference backend: the textbook recursion at arbitrary precision.

This path is deliberately plain: it iterates q12 ↦ σ_w² T(q11, q12, q22) + σ_b² in the covariance
form with the catalogue's closed forms (or a two-dimensional mpmath quadrature where there is
none) at `dps` digits, pair by pair. At 50 digits the cancellations that the float64 engine avoids
by construction cost nothing here, which is what makes it a reference for that engine.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath as mp
import numpy as np
import sympy as sp

from .activations import Activation
from .symbols import X, q11, q12, q22


def _heaviside(x: mp.mpf, h0: mp.mpf | None = None) -> mp.mpf:
    """H(x) with SymPy's default H(0) = 1/2."""
    if x == 0:
        return mp.mpf(1) / 2 if h0 is None else h0
    return mp.mpf(1) if x > 0 else mp.mpf(0)


def _mp_lambdify(args: tuple, expr: sp.Expr) -> Callable:
    mapping = {
        "Heaviside": _heaviside,
        "DiracDelta": lambda x, *k: mp.mpf(0),
    }
    return sp.lambdify(args, expr, modules=[mapping, "mpmath"])


def gaussian_expectation(
    f: Callable, g: Callable, a: mp.mpf, c: mp.mpf, b: mp.mpf, kinks: bool = True
) -> mp.mpf:
    """𝔼[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by nested mpmath quadrature.

    With u = √a z₁ and v = (c/√a) z₁ + √(b − c²/a) z₂, the inner integral over z₂ is split at
    v = 0 and the outer one at u = 0, where the kinks of rectifiers lie.
    """
    norm = 1 / mp.sqrt(2 * mp.pi)
    if a == 0:
        return f(mp.mpf(0)) * mp.quad(lambda z: norm * mp.exp(-z * z / 2) * g(mp.sqrt(b) * z),
                                      [-mp.inf, 0, mp.inf])
    sa = mp.sqrt(a)
    slope = c / sa
    rest = mp.sqrt(max(b - c * c / a, mp.mpf(0)))

    def inner(z1: mp.mpf) -> mp.mpf:
        if rest == 0:
            return g(slope * z1)
        cut = [-mp.inf, -slope * z1 / rest, mp.inf] if kinks else [-mp.inf, mp.inf]
        return mp.quad(lambda z2: norm * mp.exp(-z2 * z2 / 2) * g(slope * z1 + rest * z2), cut)

    return mp.quad(lambda z1: norm * mp.exp(-z1 * z1 / 2) * f(sa * z1) * inner(z1),
                   [-mp.inf, 0, mp.inf])


def _dual_functions(act: Activation) -> tuple[Callable, Callable]:
    """(T, Ṫ) as mpmath functions of (q11, q12, q22)."""
    phi = _mp_lambdify((X,), act.expr)
    dphi = _mp_lambdify((X,), act.derivative)
    if act.dual is not None:
        T = _mp_lambdify((q11, q12, q22), act.dual)
        Td = _mp_lambdify((q11, q12, q22), act.derivative_dual)
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


def kernels_mpmath(
    activation: Activation,
    depth: int,
    w_std: float,
    b_std: float,
    standard: bool,
    X1: np.ndarray,
    X2: np.ndarray | None,
    dps: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) as object arrays of mpmath numbers at `dps` digits."""
    X2 = X1 if X2 is None else X2
    with mp.workdps(dps):
        T, Td = _dual_functions(activation)
        s, b = mp.mpf(w_std) ** 2, mp.mpf(b_std) ** 2
        d = X1.shape[1]
        A = [[mp.mpf(float(v)) for v in row] for row in X1]
        B = [[mp.mpf(float(v)) for v in row] for row in X2]

        def sigma1(x, y):
            return s * mp.fsum(p * r for p, r in zip(x, y, strict=True)) / d + b

        nngp = np.empty((len(A), len(B)), dtype=object)
        ntk = np.empty_like(nngp)
        for i, x in enumerate(A):
            for j, y in enumerate(B):
                a, c, e = sigma1(x, x), sigma1(x, y), sigma1(y, y)
                th = (c - b) / s + 1 if standard else c
                for _ in range(depth):
                    t12, td12 = T(a, c, e), Td(a, c, e)
                    new_c = s * t12 + b
                    th = (t12 + 1 if standard else new_c) + s * td12 * th
                    a, e, c = s * T(a, a, a) + b, s * T(e, e, e) + b, new_c
                nngp[i, j], ntk[i, j] = c, th
    return nngp, ntk
