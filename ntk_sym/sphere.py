"""The Mercer spectrum of a network's kernel on the sphere (Funk–Hecke).

Inputs lie on the sphere of radius √d in ℝᵈ (d = `dim`), so that x·x'/d = t is the cosine of
the angle between them and the kernel is a function κ(t) of t alone. Every degree-k spherical
harmonic on S^{d−1} is then an eigenfunction of the integral operator
f ↦ ∫ κ(x·x'/d) f(x') dσ(x') (σ the uniform probability measure), with eigenvalue

    μ_k = Γ(d/2)/(√π Γ((d−1)/2)) ∫₋₁¹ κ(t) P_{k,d}(t) (1 − t²)^{(d−3)/2} dt
        = Γ(d/2)/(√π Γ((d−1)/2)) ∫₀^π κ(cos θ) P_{k,d}(cos θ) sin^{d−2}θ dθ,

where P_{k,d} is the Gegenbauer polynomial normalised to P_{k,d}(1) = 1 (Legendre for d = 3,
Chebyshev T_k for d = 2), and multiplicity N(d, k) = (2k + d − 2)(k + d − 3)!/(k!(d − 2)!)
(N(d, 0) = 1, N(2, k) = 2). Mercer: κ(t) = Σ_k μ_k N(d, k) P_{k,d}(t). The Gram matrix K/n of n
uniform points has eigenvalues close to μ_k, each repeated N(d, k) times.

Two evaluations:

- exact (SymPy), where the integral is elementary: uniform MLPs (`ntk_sym.mlp`) of depth ≤ 1
  without bias for positively homogeneous activations (the ReLU family). There κ(cos θ) is a
  polynomial in θ, cos θ and sin θ, and with z = e^{iθ} each monomial θᵖ zᵐ integrates over
  [0, π] in closed form;
- mpmath at `dps` digits otherwise: κ(t) from the mpmath reference recursion of any layer list
  (`ntk_sym.symbolic.reference.pair_recursion`), the θ form of the integral (no endpoint
  singularity of the weight) by tanh-sinh quadrature on k_max + 1 equal pieces of [0, π].

Normalisation. Bietti & Mairal (2019) write the two-layer bias-free ReLU NTK on the unit sphere
as κ_BM(u) = u κ₀(u) + κ₁(u) with the arc-cosine kernels κ₀(u) = 1 − arccos(u)/π and
κ₁(u) = (u(π − arccos u) + √(1 − u²))/π. Here (NTK parameterisation, Σ⁽¹⁾ = σ_w² x·x'/d, so
u = t: the 1/d and the radius √d cancel) depth 1 and σ_b = 0 give

    Θ(t) = σ_w² T(Σ⁽¹⁾) + σ_w² Ṫ(Σ⁽¹⁾) Σ⁽¹⁾ = σ_w⁴ (κ₁(t) + t κ₀(t))/2 = σ_w⁴ κ_BM(t)/2,

because the ReLU duals are homogeneous in the variances, T of degree 1 and Ṫ of degree 0:
at variances σ_w², 𝔼[relu(u)relu(v)] = σ_w² κ₁/2 and 𝔼[relu'(u)relu'(v)] = κ₀/2. So Θ is a
multiple of κ_BM for every σ_w: their μ_k are twice ours at σ_w = 1 and half of ours at
σ_w² = 2 (He scaling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from math import comb, factorial
from typing import Literal, Protocol

import mpmath as mp
import numpy as np
import sympy as sp

from .errors import NTKSymError
from .symbolic.maps import Layer
from .symbolic.mlp import mlp_spec
from .symbolic.recursion import d as dim_symbol
from .symbolic.recursion import xx, xy, yy
from .symbolic.reference import pair_recursion

KernelName = Literal["ntk", "nngp"]


class Network(Protocol):
    """What the spectrum reads of a network (`ntk_sym.layers.Serial`)."""

    layers: tuple[Layer, ...]

    def unrolled(self, symbolic: bool = False, simplify: bool = False) -> tuple: ...
_KERNEL_INDEX = {"nngp": 0, "ntk": 1}

_theta = sp.Symbol("theta", positive=True)
_cos, _sin = sp.symbols("c s", real=True)


def multiplicity(dim: int, k: int) -> int:
    """N(d, k) = (2k + d − 2)(k + d − 3)!/(k!(d − 2)!), the number of degree-k harmonics."""
    if k == 0:
        return 1
    return factorial(k + dim - 3) * (2 * k + dim - 2) // (factorial(k) * factorial(dim - 2))


def gegenbauer_normalised(
    dim: int, k_max: int, t: object, tidy: Callable[[object], object] = lambda v: v
) -> list:
    """P_{0,d}(t) … P_{k_max,d}(t) with P_{k,d}(1) = 1, for SymPy or mpmath t, by the recurrence

    P_0 = 1, P_1 = t, P_k = ((2k + d − 4) t P_{k−1} − (k − 1) P_{k−2}) / (k + d − 3).

    `tidy` is applied to each P_k (``sympy.expand`` keeps symbolic ones from nesting).
    """
    values = [t**0, t][: k_max + 1]
    for k in range(2, k_max + 1):
        step = ((2 * k + dim - 4) * t * values[-1] - (k - 1) * values[-2]) / (k + dim - 3)
        values.append(tidy(step))
    return values


@dataclass(frozen=True)
class SphereSpectrum:
    """Funk–Hecke eigenvalues μ_0 … μ_{k_max} of a kernel on S^{dim−1} (see the module docstring).

    Attributes
    ----------
    dim: the ambient dimension d (the sphere is S^{d−1}).
    kernel: "ntk" or "nngp".
    eigenvalues: μ_k as SymPy numbers (``exact``) or mpmath numbers at ``dps`` digits.
    multiplicities: N(d, k).
    exact: whether the eigenvalues are exact SymPy numbers.
    dps: the working precision of the mpmath evaluation (None when exact).
    zero_tolerance: abs(μ_k) at or below this counts as zero (0 when exact; otherwise
        10^{3−dps} κ(1): the quadrature's rounding floor is about 10^{−dps} κ(1), and each
        quadrature error estimate is required to be below this bound).
    """

    dim: int
    kernel: str
    eigenvalues: tuple
    multiplicities: tuple[int, ...]
    exact: bool
    dps: int | None
    zero_tolerance: float

    def floats(self) -> np.ndarray:
        """The eigenvalues as a float64 array."""
        return np.array([float(mu) for mu in self.eigenvalues])

    def nonzero(self) -> np.ndarray:
        """The degrees k with abs(μ_k) above `zero_tolerance`."""
        mu = self.floats()
        return np.flatnonzero(np.abs(mu) > self.zero_tolerance)

    def decay(self, k_min: int | None = None) -> float:
        """The exponent p of μ_k ≈ C k^{−p}, fitted by least squares to log μ_k over the nonzero
        μ_k with k ≥ k_min (default max(2, k_max/3), away from the pre-asymptotic low degrees).

        Even and odd degrees approach the same power with different constants (for deep ReLU
        the odd ones are smaller), so each parity gets its own log C and the slope is shared.
        """
        k_max = len(self.eigenvalues) - 1
        k_min = max(2, k_max // 3) if k_min is None else max(int(k_min), 1)
        ks = np.array([k for k in self.nonzero() if k >= k_min])
        if len(ks) < 3:
            raise NTKSymError(
                f"fitting a decay needs three nonzero eigenvalues with k ≥ {k_min}; got {len(ks)} "
                f"(k_max = {k_max}); raise k_max"
            )
        mu = self.floats()[ks]
        if np.any(mu <= 0):
            raise NTKSymError("a negative eigenvalue: the kernel is not positive definite")
        parities = [ks % 2 == parity for parity in (0, 1) if np.any(ks % 2 == parity)]
        design = np.column_stack([np.log(ks)] + [mask.astype(float) for mask in parities])
        coefficients = np.linalg.lstsq(design, np.log(mu), rcond=None)[0]
        return float(-coefficients[0])

    @property
    def decay_rate(self) -> float:
        """The fitted exponent p of μ_k ≈ C k^{−p} (`decay` with its default range)."""
        return self.decay()


def _check(dim: int, k_max: int, kernel: str) -> None:
    if isinstance(dim, bool) or int(dim) != dim or dim < 2:
        raise NTKSymError(f"dim must be an integer ≥ 2 (the sphere S^(dim−1)), got {dim!r}")
    if isinstance(k_max, bool) or int(k_max) != k_max or k_max < 0:
        raise NTKSymError(f"k_max must be a non-negative integer, got {k_max!r}")
    if kernel not in _KERNEL_INDEX:
        raise NTKSymError(f"kernel must be one of {sorted(_KERNEL_INDEX)}, got {kernel!r}")


def _funk_hecke_constant(dim: int) -> sp.Expr:
    half = sp.Rational(dim, 2)
    return sp.gamma(half) / (sp.sqrt(sp.pi) * sp.gamma(half - sp.Rational(1, 2)))


def angle_polynomial(net: Network, dim: int, kernel: str) -> sp.Expr | None:
    """κ(cos θ) as a polynomial in θ, cos θ, sin θ (symbols θ, c, s), or None where it is not one.

    Only tried for depth ≤ 1 with a closed-form dual: deeper arc-cosine compositions put
    arccos(κ(cos θ)) into the kernel, which is not of this form.
    """
    spec = mlp_spec(net)
    if spec is None or spec.depth > 1:
        return None
    if spec.activation is not None and spec.activation.dual is None:
        return None
    expr = net.unrolled()[_KERNEL_INDEX[kernel]]
    expr = expr.subs({xx: dim_symbol, yy: dim_symbol}).subs(xy, dim_symbol * _cos)
    expr = sp.sympify(expr.subs(dim_symbol, dim))
    expr = expr.replace(sp.acos, lambda arg: _theta if sp.expand(arg - _cos) == 0 else sp.acos(arg))

    def root(base: sp.Expr) -> sp.Expr:
        ratio = sp.simplify(base / (1 - _cos**2))
        if ratio.is_number and ratio.is_positive:
            return sp.sqrt(ratio) * _sin
        return sp.sqrt(base)

    expr = expr.replace(lambda e: e.is_Pow and e.exp == sp.Rational(1, 2), lambda e: root(e.base))
    expr = sp.expand(expr)
    try:
        sp.Poly(expr, _theta, _cos, _sin)
    except sp.PolynomialError:
        return None
    if expr.has(sp.acos, sp.asin, sp.Abs, sp.Heaviside) or (
        expr.free_symbols - {_theta, _cos, _sin}
    ):
        return None
    return expr


@cache
def half_circle_moment(p: int, a: int, b: int) -> sp.Expr:
    """∫₀^π θᵖ cosᵃθ sinᵇθ dθ for p ∈ {0, 1}, exactly.

    With z = e^{iθ}, cosᵃθ sinᵇθ = (z + 1/z)ᵃ (z − 1/z)ᵇ / (2ᵃ (2i)ᵇ) = Σ_m c_m zᵐ, and
    ∫₀^π θᵖ e^{imθ} dθ is π, π²/2 (m = 0; p = 0, 1), ((−1)^m − 1)/(im) and
    π(−1)^m/(im) + ((−1)^m − 1)/m² (m ≠ 0; p = 0, 1).
    """
    if p not in (0, 1):
        raise NTKSymError(f"θ^{p} terms are not expected in a depth ≤ 1 kernel")
    # the sum as Σ_e (re_e + i·im_e) πᵉ in exact rationals (SymPy arithmetic here is ~100x slower)
    parts = {e: [Fraction(0), Fraction(0)] for e in range(3)}
    for i in range(a + 1):
        for j in range(b + 1):
            m, c = a + b - 2 * (i + j), comb(a, i) * comb(b, j) * (-1) ** j
            sign = -1 if m % 2 else 1
            if m == 0:
                parts[1 + p][0] += c * Fraction(1, 1 + p)
            elif p == 0:
                parts[0][1] -= Fraction(c * (sign - 1), m)  # 1/(im) = −i/m
            else:
                parts[1][1] -= Fraction(c * sign, m)
                parts[0][0] += Fraction(c * (sign - 1), m * m)
    total = sp.Integer(0)
    for e, (re, im) in parts.items():
        for _ in range(b % 4):  # divide by iᵇ: multiply by (−i)ᵇ
            re, im = im, -re
        if im != 0:
            raise AssertionError("the integral of a real function came out complex")
        total += sp.Rational(re.numerator, re.denominator * 2 ** (a + b)) * sp.pi**e
    return total


def _exact(net: Network, dim: int, k_max: int, kernel: str) -> tuple[sp.Expr, ...] | None:
    kappa = angle_polynomial(net, dim, kernel)
    if kappa is None:
        return None
    constant = _funk_hecke_constant(dim)
    kappa = sp.Poly(kappa * _sin ** (dim - 2), _theta, _cos, _sin)
    mus = []
    for legendre in gegenbauer_normalised(dim, k_max, _cos, sp.expand):
        product = kappa * sp.Poly(legendre, _theta, _cos, _sin)
        integral = sum(coeff * half_circle_moment(*powers) for powers, coeff in product.terms())
        mus.append(sp.expand(constant * integral))
    return tuple(mus)


def _numeric(net: Network, dim: int, k_max: int, kernel: str, dps: int) -> tuple[tuple, float]:
    index = _KERNEL_INDEX[kernel]
    with mp.workdps(dps):
        run = pair_recursion(net.layers)
        one = mp.mpf(1)
        nodes: dict[mp.mpf, tuple[mp.mpf, list]] = {}

        def node(angle: mp.mpf) -> tuple[mp.mpf, list]:
            if angle not in nodes:
                t = mp.cos(angle)
                value = run((one, t, one))[index] * mp.sin(angle) ** (dim - 2)
                nodes[angle] = (value, gegenbauer_normalised(dim, k_max, t))
            return nodes[angle]

        # P_k has k sign changes on [0, π]: k_max + 1 pieces keep each piece smooth and
        # mildly oscillating, and the same nodes serve every k (hence `nodes`)
        points = mp.linspace(0, mp.pi, k_max + 2)
        constant = mp.mpf(sp.N(_funk_hecke_constant(dim), dps + 5))
        kappa_one = abs(run((one, one, one))[index])
        tolerance = mp.mpf(10) ** (3 - dps) * kappa_one
        mus = []
        for k in range(k_max + 1):
            integrand: Callable = lambda a, k=k: node(a)[0] * node(a)[1][k]  # noqa: E731
            value, error = mp.quad(integrand, points, error=True)
            if constant * error > tolerance:
                raise NTKSymError(
                    f"quadrature of μ_{k} did not reach {mp.nstr(tolerance, 3)} (error estimate "
                    f"{mp.nstr(constant * error, 3)}); raise dps"
                )
            mus.append(constant * value)
        return tuple(mus), float(tolerance)


def spectrum(
    net: Network,
    dim: int,
    k_max: int,
    kernel: KernelName = "ntk",
    exact: bool | None = None,
    dps: int = 30,
) -> SphereSpectrum:
    """μ_0 … μ_{k_max} of `net`'s NTK (or NNGP) on S^{dim−1}, inputs of norm √dim.

    ``exact=None`` gives exact SymPy numbers where the Funk–Hecke integral is elementary and
    mpmath numbers at `dps` digits otherwise; ``True`` insists on exact numbers (an
    `NTKSymError` where there are none), ``False`` always uses mpmath.
    """
    _check(dim, k_max, kernel)
    if int(dps) != dps or dps < 10:
        raise NTKSymError(f"dps must be an integer ≥ 10, got {dps!r}")
    dim, k_max = int(dim), int(k_max)
    multiplicities = tuple(multiplicity(dim, k) for k in range(k_max + 1))
    if exact is not False:
        mus = _exact(net, dim, k_max, kernel)
        if mus is not None:
            return SphereSpectrum(dim, kernel, mus, multiplicities, True, None, 0.0)
        if exact:
            raise NTKSymError(
                f"no exact spectrum for {net!r}: the Funk–Hecke integral is elementary only at "
                "depth ≤ 1 without bias for the ReLU family; use exact=False (mpmath)"
            )
    mus, zero_tolerance = _numeric(net, dim, k_max, kernel, int(dps))
    return SphereSpectrum(dim, kernel, mus, multiplicities, False, int(dps), zero_tolerance)
