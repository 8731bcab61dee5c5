"""The closed-form catalogue: every dual against quadrature, derivatives, identities, errors."""

from __future__ import annotations

import random

import mpmath as mp
import pytest
import sympy as sp

from ntk_sym.errors import ExpressionError, NTKSymError, UnknownActivationError
from ntk_sym.symbolic.activations import DIRAC_CONVENTION, from_expression, get, names
from ntk_sym.symbolic.activations.arccos import arccos_J
from ntk_sym.symbolic.activations.polynomial import gaussian_moment
from ntk_sym.symbolic.symbols import X, q11, q12, q22, theta
from ntk_sym.symbolic.verify import verify

# Every closed-form entry with a couple of parameter settings. erf, gelu and the Gaussian bump need
# the polar rule at its finer levels (~1-3 s of mpmath erf/exp calls per quadrature), so the quick
# run uses fewer covariances for them (the first two are the near-degenerate ones); the slow run
# repeats everything with the defaults of `verify` (5 covariances, rtol 1e-15).
CASES = [
    ("relu", {}),
    ("abrelu", {"a": -0.3, "b": 1.2}),
    ("abrelu", {"a": 2, "b": 0.5}),
    ("leaky_relu", {"alpha": 0.2}),
    ("abs", {}),
    ("step", {}),
    ("sign", {}),
    ("identity", {}),
    ("arccos", {"order": 1}),
    ("arccos", {"order": 2}),
    ("arccos", {"order": 3}),
    ("erf", {}),
    ("gelu", {}),
    ("sin", {}),
    ("sin", {"a": 2, "b": 1.5, "c": 0.3}),
    ("cos", {"a": 0.7, "b": 0.8, "c": -0.4}),
    ("exp", {}),
    ("exp", {"a": 0.5, "b": -0.7}),
    ("gaussian", {}),
    ("rbf", {}),
    ("rbf", {"gamma": 0.5}),
    ("monomial", {"degree": 3}),
    ("monomial", {"degree": 4}),
    ("polynomial", {"coefficients": [0.5, -1, 0.25, 0.1]}),
]
SLOW_CASES = [
    ("erf", {"a": 0.5, "b": 2, "c": 0.1}),
    ("gaussian", {"a": 2, "b": -0.3}),
    ("cos", {}),
    ("leaky_relu", {}),
]
FEWER_POINTS = {"erf": 3, "gelu": 2, "gaussian": 3}


def _ids(cases):
    return [f"{name}-{'-'.join(f'{k}={v}' for k, v in p.items())}" for name, p in cases]


def test_every_closed_form_entry_is_covered():
    closed = {name for name in names() if get(name).has_closed_form}
    assert closed == {name for name, _ in CASES}


@pytest.mark.parametrize(("name", "params"), CASES, ids=_ids(CASES))
def test_closed_form_matches_quadrature(name, params):
    # rtol 1e-12: the closed forms are exact, so any formula error (a wrong constant or term)
    # shows at O(1e-3) or above, while 1e-12 is still 10^4 times below the float64 resolution at
    # which the kernels are consumed; the quadrature is refined to rtol/10 at 30 digits.
    report = verify(get(name, **params), n_points=FEWER_POINTS.get(name, 5), rtol=1e-12)
    assert report.passed
    assert report.quadrature_error < 1e-13
    assert set(report.errors) >= {"dual", "price"}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "params"), CASES + SLOW_CASES, ids=_ids(CASES + SLOW_CASES))
def test_closed_form_matches_quadrature_full(name, params):
    # The defaults: 5 covariances, rtol 1e-15 at 30 digits (see `verify`).
    assert verify(get(name, **params)).passed


def _equal_everywhere(lhs: sp.Expr, rhs: sp.Expr, seed: int = 0) -> None:
    """lhs = rhs symbolically where SymPy can show it, else at random covariances in mpmath."""
    if sp.simplify(lhs - rhs) == 0:
        return
    f = sp.lambdify((q11, q12, q22), lhs, "mpmath")
    g = sp.lambdify((q11, q12, q22), rhs, "mpmath")
    rng = random.Random(seed)
    with mp.workdps(40):
        for _ in range(20):
            a, b = mp.mpf(rng.uniform(0.2, 3)), mp.mpf(rng.uniform(0.2, 3))
            c = mp.mpf(rng.uniform(-0.99, 0.99)) * mp.sqrt(a * b)
            # 40-digit evaluation of two closed forms: 1e-30 leaves 10 digits for cancellation.
            assert abs(f(a, c, b) - g(a, c, b)) <= 1e-30 * max(1, abs(g(a, c, b)))


