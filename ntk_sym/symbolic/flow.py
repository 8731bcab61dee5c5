"""Gradient flow in function space, derived and solved in SymPy.

Convention: squared loss L(θ) = ½‖f(X; θ) − y‖² on n training points, gradient flow
dθ/dt = −η ∇_θ L with learning rate η. The chain rule gives

    df/dt = J dθ/dt = −η J Jᵀ (f − y) = −η Θ (f − y),     J = ∂f(X)/∂θ,  Θ = J Jᵀ,

whose solution is f_t = y + e^{−ηΘt}(f₀ − y). A test point x obeys df_t(x)/dt = −η Θ(x, X)(f_t − y);
integrating gives

    f_t(x) = f₀(x) + Θ(x, X) Θ⁻¹ (I − e^{−ηΘt}) (y − f₀(X)).

Every statement here is produced by SymPy (differentiation, `dsolve`, `integrate`) and checked by
substitution; nothing is typed in as a result. Discrete gradient descent lives in
`ntk_sym.symbolic.discrete_flow`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

#: Learning rate η, time t, an integration variable s, and an eigenvalue λ of the training NTK.
eta = sp.Symbol("eta", positive=True)
t = sp.Symbol("t", nonnegative=True)
s = sp.Symbol("s", nonnegative=True)
lam = sp.Symbol("lambda", positive=True)


@dataclass(frozen=True)
class ChainRuleDerivation:
    """df/dt for a two-unit network f(x) = (a₁φ(w₁x) + a₂φ(w₂x))/√2 at two inputs, φ arbitrary.

    `function_flow` is d f(X)/dt from SymPy's chain rule with dθ/dt = −η ∂L/∂θ substituted;
    `residual` = `function_flow` + η Θ (f − y) with Θ = J Jᵀ, expanded (the zero vector).
    `matrix_form` is the same statement for a general n × p Jacobian as matrix expressions:
    (dθ/dt, df/dt) = (−η Jᵀ r, J (−η Jᵀ r)) with r = f − y.
    """

    params: tuple[sp.Expr, ...]
    outputs: sp.Matrix
    targets: sp.Matrix
    loss: sp.Expr
    param_flow: dict[sp.Expr, sp.Expr]
    function_flow: sp.Matrix
    jacobian: sp.Matrix
    ntk: sp.Matrix
    residual: sp.Matrix
    matrix_form: tuple[sp.MatrixExpr, sp.MatrixExpr]


def chain_rule_ode() -> ChainRuleDerivation:
    """Derive df/dt = −ηΘ(f − y) from dθ/dt = −η∇_θ L by the chain rule (explicit Jacobian)."""
    phi = sp.Function("phi")
    w1, w2, a1, a2 = params = tuple(sp.Function(name)(t) for name in ("w_1", "w_2", "a_1", "a_2"))
    inputs = sp.symbols("x_1 x_2", real=True)
    targets = sp.Matrix(sp.symbols("y_1 y_2", real=True))
    outputs = sp.Matrix([(a1 * phi(w1 * x) + a2 * phi(w2 * x)) / sp.sqrt(2) for x in inputs])
    error = outputs - targets
    loss = (error.T * error)[0] / 2
    param_flow = {p.diff(t): -eta * sp.diff(loss, p) for p in params}
    function_flow = outputs.diff(t).subs(param_flow)
    jacobian = outputs.jacobian(params)
    ntk = jacobian * jacobian.T
    residual = (function_flow + eta * ntk * error).applyfunc(sp.expand)

    n, p = sp.symbols("n p", integer=True, positive=True)
    J = sp.MatrixSymbol("J", n, p)
    r = sp.MatrixSymbol("r", n, 1)
    dtheta = -eta * J.T * r
    matrix_form = (dtheta, J * dtheta)
    return ChainRuleDerivation(
        params,
        outputs,
        targets,
        loss,
        param_flow,
        function_flow,
        jacobian,
        ntk,
        residual,
        matrix_form,
    )


def mode_solution() -> tuple[sp.Eq, sp.Expr]:
    """Solve one eigenmode of the flow: z = vᵀ(f − y) with Θv = λv obeys dz/dt = −ηλ z.

    Returns the SymPy `dsolve` solution z(t) = z₀ e^{−ηλt} and its substitution residual
    dz/dt + ηλz (which simplifies to 0). This is the general-n solution: in the eigenbasis
    Θ = V diag(λ) Vᵀ the n modes decouple, so f_t − y = V e^{−ηΛt} Vᵀ (f₀ − y) = e^{−ηΘt}(f₀ − y).
    """
    z = sp.Function("z")
    z0 = sp.Symbol("z_0", real=True)
    ode = sp.Eq(z(t).diff(t), -eta * lam * z(t))
    sol = sp.dsolve(ode, z(t), ics={z(0): z0})
    residual = sp.simplify(sol.rhs.diff(t) + eta * lam * sol.rhs)
    return sol, residual


def mode_gain(eigenvalue: sp.Expr = lam) -> sp.Expr:
    """g(λ, t) = ∫₀ᵗ η e^{−ηλs} ds, the weight Θ⁻¹(I − e^{−ηΘt}) gives one eigenmode.

    Integrating the test-point ODE mode by mode gives f_t(x) = f₀(x) + Θ(x,X) V diag(g) Vᵀ (y − f₀);
    g = (1 − e^{−ηλt})/λ for λ > 0 and ηt for λ = 0 (pass a nonnegative symbol to see both).
    """
    return sp.integrate(eta * sp.exp(-eta * eigenvalue * s), (s, 0, t))


@dataclass(frozen=True)
class TwoByTwoFlow:
    """The flow for a symbolic symmetric Θ = [[a, b], [b, c]], solved through its eigenvalues.

    D stands for √((a − c)² + 4b²) > 0 (distinct eigenvalues; Θ = aI is the scalar case of
    `mode_solution`); every algebraic identity below holds modulo D² = `disc`.
    `propagator` is e^{−ηΘt} = Σᵢ e^{−ηλᵢt} Pᵢ with the spectral projectors
    Pᵢ = (Θ − λⱼI)/(λᵢ − λⱼ) (Sylvester); `solution` is f_t = y + e^{−ηΘt}(f₀ − y).
    `test_point` is f_t(x) derived by integrating df_t(x)/dt = −ηΘ(x,X)(f_t − y) from 0 to t.
    """

    theta: sp.Matrix
    D: sp.Symbol
    disc: sp.Expr
    eigenvalues: tuple[sp.Expr, sp.Expr]
    projectors: tuple[sp.Matrix, sp.Matrix]
    propagator: sp.Matrix
    f0: sp.Matrix
    y: sp.Matrix
    solution: sp.Matrix
    theta_test: sp.Matrix
    f0_test: sp.Symbol
    test_point: sp.Expr

    def reduce(self, expr: sp.Expr) -> sp.Expr:
        """`expr` as a rational function of its exponentials, with D² replaced by disc.

        Each distinct e^{u} and each power bᵏ with a symbolic exponent becomes a fresh symbol
        (D enters them only through λᵢ), and the numerator is reduced modulo D² − disc. A result
        of 0 proves that `expr` vanishes identically for D = √disc.
        """
        symbols: dict[tuple[sp.Expr, sp.Expr], sp.Symbol] = {}

        def as_symbol(e: sp.Expr) -> sp.Symbol:
            key = (sp.expand(e.base), sp.expand(e.exp))
            return symbols.setdefault(key, sp.Symbol(f"E_{len(symbols)}"))

        expr = expr.replace(lambda e: isinstance(e, sp.exp), as_symbol)
        # then powers: expanding first splits b^{k+1} into b^k·b, one symbol per mode
        expr = sp.expand(expr, power_exp=True).replace(
            lambda e: e.is_Pow and bool(e.exp.free_symbols), as_symbol
        )
        num, den = sp.fraction(sp.together(expr))
        num = sp.rem(sp.Poly(sp.expand(num), self.D), sp.Poly(self.D**2 - self.disc, self.D))
        return sp.factor(num.as_expr()) / den

    def ode_residual(self) -> sp.Matrix:
        """d f_t/dt + ηΘ(f_t − y), reduced (the zero vector)."""
        res = self.solution.diff(t) + eta * self.theta * (self.solution - self.y)
        return res.applyfunc(self.reduce)

    def initial_residual(self) -> sp.Matrix:
        """f_0 − f₀, reduced (the zero vector)."""
        return (self.solution.subs(t, 0) - self.f0).applyfunc(self.reduce)

    def closed_form_test_point(self) -> sp.Expr:
        """The textbook f₀(x) + Θ(x,X)Θ⁻¹(I − e^{−ηΘt})(y − f₀), for comparison only."""
        gain = self.theta.inv() * (sp.eye(2) - self.propagator)
        return self.f0_test + (self.theta_test * gain * (self.y - self.f0))[0]

    def test_point_residual(self) -> sp.Expr:
        """d f_t(x)/dt + ηΘ(x,X)(f_t − y), reduced (zero)."""
        res = self.test_point.diff(t) + eta * (self.theta_test * (self.solution - self.y))[0]
        return self.reduce(res)


def two_by_two_flow() -> TwoByTwoFlow:
    """Solve df/dt = −ηΘ(f − y) for a symbolic symmetric 2 × 2 Θ and derive f_t(x)."""
    a, c = sp.symbols("a c", positive=True)
    b = sp.Symbol("b", real=True)
    theta = sp.Matrix([[a, b], [b, c]])
    D = sp.Symbol("D", positive=True)
    disc = sp.expand((a - c) ** 2 + 4 * b**2)
    mu = sp.Symbol("mu")
    roots = sp.solve(theta.charpoly(mu).as_expr(), mu)
    eigenvalues = tuple(sorted((sp.expand(r.subs(sp.sqrt(disc), D)) for r in roots), key=str))
    l1, l2 = eigenvalues
    eye = sp.eye(2)
    projectors = ((theta - l2 * eye) / (l1 - l2), (theta - l1 * eye) / (l2 - l1))

    def propagator_at(time: sp.Expr) -> sp.Matrix:
        return sum(
            (sp.exp(-eta * li * time) * P for li, P in zip(eigenvalues, projectors, strict=True)),
            sp.zeros(2, 2),
        )

    f0 = sp.Matrix(sp.symbols("f0_1 f0_2", real=True))
    y = sp.Matrix(sp.symbols("y_1 y_2", real=True))
    propagator = propagator_at(t)
    solution = y + propagator * (f0 - y)

    theta_test = sp.Matrix([sp.symbols("Theta_x1 Theta_x2", real=True)])
    f0_test = sp.Symbol("f0_x", real=True)
    residual_s = propagator_at(s) * (f0 - y)
    # power_exp=False keeps each e^{−ηλᵢs} whole, so the integral stays in the modes' terms
    integral = residual_s.applyfunc(
        lambda e: sp.integrate(sp.expand(e, power_exp=False), (s, 0, t), conds="none")
    )
    test_point = f0_test - eta * (theta_test * integral)[0]
    return TwoByTwoFlow(
        theta,
        D,
        disc,
        eigenvalues,
        projectors,
        propagator,
        f0,
        y,
        solution,
        theta_test,
        f0_test,
        sp.expand(test_point, power_exp=False),
    )
