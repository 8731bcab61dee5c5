"""The SymPy derivations: every solution is checked by substitution, and the checks can fail."""

from __future__ import annotations

import mpmath as mp
import pytest
import sympy as sp

from ntk_sym.symbolic import discrete_flow as ds
from ntk_sym.symbolic import flow as fs


@pytest.fixture(scope="module")
def flow2() -> fs.TwoByTwoFlow:
    return fs.two_by_two_flow()


def test_chain_rule_gives_the_ntk_ode():
    d = fs.chain_rule_ode()
    assert d.jacobian.shape == (2, 4)
    assert d.residual == sp.zeros(2, 1)
    # The NTK is J Jᵀ: symmetric, with diagonal ‖∂f(xᵢ)/∂θ‖².
    assert sp.simplify(d.ntk - d.ntk.T) == sp.zeros(2, 2)
    assert sp.expand(d.ntk[0, 0] - sum(g**2 for g in d.jacobian.row(0))) == 0
    # A wrong sign in the flow would show: the check is not vacuous.
    wrong = (d.function_flow - fs.eta * d.ntk * (d.outputs - d.targets)).applyfunc(sp.expand)
    assert wrong != sp.zeros(2, 1)
    dtheta, df = d.matrix_form
    J, r = df.args[-2].args[0], df.args[-1]
    assert sp.simplify(df - (-fs.eta) * J * J.T * r) == sp.ZeroMatrix(*df.shape)
    assert dtheta.shape == (J.shape[1], 1)


def test_eigenmode_solution_by_dsolve():
    sol, residual = fs.mode_solution()
    assert residual == 0
    assert sp.simplify(sol.rhs - sp.Symbol("z_0", real=True) * sp.exp(-fs.eta * fs.lam * fs.t)) == 0


def test_mode_gain_is_the_integral_and_has_the_zero_eigenvalue_limit():
    g = fs.mode_gain()
    assert sp.simplify(g.diff(fs.t) - fs.eta * sp.exp(-fs.eta * fs.lam * fs.t)) == 0
    assert g.subs(fs.t, 0) == 0
    assert sp.limit(g, fs.lam, 0) == fs.eta * fs.t
    zero = sp.Symbol("l", nonnegative=True)
    assert fs.mode_gain(zero).subs(zero, 0) == fs.eta * fs.t
    assert sp.limit(g, fs.t, sp.oo) == 1 / fs.lam


def test_two_by_two_solution_satisfies_the_ode(flow2):
    assert flow2.ode_residual() == sp.zeros(2, 1)
    assert flow2.initial_residual() == sp.zeros(2, 1)
    # Each eigenvalue is a root of the characteristic polynomial (modulo D² = disc).
    mu = sp.Symbol("mu")
    for lam_i in flow2.eigenvalues:
        assert flow2.reduce(flow2.theta.charpoly(mu).as_expr().subs(mu, lam_i)) == 0


def test_reduction_detects_a_wrong_solution(flow2):
    """The residual check can fail: e^{+ηΘt} in place of e^{−ηΘt} leaves a nonzero residual."""
    l1, l2 = flow2.eigenvalues
    swapped = flow2.propagator.subs(fs.eta, -fs.eta)
    wrong = flow2.y + swapped * (flow2.f0 - flow2.y)
    residual = wrong.diff(fs.t) + fs.eta * flow2.theta * (wrong - flow2.y)
    assert residual.applyfunc(flow2.reduce) != sp.zeros(2, 1)


def test_two_by_two_propagator_is_the_matrix_exponential(flow2):
    """Sylvester's form against mpmath's expm at an exact rational point, 40 digits."""
    a, b, c = sp.Rational(2), sp.Rational(1, 3), sp.Rational(7, 10)
    point = {sp.Symbol("a", positive=True): a, sp.Symbol("b", real=True): b}
    point[sp.Symbol("c", positive=True)] = c
    point[flow2.D] = sp.sqrt(flow2.disc.subs(point))
    point.update({fs.eta: sp.Rational(3, 2), fs.t: sp.Rational(5, 4)})
    ours = flow2.propagator.subs(point).evalf(45)
    with mp.workdps(45):
        ref = mp.expm(-mp.mpf(3) / 2 * mp.mpf(5) / 4 * mp.matrix([[2, b], [b, c]]))
        for i in range(2):
            for j in range(2):
                # 45 working digits; 40 asked for.
                assert abs(mp.mpf(str(ours[i, j])) - ref[i, j]) < mp.mpf(10) ** -40


def test_test_point_formula_is_derived_and_matches_the_closed_form(flow2):
    assert flow2.test_point_residual() == 0
    assert flow2.test_point.subs(fs.t, 0) == flow2.f0_test
    assert flow2.reduce(flow2.test_point - flow2.closed_form_test_point()) == 0
    # Θ in place of Θ⁻¹ (a plausible typo) is caught.
    typo = (
        flow2.f0_test
        + (flow2.theta_test * flow2.theta * (sp.eye(2) - flow2.propagator) * (flow2.y - flow2.f0))[
            0
        ]
    )
    assert flow2.reduce(flow2.test_point - typo) != 0


def test_gd_mode_error_solves_the_recursion():
    e = ds.mode_error()
    # expand splits (1 − ηλ)^{k+1} into (1 − ηλ)ᵏ(1 − ηλ), so the residual cancels term by term
    assert sp.expand(e.subs(ds.k, ds.k + 1) - (1 - fs.eta * fs.lam) * e) == 0
    assert e.subs(ds.k, 0) == 1


def test_gd_gain_accumulates_the_steps():
    g = ds.mode_gain()
    step = g.subs(ds.k, ds.k + 1) - g
    # g_{k+1} − g_k = η(1 − ηλ)ᵏ: one more step of f(x) ← f(x) − ηΘ(x,X)(f_k − y).
    assert sp.simplify(step - fs.eta * ds.mode_error()) == 0
    assert g.subs(ds.k, 0) == 0
    zero = sp.Symbol("l", nonnegative=True)
    assert ds.mode_gain(zero).subs(zero, 0) == fs.eta * ds.k


def test_two_by_two_gd_map(flow2):
    solution, step, initial = ds.two_by_two_gd(flow2)
    assert step == sp.zeros(2, 1)
    assert initial == sp.zeros(2, 1)
    # A step of the wrong size (2η) is detected.
    wrong = (
        solution.subs(ds.k, ds.k + 1) - solution + 2 * fs.eta * flow2.theta * (solution - flow2.y)
    )
    assert wrong.applyfunc(flow2.reduce) != sp.zeros(2, 1)


def test_gd_stability_and_flow_limit():
    assert ds.stability_condition() == (fs.eta < 2 / fs.lam)
    assert ds.flow_limit() == sp.exp(-fs.lam * fs.t)
    assert ds.flow_mode_error() == sp.exp(-fs.eta * fs.lam * fs.t)