@pytest.mark.parametrize(
    ("name", "params"),
    [(n, p) for n, p in CASES if get(n, **p).derivative_reference is not None],
    ids=_ids([(n, p) for n, p in CASES if get(n, **p).derivative_reference is not None]),
)
def test_price_derivative_equals_independent_reference(name, params):
    act = get(name, **params)
    _equal_everywhere(act.price_derivative, act.derivative_reference)


def test_references_exist_where_known():
    missing = {n for n, p in CASES if get(n, **p).derivative_reference is None}
    assert missing == {"step", "sign"}  # φ' is a Dirac delta: see DIRAC_CONVENTION


def test_dirac_entries_follow_the_convention():
    assert "almost-everywhere" in DIRAC_CONVENTION
    for name, jump in (("step", 1), ("sign", 2)):
        act = get(name)
        assert act.dirac_derivative and act.derivative_dual == 0
        # Price's theorem, distributionally: 𝔼[c δ(u) c δ(v)] = c² p(0, 0).
        density = 1 / (2 * sp.pi * sp.sqrt(q11 * q22 - q12**2))
        _equal_everywhere(act.price_derivative, jump**2 * density)


# -- the arc-cosine family ------------------------------------------------------------------------
KNOWN_J = {  # Cho & Saul (2009), eq. (8)
    0: sp.pi - theta,
    1: sp.sin(theta) + (sp.pi - theta) * sp.cos(theta),
    2: 3 * sp.sin(theta) * sp.cos(theta) + (sp.pi - theta) * (1 + 2 * sp.cos(theta) ** 2),
}


@pytest.mark.parametrize("order", sorted(KNOWN_J))
def test_arccos_J_matches_cho_saul(order):
    assert sp.simplify(arccos_J(order) - KNOWN_J[order]) == 0


def test_arccos_rejects_bad_orders():
    for bad in (-1, 1.5, 2.0, True):
        with pytest.raises(NTKSymError, match="order"):
            get("arccos", order=bad)


# -- identities between entries -------------------------------------------------------------------
def test_abrelu_with_equal_slopes_is_linear():
    assert sp.simplify(get("abrelu", a=1, b=1).dual - q12) == 0
    assert sp.simplify(get("abrelu", a=2, b=2).dual - 4 * q12) == 0


def test_relu_family_consistency():
    alpha = sp.Rational(1, 5)
    _equal_everywhere(get("leaky_relu", alpha=0.2).dual, get("abrelu", a=alpha, b=1).dual)
    _equal_everywhere(get("abs").dual, get("abrelu", a=-1, b=1).dual)
    _equal_everywhere(get("relu").dual, get("abrelu", a=0, b=1).dual)
    _equal_everywhere(get("relu").dual, get("arccos", order=1).dual)
    assert sp.simplify(get("identity").dual - q12) == 0


def test_sin_and_cos_are_shifts_of_each_other():
    _equal_everywhere(
        get("cos", a=1.5, b=0.7, c=0.2).dual,
        get("sin", a=1.5, b=0.7, c=sp.Rational(1, 5) + sp.pi / 2).dual,
    )


def test_rbf_dual_is_the_rbf_kernel():
    gamma = sp.Rational(3, 4)
    expected = sp.exp(-gamma * (q11 + q22 - 2 * q12))
    assert sp.simplify(get("rbf", gamma=0.75).dual - expected) == 0


def test_gelu_at_zero_correlation_factorises():
    # 𝔼[uΦ(u)] = q/√(2π(1 + q)) (Stein), so T(q11, 0, q22) is the product of the two means.
    mean = lambda q: q / sp.sqrt(2 * sp.pi * (1 + q))  # noqa: E731
    assert sp.simplify(get("gelu").dual.subs(q12, 0) - mean(q11) * mean(q22)) == 0


