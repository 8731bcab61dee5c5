"""Discrete gradient descent in function space, solved in SymPy, and its spectral filters.

Convention: one step of gradient descent with step size η on L = ½‖f(X) − y‖² moves the
linearised outputs by f_{k+1} = f_k − ηΘ(f_k − y). Along an eigenvector v of Θ (Θv = λv) the
error e_k = vᵀ(f_k − y) obeys e_{k+1} = (1 − ηλ) e_k, so

    f_k = y + (I − ηΘ)ᵏ (f₀ − y),
    f_k(x) = f₀(x) + Θ(x, X) Θ⁻¹ (I − (I − ηΘ)ᵏ) (y − f₀(X)).

It converges iff ``|1 − ηλ| < 1`` for every eigenvalue, i.e. 0 < η < 2/λ_max, and k = t/η steps tend
to the gradient flow of unit learning rate at time t as η → 0. The per-mode "spectral filters"
(how much of mode λ is still wrong, how much has been learnt) are returned as SymPy expressions
for printing; the float64 versions in `ntk_sym.dynamics.filters` are tested against them.
"""

from __future__ import annotations

import sympy as sp

from .flow import TwoByTwoFlow, eta, lam, mode_solution, t

#: Number of gradient-descent steps and a summation index.
k = sp.Symbol("k", integer=True, nonnegative=True)
j = sp.Symbol("j", integer=True, nonnegative=True)


def mode_error() -> sp.Expr:
    """e_k/e₀ = (1 − ηλ)ᵏ, from `rsolve` on e_{k+1} = (1 − ηλ) e_k."""
    e = sp.Function("e")
    sol = sp.rsolve(e(k + 1) - (1 - eta * lam) * e(k), e(k), {e(0): 1})
    return sp.simplify(sol)


def mode_gain(eigenvalue: sp.Expr = lam) -> sp.Expr:
    """g_k(λ) = η Σ_{j<k} (1 − ηλ)ʲ, the weight Θ⁻¹(I − (I − ηΘ)ᵏ) gives one eigenmode.

    Summing the steps f_{j+1}(x) − f_j(x) = −ηΘ(x,X)(f_j − y) gives
    f_k(x) = f₀(x) + Θ(x,X) V diag(g_k) Vᵀ (y − f₀); g_k = (1 − (1 − ηλ)ᵏ)/λ, and ηk at λ = 0.
    """
    return sp.simplify(eta * sp.summation((1 - eta * eigenvalue) ** j, (j, 0, k - 1)))


def flow_mode_error() -> sp.Expr:
    """e^{−ηλt}: the gradient-flow counterpart of `mode_error` (from `symbolic.mode_solution`)."""
    sol, _ = mode_solution()
    return sol.rhs / sol.rhs.subs(t, 0)


def stability_condition() -> sp.Boolean:
    """The learning rates for which one mode of eigenvalue λ > 0 converges: η < 2/λ.

    Solved from −1 < 1 − ηλ < 1 (with η > 0); all modes converge iff η < 2/λ_max.
    """
    return sp.solve([1 - eta * lam < 1, 1 - eta * lam > -1], eta)


def flow_limit() -> sp.Expr:
    """lim_{η→0} (1 − ηλ)^{t/η} = e^{−λt}: k = t/η steps of size η become the flow at time t."""
    return sp.limit(mode_error().subs(k, t / eta), eta, 0)


def two_by_two_gd(flow: TwoByTwoFlow) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """f_k = y + (I − ηΘ)ᵏ(f₀ − y) for the symbolic 2 × 2 Θ of `flow`, and its two checks.

    (I − ηΘ)ᵏ = Σᵢ (1 − ηλᵢ)ᵏ Pᵢ with the spectral projectors of `flow`. Returns the solution,
    the reduced residual f_{k+1} − f_k + ηΘ(f_k − y) of one GD step, and the reduced f_0 − f₀
    (both zero vectors).
    """
    power = sum(
        ((1 - eta * li) ** k * P for li, P in zip(flow.eigenvalues, flow.projectors, strict=True)),
        sp.zeros(2, 2),
    )
    solution = flow.y + power * (flow.f0 - flow.y)
    step = solution.subs(k, k + 1) - solution + eta * flow.theta * (solution - flow.y)
    initial = solution.subs(k, 0) - flow.f0
    return solution, step.applyfunc(flow.reduce), initial.applyfunc(flow.reduce)
