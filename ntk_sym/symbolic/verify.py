"""Check a catalogue entry's closed-form dual against independent high-precision quadrature.

For (u, v) ~ N(0, Q), Q = [[q11, q12], [q12, q22]] with correlation ρ = cos β, write
u = √q11 r cos α, v = √q22 r cos(α − β) with (r, α) polar coordinates of a standard normal
vector. Pairing the rays α and α + π,

    𝔼[f(u) f(v)] = (1/2π) ∫₀^π dα ∫₀^∞ [f(r a) f(r b) + f(−r a) f(−r b)] r e^{−r²/2} dr,
    a = √q11 cos α,  b = √q22 cos(α − β).

Every non-smooth point of the catalogue's activations sits at x = 0, and u = 0, v = 0 are the rays
α = π/2, α = π/2 + β: splitting the α-range there leaves integrands that are analytic in both
variables on each piece, however close ρ is to ±1 (the wedge between the rays is then a thin piece
of its own). The α-integral is Gauss–Legendre on those pieces (or the trapezoidal rule over the
period π when f is smooth), the r-integral Gauss–Legendre on [0, R], [R, 2R], ... until the
integrand is negligible. Smooth activations first try a Gauss–Hermite product rule in Cartesian
coordinates, which is far cheaper when it converges (sin, exp, polynomials).

Rules are refined level by level; with d_k the relative change between levels k − 1 and k, the
error of level k is estimated as d_k²/d_{k−1} while the changes shrink (geometric convergence),
else as d_k. An optimistic estimate can only make `verify` fail, never pass: the closed form is
compared with the quadrature value itself.

`verify` compares, at a handful of covariances (near-degenerate ones included),

* T = 𝔼[φ(u)φ(v)] with the quadrature of φ·φ;
* Price's ∂T/∂q12 with the quadrature of φ'·φ' (φ' by SymPy); when φ' contains Dirac deltas,
  Σ cᵢ δ(x − xᵢ), with the distributional value Σ cᵢ cⱼ p(xᵢ, xⱼ), p the density of (u, v);
* the entry's independent `derivative_reference` (if any) with the same reference values.

Errors are relative, ``|closed − quadrature| / max(|quadrature|, 10^{−dps/2} s)``, where
s = √(𝔼[f(u)²] 𝔼[f(v)²]) (a rough one-dimensional quadrature) only guards values that vanish.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import mpmath as mp
import sympy as sp

from ..errors import NTKSymError
from .activations import Activation, resolve
from .printing import MPMATH, compile_function
from .symbols import X, q11, q12, q22

#: Refinement levels (radial nodes per piece, angular nodes per piece), each about twice the work
#: of the one before; the trapezoidal rule for smooth integrands gets four times the angular
#: nodes, as it covers the whole period at once.
_LEVELS = ((20, 6), (28, 8), (40, 12), (56, 16), (80, 24), (112, 32), (160, 48), (224, 64))
#: Gauss–Hermite product rules tried first for smooth activations (nodes per variable).
_HERMITE_LEVELS = (16, 24, 32, 48)
#: Extra digits for evaluating the closed forms: near-degenerate covariances make them cancel
#: (ReLU at ρ = −(1 − 10⁻⁶) loses about 12 digits), and it is the formula, not its floating-point
#: evaluation, that is being checked.
_GUARD_DIGITS = 20
#: Radial pieces [kR, (k+1)R] beyond which an integrand still growing is reported, not integrated.
_MAX_RADIAL_PIECES = 8

Covariance = tuple[mp.mpf, mp.mpf, mp.mpf]


class VerificationError(NTKSymError):
    """A closed form disagrees with the quadrature reference (the message holds the report)."""


@dataclass(frozen=True)
class VerificationReport:
    """Outcome of `verify`.

    errors: the largest relative error over the points, per quantity: "dual" (T), "price" (∂T/∂q12
    against 𝔼[φ'φ'] or its distributional value), "reference" (`derivative_reference`).
    quadrature_error: the largest estimated relative error of the quadrature references.
    points: the covariances (q11, q12, q22) used. notes: what was compared, and how.
    """

    activation: str
    points: tuple[tuple[float, float, float], ...]
    errors: dict[str, float]
    quadrature_error: float
    rtol: float
    notes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(err <= self.rtol for err in self.errors.values())

    def __str__(self) -> str:
        lines = [f"verify({self.activation}): {'passed' if self.passed else 'FAILED'}"]
        lines += [
            f"  max rel. error {k:9s} {v:.2e} (rtol {self.rtol:.0e})"
            for k, v in self.errors.items()
        ]
        lines.append(f"  quadrature error estimate {self.quadrature_error:.1e}")
        lines.append(
            f"  {len(self.points)} covariances (q11, q12, q22): "
            + ", ".join(f"({a:.4g}, {b:.10g}, {c:.4g})" for a, b, c in self.points)
        )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def verify(
    activation: str | sp.Expr | Activation,
    n_points: int = 5,
    dps: int = 30,
    seed: int = 0,
    rtol: float = 1e-15,
    strict: bool = True,
) -> VerificationReport:
    """Compare an activation's closed-form T and ∂T/∂q12 with `dps`-digit quadrature.

    n_points covariances are used: ρ = 1 − 10⁻⁶ with equal variances, ρ = −(1 − 10⁻⁶) with
    variances 1/2 and 2, then random ones (seeded) with variances in [1/4, 3] and ``|ρ|`` in
    [0.1, 0.95].
    The quadrature is refined until its estimated relative error is below rtol/10. The default
    rtol = 1e-15 sits far below float64 resolution yet well above what 30 digits resolve after
    the cancellations of near-degenerate points; a wrong formula (a constant, a missing term)
    is off by orders of magnitude more. With ``strict`` a failure raises `VerificationError`;
    otherwise check ``report.passed``. Expect a few seconds per entry, up to ~30 s for the
    erf-based ones (each of their quadratures evaluates erf ~10⁴ times at 30 digits).
    """
    act = resolve(activation)
    if not act.has_closed_form:
        raise NTKSymError(
            f"activation {act.name!r} has no closed-form dual: there is nothing to verify "
            "(its kernels come from the Hermite series, checked against this quadrature in "
            "tests/test_hermite.py)"
        )
    if n_points < 1:
        raise NTKSymError(f"n_points must be at least 1, got {n_points}")
    if not 10.0 ** (8 - dps) <= rtol < 1:
        raise NTKSymError(f"rtol must lie in [1e{8 - dps}, 1) at dps={dps}, got {rtol}")
    with mp.workdps(dps):
        report = _verify(act, n_points, seed, mp.mpf(rtol))
    if strict and not report.passed:
        raise VerificationError(str(report))
    return report


def _verify(act: Activation, n_points: int, seed: int, rtol: mp.mpf) -> VerificationReport:
    tol = rtol / 10
    points = covariance_points(n_points, seed)
    phi = _mp_function(act.expr)
    dual = _mp_kernel(act.dual)
    price = _mp_kernel(act.price_derivative)
    reference = None if act.derivative_reference is None else _mp_kernel(act.derivative_reference)
    diracs = dirac_terms(act.derivative)
    notes = [f"T against 2-D quadrature of φ·φ at {mp.mp.dps} digits"]
    if diracs is None:
        dphi = _mp_function(act.derivative)
        notes.append("∂T/∂q12 (Price) against 2-D quadrature of φ'·φ'")
    else:
        notes.append(
            "φ' is a sum of Dirac deltas: ∂T/∂q12 against the distributional value "
            "Σ cᵢcⱼ p(xᵢ, xⱼ); the network's Σ̇ uses the convention DIRAC_CONVENTION instead"
        )
    errors = {"dual": mp.mpf(0), "price": mp.mpf(0)}
    if reference is not None:
        errors["reference"] = mp.mpf(0)
    if diracs is not None and not act.dirac_derivative:
        notes.append("FAILED: φ' has a Dirac delta but the entry is not flagged dirac_derivative")
        errors["dirac_flag"] = mp.inf
    quad_error = mp.mpf(0)

    def closed(kernel: Callable, q: Covariance) -> mp.mpf:
        with mp.workdps(mp.mp.dps + _GUARD_DIGITS):
            return +kernel(*q)

    phi_kinked = bool(kinks(act.expr))
    dphi_kinked = diracs is None and bool(kinks(act.derivative))
    for q in points:
        value, est, floor = checked_expectation(phi, *q, kinked=phi_kinked, tol=tol)
        errors["dual"] = max(errors["dual"], _relative(closed(dual, q), value, floor))
        quad_error = max(quad_error, est)
        if diracs is None:
            value, est, floor = checked_expectation(dphi, *q, kinked=dphi_kinked, tol=tol)
            quad_error = max(quad_error, est)
        else:
            value, floor = dirac_expectation(diracs, *q), mp.mpf(0)
        errors["price"] = max(errors["price"], _relative(closed(price, q), value, floor))
        if reference is not None:
            error = _relative(closed(reference, q), value, floor)
            errors["reference"] = max(errors["reference"], error)
    return VerificationReport(
        activation=repr(act),
        points=tuple(tuple(float(x) for x in q) for q in points),
        errors={k: float(v) for k, v in errors.items()},
        quadrature_error=float(quad_error),
        rtol=float(rtol),
        notes=tuple(notes),
    )


def covariance_points(n: int, seed: int = 0) -> list[Covariance]:
    """The covariances `verify` uses (see there), in the current mpmath precision."""
    near_one = 1 - mp.mpf(10) ** -6
    chosen = [(mp.mpf(1), near_one, mp.mpf(1)), (mp.mpf(0.5), -near_one, mp.mpf(2))]
    rng = random.Random(seed)
    while len(chosen) < n:
        v1, v2 = (mp.mpf(0.25) * 12 ** mp.mpf(rng.random()) for _ in range(2))
        rho = mp.mpf(rng.choice((-1, 1)) * rng.uniform(0.1, 0.95))
        chosen.append((v1, rho, v2))
    return [(v1, rho * mp.sqrt(v1 * v2), v2) for v1, rho, v2 in chosen[:n]]


def _relative(closed: mp.mpf, reference: mp.mpf, floor: mp.mpf) -> mp.mpf:
    return abs(closed - reference) / max(abs(reference), floor)


def _mp_function(expr: sp.Expr) -> Callable[[mp.mpf], mp.mpf]:
    """φ(x) for mpmath numbers (in whatever precision is current when called)."""
    return compile_function((X,), expr, MPMATH)


def _mp_kernel(expr: sp.Expr) -> Callable[[mp.mpf, mp.mpf, mp.mpf], mp.mpf]:
    return compile_function((q11, q12, q22), expr, MPMATH)


# -- where an activation is not smooth -------------------------------------------------------------
_JUMPS = (sp.Heaviside, sp.sign, sp.Abs, sp.DiracDelta)


def kinks(expr: sp.Expr) -> set[sp.Expr]:
    """The points where φ (as written) may fail to be analytic.

    Collected from the arguments of Heaviside, sign, Abs and DiracDelta, from pairwise
    differences of Max/Min arguments, and from Piecewise conditions. `verify`'s quadrature
    handles non-smooth points at x = 0 only and refuses others.
    """
    candidates: list[sp.Expr] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _JUMPS):
            candidates.append(node.args[0])
        elif isinstance(node, sp.Max | sp.Min):
            candidates += [p - q for p, q in itertools.combinations(node.args, 2)]
        elif isinstance(node, sp.Piecewise):
            candidates += [c.lhs - c.rhs for _, c in node.args if isinstance(c, sp.core.Relational)]
    found: set[sp.Expr] = set()
    for candidate in candidates:
        found |= set(sp.solve(candidate, X))
    if found - {sp.Integer(0)}:
        raise NTKSymError(
            f"verify's polar quadrature splits at x = 0 only; {expr} is not smooth at "
            f"{sorted(map(str, found))}"
        )
    return found


def dirac_terms(derivative: sp.Expr) -> list[tuple[sp.Expr, sp.Expr]] | None:
    """φ' = Σ cᵢ δ(x − xᵢ) as [(cᵢ, xᵢ)], None if φ' has no Dirac delta.

    A φ' with both a Dirac part and a non-zero regular part is refused: `verify` has no reference
    for the mixed expectation.
    """
    if not derivative.has(sp.DiracDelta):
        return None
    terms, regular = [], sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(derivative)):
        coeff, delta = term.as_independent(sp.DiracDelta, as_Add=False)
        if delta == 1:
            regular += term
            continue
        if not isinstance(delta, sp.DiracDelta) or len(delta.args) != 1 or coeff.has(X):
            raise NTKSymError(f"verify cannot take expectations of the distribution {term}")
        terms.append((coeff, sp.solve(delta.args[0], X)[0]))
    if sp.simplify(regular) != 0:
        raise NTKSymError(
            f"φ' = {derivative} mixes Dirac deltas with a regular part; verify has no reference "
            "for that expectation"
        )
    return terms


def dirac_expectation(
    terms: list[tuple[sp.Expr, sp.Expr]], a: mp.mpf, c: mp.mpf, b: mp.mpf
) -> mp.mpf:
    """𝔼[φ'(u)φ'(v)] = Σ cᵢ cⱼ p(xᵢ, xⱼ), p(x, y) the N(0, [[a, c], [c, b]]) density."""
    det = a * b - c**2
    total = mp.mpf(0)
    for (ci, xi), (cj, xj) in itertools.product(terms, repeat=2):
        x, y = mp.mpf(sp.N(xi, mp.mp.dps)), mp.mpf(sp.N(xj, mp.mp.dps))
        density = mp.exp(-(b * x**2 - 2 * c * x * y + a * y**2) / (2 * det))
        total += mp.mpf(sp.N(ci * cj, mp.mp.dps)) * density / (2 * mp.pi * mp.sqrt(det))
    return total


# -- the quadrature -----------------------------------------------------------------------------
@cache
def _legendre(n: int, dps: int) -> tuple[tuple[mp.mpf, ...], tuple[mp.mpf, ...]]:
    with mp.workdps(dps):
        nodes, weights = mp.gauss_quadrature(n, "legendre")
    return tuple(nodes), tuple(weights)


def _scaled_rule(n: int, lo: mp.mpf, hi: mp.mpf) -> list[tuple[mp.mpf, mp.mpf]]:
    """n-point Gauss–Legendre nodes and weights on [lo, hi]."""
    nodes, weights = _legendre(n, mp.mp.dps)
    half, mid = (hi - lo) / 2, (hi + lo) / 2
    return [(mid + half * x, half * w) for x, w in zip(nodes, weights, strict=True)]


@cache
def _radial_rule(n: int, piece: int, dps: int) -> tuple[tuple[mp.mpf, mp.mpf], ...]:
    """Nodes r and weights w·r·e^{−r²/2} on [piece·R, (piece+1)·R], R = √(2 ln 10 (dps + 4))."""
    with mp.workdps(dps):
        length = mp.sqrt(2 * mp.log(10) * (dps + 4))
        rule = _scaled_rule(n, piece * length, (piece + 1) * length)
        return tuple((r, w * r * mp.exp(-(r**2) / 2)) for r, w in rule)


def _radial(f: Callable, a: mp.mpf, b: mp.mpf, n: int, atol: mp.mpf) -> mp.mpf:
    """∫₀^∞ [f(ra)f(rb) + f(−ra)f(−rb)] r e^{−r²/2} dr, piece by piece until the tail is < atol."""
    total = mp.mpf(0)
    for piece in range(_MAX_RADIAL_PIECES):
        rule = _radial_rule(n, piece, mp.mp.dps)
        total += mp.fsum(w * (f(r * a) * f(r * b) + f(-r * a) * f(-r * b)) for r, w in rule)
        # Tail test at the end of the piece, where the Gaussian factor is below 10^{-dps}.
        r = rule[-1][0]
        edge = r * mp.exp(-(r**2) / 2) * abs(f(r * a) * f(r * b) + f(-r * a) * f(-r * b))
        if edge * r < atol:
            return total
    raise NTKSymError(
        f"the integrand f(u)f(v) still matters at r = {mp.nstr(r, 4)} standard deviations: "
        "does the activation grow faster than exp(x²/4)?"
    )


def _angular_rule(beta: mp.mpf, kinked: bool, n: int) -> list[tuple[mp.mpf, mp.mpf]]:
    """α nodes and weights over one period [α₀, α₀ + π) of the α-integrand."""
    if not kinked:  # periodic and analytic: the trapezoidal rule converges geometrically
        m = 4 * n
        return [(mp.pi * j / m, mp.pi / m) for j in range(m)]
    start, split = mp.pi / 2, mp.pi / 2 + beta  # u = 0 and v = 0
    return _scaled_rule(n, start, split) + _scaled_rule(n, split, start + mp.pi)


def checked_expectation(
    f: Callable[[mp.mpf], mp.mpf],
    v1: mp.mpf,
    c: mp.mpf,
    v2: mp.mpf,
    kinked: bool,
    tol: mp.mpf,
) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """𝔼[f(u)f(v)] for (u, v) ~ N(0, [[v1, c], [c, v2]]), with an error estimate.

    Gauss–Hermite product rule first for smooth f, else (or if that does not converge) the polar
    rule of the module docstring. Unlike `ntk_sym.symbolic.reference.gaussian_expectation` (the
    mpmath backend's integrator, Cartesian and split at the kinks) it reports its error, and its
    polar pieces stay cheap at |ρ| → 1; being a different method also keeps `verify` independent
    of it.

    Returns (value, estimated relative error, floor), floor = 10^{−dps/2} √(𝔼[f(u)²]𝔼[f(v)²])
    being the magnitude below which errors are measured absolutely. `kinked`: f is non-smooth at 0.
    """
    rho = c / mp.sqrt(v1 * v2)
    if not -1 < rho < 1:
        raise NTKSymError(f"covariance must be positive definite, got correlation {rho}")
    beta, s1, s2 = mp.acos(rho), mp.sqrt(v1), mp.sqrt(v2)
    scale = mp.sqrt(_second_moment(f, v1) * _second_moment(f, v2))
    floor = mp.mpf(10) ** (-(mp.mp.dps // 2)) * scale
    if not kinked:
        found = _hermite_product(f, s1, s2, rho, tol, floor)
        if found is not None:
            return found[0], found[1], floor
    atol = tol * scale  # radial tails below this cannot move any result by tol relative to scale

    def polar(n_radial: int, n_angular: int) -> mp.mpf:
        return mp.fsum(
            w * _radial(f, s1 * mp.cos(al), s2 * mp.cos(al - beta), n_radial, atol)
            for al, w in _angular_rule(beta, kinked, n_angular)
        ) / (2 * mp.pi)

    found = _refine((lambda n=n: polar(*n) for n in _LEVELS), tol, floor)
    if found is None:
        raise NTKSymError(
            f"quadrature did not reach relative accuracy {mp.nstr(tol, 3)} at "
            f"q11={mp.nstr(v1, 6)}, q12={mp.nstr(c, 6)}, q22={mp.nstr(v2, 6)}"
        )
    return found[0], found[1], floor


def _refine(
    levels: Iterable[Callable[[], mp.mpf]], tol: mp.mpf, floor: mp.mpf
) -> tuple[mp.mpf, mp.mpf] | None:
    """The first level whose estimated relative error is below tol, with that estimate, or None.

    The estimate is d_k²/d_{k−1} while the changes d_k between levels shrink, else d_k.
    """
    previous, last_change = None, None
    for level in levels:
        value = level()
        if previous is not None:
            change = abs(value - previous) / max(abs(value), floor)
            shrinking = last_change is not None and change < last_change
            estimate = change**2 / last_change if shrinking else change
            if estimate < tol:
                return value, estimate
            last_change = change
        previous = value
    return None


@cache
def _hermite(n: int, dps: int) -> tuple[tuple[mp.mpf, mp.mpf], ...]:
    """n-point Gauss–Hermite rule for the standard normal density: Σ w f(x) ≈ 𝔼[f(z)]."""
    with mp.workdps(dps):
        nodes, weights = mp.gauss_quadrature(n, "hermite")
        root2, rootpi = mp.sqrt(2), mp.sqrt(mp.pi)
        return tuple((root2 * x, w / rootpi) for x, w in zip(nodes, weights, strict=True))


def _hermite_product(
    f: Callable, s1: mp.mpf, s2: mp.mpf, rho: mp.mpf, tol: mp.mpf, floor: mp.mpf
) -> tuple[mp.mpf, mp.mpf] | None:
    """𝔼[f(s1 z₁) f(s2 (ρ z₁ + √(1 − ρ²) z₂))] by a Gauss–Hermite product rule, or None.

    For entire activations of moderate growth (sin, exp, polynomials, Gaussian bumps) this
    converges in a few dozen nodes per variable, and costs one evaluation of f per node. Functions
    such as erf, whose growth off the real axis defeats Hermite rules, do not converge within
    `_HERMITE_LEVELS`, and the polar rule takes over.
    """
    shear = mp.sqrt(1 - rho**2)

    def product(n: int) -> mp.mpf:
        rule = _hermite(n, mp.mp.dps)
        return mp.fsum(
            w1 * f(s1 * z1) * mp.fsum(w2 * f(s2 * (rho * z1 + shear * z2)) for z2, w2 in rule)
            for z1, w1 in rule
        )

    return _refine((lambda n=n: product(n) for n in _HERMITE_LEVELS), tol, floor)


def _second_moment(f: Callable[[mp.mpf], mp.mpf], var: mp.mpf) -> mp.mpf:
    """𝔼[f(u)²], u ~ N(0, var), roughly (24-node Gauss–Hermite): it only sets a magnitude."""
    sd = mp.sqrt(var)
    return mp.fsum(w * f(sd * z) ** 2 for z, w in _hermite(24, mp.mp.dps))