# -- polynomials ----------------------------------------------------------------------------------
def _moment_by_cholesky(j: int, k: int) -> sp.Expr:
    """𝔼[uʲvᵏ] from u = √q11 z₁, v = (q12/√q11) z₁ + √(q22 − q12²/q11) z₂ and 𝔼[zⁿ] = (n−1)!!."""
    z1, z2 = sp.symbols("z1 z2")
    u = sp.sqrt(q11) * z1
    v = q12 / sp.sqrt(q11) * z1 + sp.sqrt(q22 - q12**2 / q11) * z2
    poly = sp.Poly(sp.expand(u**j * v**k), z1, z2)

    def normal_moment(n: int) -> sp.Expr:
        return sp.factorial2(n - 1) if n % 2 == 0 else sp.Integer(0)

    total = sum(c * normal_moment(a) * normal_moment(b) for (a, b), c in poly.terms())
    return sp.simplify(total)


@pytest.mark.parametrize(
    ("j", "k"), [(0, 0), (1, 1), (2, 0), (2, 2), (3, 1), (3, 3), (4, 2), (2, 3)]
)
def test_isserlis_moments_match_cholesky_expansion(j, k):
    assert sp.simplify(gaussian_moment(j, k) - _moment_by_cholesky(j, k)) == 0


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4, 5])
def test_monomial_dual_matches_hermite_expansion(degree):
    """xᵏ = Σ h_m He_m(x), h_m = 𝔼[zᵏ He_m(z)]/m!, and 𝔼[He_m(z₁)He_n(z₂)] = δ_mn m! ρᵐ."""
    z, rho = sp.Symbol("z", real=True), sp.cos(theta)
    density = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    expected = sp.Integer(0)
    for m in range(degree + 1):
        h = sp.integrate(z**degree * sp.hermite_prob(m, z) * density, (z, -sp.oo, sp.oo))
        expected += (h / sp.factorial(m)) ** 2 * sp.factorial(m) * rho**m
    assert sp.simplify(get("monomial", degree=degree).angle_dual - expected) == 0


def test_polynomial_matches_monomials_and_identity():
    assert sp.simplify(get("polynomial", coefficients=[0, 1]).dual - q12) == 0
    for k in range(4):
        coefficients = [0] * k + [1]
        _equal_everywhere(
            get("polynomial", coefficients=coefficients).dual, get("monomial", degree=k).dual
        )
    # A constant c has T = c², whatever the covariance.
    assert get("polynomial", coefficients=[3]).dual == 9


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_name_lists_the_catalogue():
    with pytest.raises(UnknownActivationError) as info:
        get("relux")
    message = str(info.value)
    assert "relux" in message and all(name in message for name in names())


def test_bad_parameters_are_named():
    with pytest.raises(TypeError, match="'relu'.*accepts: no parameters"):
        get("relu", alpha=0.1)
    with pytest.raises(TypeError, match="accepts: alpha"):
        get("leaky_relu", slope=0.1)
    with pytest.raises(NTKSymError, match="string"):
        get("erf", a="1")
    with pytest.raises(NTKSymError, match="finite"):
        get("sin", b=float("inf"))
    with pytest.raises(NTKSymError, match="b < 0"):
        get("gaussian", b=0.5)
    with pytest.raises(NTKSymError, match="gamma > 0"):
        get("rbf", gamma=0)
    with pytest.raises(NTKSymError, match="degree"):
        get("monomial", degree=-2)
    with pytest.raises(NTKSymError, match="sequence"):
        get("polynomial", coefficients="123")
    with pytest.raises(NTKSymError, match="at least one"):
        get("polynomial", coefficients=[])
    with pytest.raises(TypeError, match="string"):
        get(3)


def test_from_expression_rejects_strings_and_several_symbols():
    y = sp.Symbol("y")
    with pytest.raises(ExpressionError, match="not strings"):
        from_expression("tanh(x)")
    with pytest.raises(ExpressionError, match="exactly one free symbol"):
        from_expression(sp.tanh(X) + y)
    with pytest.raises(ExpressionError, match="exactly one free symbol"):
        from_expression(sp.Integer(2))
    assert from_expression(sp.tanh(y)).expr == sp.tanh(X)


def test_quadrature_only_entries_have_no_closed_form():
    for name in ("tanh", "sigmoid", "softplus", "silu", "elu"):
        act = get(name)
        assert act.dual is None and act.derivative_dual is None
        with pytest.raises(NTKSymError, match="no closed-form dual"):
            verify(act)
