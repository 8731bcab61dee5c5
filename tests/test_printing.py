"""The printing targets (ntk_sym.symbolic.printing, ntk_sym.compile.printing) against SymPy's own
arbitrary-precision evaluation, and the conventions every target shares."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ntk_sym.compile.printing import CUPY, NUMPY, SCALAR, target
from ntk_sym.errors import NTKSymError
from ntk_sym.symbolic.activations import get, names
from ntk_sym.symbolic.printing import MPMATH, compile_function, print_function
from ntk_sym.symbolic.symbols import X, q11, q12, q22

#: Points away from the kinks at 0, where SymPy's evalf is the reference.
POINTS = np.array([-4.25, -1.5, -0.3, 0.2, 0.9, 2.75, 4.5])


def _reference(expr: sp.Expr, values: dict, dps: int = 30) -> mp.mpf:
    return mp.mpf(sp.N(expr.subs(values), dps))


@pytest.mark.parametrize("name", names())
def test_activation_on_arrays_matches_sympy_evalf(name):
    """φ and φ' for NumPy arrays and for mpmath, against SymPy's evalf at 30 digits: a few
    float64 operations, so within 1e-14 relative to max(|value|, 1)."""
    act = get(name)
    for expr in (act.expr, act.derivative):
        fn = compile_function((X,), expr, NUMPY)
        values = np.broadcast_to(fn(POINTS), POINTS.shape)
        with mp.workdps(30):
            mp_fn = compile_function((X,), expr, MPMATH)
            for x, value in zip(POINTS, values, strict=True):
                ref = _reference(expr, {X: sp.Float(x, 30)})
                assert abs(value - ref) <= 1e-14 * max(abs(ref), 1), (expr, x)
                assert abs(mp_fn(mp.mpf(x)) - ref) <= mp.mpf(10) ** -25 * max(abs(ref), 1)


@pytest.mark.parametrize("name", [n for n in names() if get(n).dual is not None])
def test_closed_form_duals_on_arrays_match_sympy_evalf(name):
    """T(q11, q12, q22) and Ṫ printed for NumPy (with common subexpressions) against evalf."""
    act = get(name)
    cases = [(1.0, 0.3, 2.0), (0.5, -0.45, 0.7), (2.0, 1.9, 2.1)]
    fn = compile_function((q11, q12, q22), (act.dual, act.derivative_dual), NUMPY, cse=True)
    a, c, b = (np.array(v) for v in zip(*cases, strict=True))
    T, Tdot = (np.broadcast_to(v, a.shape) for v in fn(a, c, b))
    for i, (va, vc, vb) in enumerate(cases):
        point = {q11: sp.Float(va, 30), q12: sp.Float(vc, 30), q22: sp.Float(vb, 30)}
        for got, expr in ((T[i], act.dual), (Tdot[i], act.derivative_dual)):
            ref = mp.re(_reference(expr, point))
            assert abs(got - ref) <= 1e-13 * max(abs(ref), 1), (name, expr, cases[i])


def test_heaviside_at_zero_is_the_expressions_value_on_every_target():
    x = np.array([-2.0, 0.0, 3.0])
    cases = ((sp.Heaviside(X), 0.5), (sp.Heaviside(X, 0), 0.0), (sp.Heaviside(X, 1), 1.0))
    for expr, at_zero in cases:
        values = compile_function((X,), expr, NUMPY)(x)
        assert values.dtype == np.float64
        assert values.tolist() == [0.0, at_zero, 1.0]
        assert compile_function((X,), expr, SCALAR)(0.0) == at_zero
        assert compile_function((X,), expr, MPMATH)(mp.mpf(0)) == at_zero
        assert isinstance(compile_function((X,), expr, MPMATH)(mp.mpf(-1)), mp.mpf)


def test_dirac_delta_is_zero_on_every_target():
    """The a.e. derivative of step and sign (the kernels' Σ̇ = 0 convention)."""
    x = np.array([-1.0, 0.0, 2.0])
    sign = get("sign").derivative  # 2 δ(x)
    assert compile_function((X,), sign, NUMPY)(x).tolist() == [0.0, 0.0, 0.0]
    assert compile_function((X,), sign, SCALAR)(0.0) == 0.0
    assert compile_function((X,), sign, MPMATH)(mp.mpf(0)) == 0


def test_erf_is_vectorised_on_the_array_targets():
    """SymPy's NumPy printer prints math.erf, which fails on arrays."""
    expr = sp.erf(X) + sp.erfc(2 * X)
    numpy_source = print_function((X,), expr, NUMPY).source
    assert "math." not in numpy_source
    cupy = print_function((X,), expr, CUPY)
    assert "cupyx.scipy.special.erf(" in cupy.source and "math." not in cupy.source
    assert "cupyx.scipy.special" in cupy.modules
    grid = np.linspace(-3, 3, 11)
    assert compile_function((X,), expr, NUMPY)(grid).shape == grid.shape


def test_mpmath_functions_take_the_precision_of_the_call():
    """The cache serves every precision: nothing is rounded when the function is printed."""
    expr = sp.pi * sp.erf(X) + sp.Rational(1, 3) * sp.sqrt(X)
    with mp.workdps(15):
        fn = compile_function((X,), expr, MPMATH)
    with mp.workdps(60):
        ref = _reference(expr, {X: sp.Rational(7, 10)}, dps=60)
        assert abs(fn(mp.mpf(7) / 10) - ref) < mp.mpf(10) ** -58


def test_arguments_that_are_not_identifiers_and_the_cache():
    w2 = sp.Symbol("sigma_w^2", positive=True)
    exprs = [w2 * X, w2 + 1]
    fn = compile_function((X, w2), exprs, NUMPY, cse=True)
    assert fn(2.0, 3.0) == (6.0, 4.0)
    assert compile_function((X, w2), tuple(exprs), NUMPY, cse=True) is fn
    assert compile_function((X, w2), exprs, NUMPY) is not fn  # cse is part of the key
    assert "(x, sigma_w^2)" in fn.__doc__  # the argument order is documented


def test_unknown_functions_and_backends_are_refused():
    with pytest.raises(NotImplementedError):
        compile_function((X,), sp.Function("g")(X), NUMPY)
    with pytest.raises(NTKSymError, match="unknown backend"):
        target("jax")
