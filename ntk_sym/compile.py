"""Compile an activation's dual maps into array functions (NumPy by default, CuPy on request).

The symbolic side (`activations`, `stable`) is turned into a `CompiledDual` once per activation,
backend and quadrature degree, and cached: the numeric engine never touches SymPy in its loops.

A `CompiledDual` offers two maps, for the diagonal and for pairs of inputs:

* ``diag(q) -> (T, Ṫ)`` with T = 𝔼[φ(u)²], Ṫ = 𝔼[φ'(u)²] for u ~ N(0, q);
* ``pair(q11, q22, θ, T11, T22) -> (T12, Ṫ12, g₋, g₊)`` with g∓ = √(T11 T22) ∓ T12 ≥ 0, the
  quantities from which the engine forms the next layer's angle without cancellation.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .activations import Activation
from .errors import NTKSymError
from .stable import SERIES_SWITCH, C, D, diagonal_form, pair_form, series_branches
from .symbols import X, q11, q22, theta

_q = sp.Symbol("q", nonnegative=True)

#: Quadrature nodes per dimension for activations without a closed form (see `quadrature`).
DEFAULT_QUADRATURE_DEGREE = 128


@dataclass(frozen=True)
class CompiledDual:
    """Array functions of one activation's dual maps (see the module docstring)."""

    diag: Callable
    pair: Callable
    kind: str  # "angle", "closed form" or "quadrature"


def array_module(backend: str) -> types.ModuleType:
    """The array module for `backend` ("numpy" or "cupy"); CuPy is imported only when asked."""
    if backend == "numpy":
        import numpy

        return numpy
    if backend == "cupy":
        try:
            import cupy
        except ImportError as err:
            raise NTKSymError(
                "backend='cupy' needs CuPy and a CUDA GPU: pip install 'ntk_sym[gpu]' "
                f"(import failed: {err})"
            ) from None
        return cupy
    raise NTKSymError(f"unknown array backend {backend!r}; use 'numpy' or 'cupy'")


def lambdify(args: tuple, expr: sp.Expr, backend: str) -> Callable:
    """`sympy.lambdify` for an array backend, mapping the functions NumPy names differently."""
    xp = array_module(backend)
    mapping = {
        "Heaviside": lambda x, h0=0.5: xp.where(x > 0, 1.0, xp.where(x < 0, 0.0, h0)),
        "DiracDelta": lambda x, *k: xp.zeros_like(x),
        "erf": _erf_for(xp),
    }
    return sp.lambdify(args, expr, modules=[mapping, backend])


def _erf_for(xp: types.ModuleType) -> Callable:
    """A vectorised erf for the array module (NumPy has none; lambdify would print math.erf)."""
    if xp.__name__ == "cupy":
        import cupyx.scipy.special as special

        return special.erf
    from .special import erf

    return erf


_CACHE: dict[tuple, CompiledDual] = {}


def compile_dual(
    activation: Activation, backend: str = "numpy", degree: int = DEFAULT_QUADRATURE_DEGREE
) -> CompiledDual:
    """The `CompiledDual` of `activation` for `backend`, compiled once and cached.

    The cache key is the activation's identity (name, expression, parameters), so rebuilding the
    same network later, or with another depth or σ, reuses the compiled maps.
    """
    key = (activation.key(), backend, int(degree) if activation.dual is None else None)
    if key not in _CACHE:
        if activation.angle_dual is not None:
            _CACHE[key] = _compile_angle(activation, backend)
        elif activation.dual is not None:
            _CACHE[key] = _compile_closed_form(activation, backend)
        else:
            from .quadrature import compile_quadrature

            _CACHE[key] = compile_quadrature(activation, backend, int(degree))
    return _CACHE[key]


def _broadcast(fn: Callable, xp: types.ModuleType) -> Callable:
    """Make a lambdified function return an array even when its expression is a constant."""

    def wrapped(*args):
        like = args[0]
        return xp.zeros_like(like) + fn(*args)

    return wrapped


def _compile_angle(act: Activation, backend: str) -> CompiledDual:
    """T = (q11 q22)^{k/2} J(θ), Ṫ = (q11 q22)^{(k−1)/2} K(θ), ratios by Taylor branches."""
    xp = array_module(backend)
    k = act.degree
    J, K = act.angle_dual, act.angle_derivative_dual
    J0 = sp.simplify(J.subs(theta, 0))
    K0 = sp.limit(K, theta, 0)
    if J0 == 0:
        raise NTKSymError(f"{act.name}: J(0) = 0, the angle form cannot be normalised")
    ratio = J / J0
    near0, near_pi = series_branches(ratio)
    J_f = _broadcast(lambdify((theta,), J, backend), xp)
    K_f = _broadcast(lambdify((theta,), K, backend), xp)
    minus_f = _broadcast(lambdify((theta,), 1 - ratio, backend), xp)
    plus_f = _broadcast(lambdify((theta,), 1 + ratio, backend), xp)
    minus_s = _broadcast(lambdify((theta,), near0, backend), xp)
    plus_s = _broadcast(lambdify((theta,), near_pi, backend), xp)
    j0, k0 = float(J0), float(K0)
    zero_derivative = K == 0
    # at zero variance u ≡ 0 and 𝔼[φ(u)²] = φ(0)², which the angle form cannot see when k = 0
    phi0 = float(act.expr.subs(X, 0)) if k == 0 else 0.0

    def scale(r, power):
        # r^{power/2} with r = q11 q22; exact for the integer and half-integer powers used here
        if power == 0:
            return 1.0
        root = xp.sqrt(r)
        return root**power

    def diag(q):
        T = xp.where(q > 0, j0 * scale(q * q, k), phi0**2)
        Tdot = xp.zeros_like(q) if zero_derivative else k0 * scale(q * q, k - 1)
        return T, Tdot

    def pair(a, b, th, T11, T22):
        r = a * b
        s = scale(r, k)
        T12 = s * J_f(th)
        Tdot = xp.zeros_like(th) if zero_derivative else scale(r, k - 1) * K_f(th)
        minus, plus = minus_f(th), plus_f(th)
        small = th < SERIES_SWITCH
        minus = xp.where(small, minus_s(th), minus)
        plus = xp.where(th > xp.pi - SERIES_SWITCH, plus_s(th), plus)
        root = s * j0
        gap_minus, gap_plus = root * minus, root * plus
        if k == 0:
            # a zero variance breaks homogeneity (T11 = φ(0)² there): use the direct gaps
            direct = xp.sqrt(T11 * T22)
            gap_minus = xp.where(r > 0, gap_minus, direct - T12)
            gap_plus = xp.where(r > 0, gap_plus, direct + T12)
        return T12, Tdot, gap_minus, gap_plus

    return CompiledDual(diag, pair, "angle")


def _compile_closed_form(act: Activation, backend: str) -> CompiledDual:
    """Covariance-form duals, rewritten by `stable.pair_form` and compiled in (q11, q22, c, D)."""
    xp = array_module(backend)
    args = (q11, q22, C, D)
    T_f = _broadcast(lambdify(args, pair_form(act.dual), backend), xp)
    Td_f = _broadcast(lambdify(args, pair_form(act.derivative_dual), backend), xp)
    Tdiag = _broadcast(lambdify((_q,), diagonal_form(act.dual, _q), backend), xp)
    Tddiag = _broadcast(lambdify((_q,), diagonal_form(act.derivative_dual, _q), backend), xp)

    def diag(q):
        return Tdiag(q), Tddiag(q)

    def pair(a, b, th, T11, T22):
        c = xp.cos(th)
        det = a * b * xp.sin(th) ** 2
        T12 = T_f(a, b, c, det)
        root = xp.sqrt(T11 * T22)
        return T12, Td_f(a, b, c, det), root - T12, root + T12

    return CompiledDual(diag, pair, "closed form")


def compile_phi(act: Activation, backend: str = "numpy") -> tuple[Callable, Callable]:
    """φ and φ' as array functions (Dirac deltas in φ' compile to 0, the a.e. derivative)."""
    xp = array_module(backend)
    phi = _broadcast(lambdify((X,), act.expr, backend), xp)
    dphi = _broadcast(lambdify((X,), act.derivative, backend), xp)
    return phi, dphi
