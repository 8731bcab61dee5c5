"""Bad input gets a clear error naming the problem, never a silent NaN."""

import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.errors import ExpressionError, InputError, NTKSymError, UnknownActivationError

X = np.arange(12.0).reshape(4, 3)


@pytest.mark.parametrize(
    "X1,X2,match",
    [
        (X, np.ones((2, 4)), "same number of features"),
        (np.array([1.0, np.nan, 2.0]).reshape(1, 3), None, "non-finite"),
        (np.array([[np.inf, 0.0]]), None, "non-finite"),
        (np.ones(3), None, "must be 2-D"),
        (np.ones((2, 2, 2)), None, "must be 2-D"),
        (np.ones((0, 3)), None, "empty"),
        ([["a", "b"]], None, "numeric array"),
    ],
)
def test_bad_arrays(X1, X2, match):
    with pytest.raises(InputError, match=match):
        ntk_sym.mlp("relu", depth=2).ntk(X1, X2)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(UnknownActivationError, match="known activations: .*relu"):
        ntk_sym.mlp("rleu")


def test_expressions_need_exactly_one_symbol_and_strings_are_not_parsed():
    a, b = sp.symbols("a b")
    with pytest.raises(ExpressionError, match="exactly one free symbol"):
        ntk_sym.mlp(a * sp.tanh(b))
    with pytest.raises(UnknownActivationError):
        ntk_sym.mlp("__import__('os').system('true')")
    with pytest.raises(ExpressionError, match="not strings"):
        ntk_sym.activations.from_expression("tanh(x)")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"w_std": -1.0}, "w_std"),
        ({"w_std": 0.0}, "w_std"),
        ({"b_std": -0.1}, "b_std"),
        ({"b_std": float("nan")}, "b_std"),
        ({"depth": -1}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"parameterization": "mup"}, "parameterization"),
    ],
)
def test_bad_network_parameters(kwargs, match):
    with pytest.raises(NTKSymError, match=match):
        ntk_sym.mlp("relu", **{"depth": 2, **kwargs})


def test_unknown_backend_and_missing_cupy():
    net = ntk_sym.mlp("relu", depth=1)
    with pytest.raises(NTKSymError, match="unknown backend"):
        net.ntk(X, backend="torch")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(NTKSymError, match="CuPy"):
            net.ntk(X, backend="cupy")


@pytest.mark.parametrize(
    "options, named",
    [
        ({"out": np.zeros((4, 4))}, "out"),
        ({"tile": 2}, "tile"),
        ({"threads": 2}, "threads"),
        ({"dtype": np.float32}, "dtype"),
        ({"dtype": np.float64}, "dtype"),
        ({"progress": True}, "progress"),
        ({"chunks": 2}, "chunks"),
        ({"degree": 64}, "degree"),
        ({"tol": 1e-10}, "tol"),
        ({"tile": 2, "threads": 2}, "tile, threads"),
    ],
)
def test_mpmath_refuses_the_options_it_cannot_honour(options, named):
    """The reference returns new object arrays pair by pair: an ignored option would be a
    silent surprise (an ``out`` left at zero)."""
    net = ntk_sym.mlp("relu", depth=1)
    with pytest.raises(NTKSymError, match=rf"^{named} do not apply to backend='mpmath'"):
        net.ntk(X, backend="mpmath", **options)
    if "out" in options:
        assert not options["out"].any()


def test_kernels_with_error_bound_are_three_values_in_value_and_type():
    import typing

    from ntk_sym.kernels import Kernels, KernelsWithBound, kernels
    from ntk_sym.numeric.bound import ErrorBound

    net = ntk_sym.mlp("tanh", depth=2)
    nngp, ntk, bound = net.kernels(X, error_bound=True)
    assert isinstance(bound, ErrorBound) and nngp.shape == ntk.shape == (4, 4)
    assert len(net.kernels(X)) == 2
    for fn in (kernels, type(net).kernels):
        returns = {
            typing.get_type_hints(o)["error_bound"]: typing.get_type_hints(o)["return"]
            for o in typing.get_overloads(fn)
        }
        assert returns == {typing.Literal[True]: KernelsWithBound,
                           typing.Literal[False]: Kernels}


def test_divergent_expectation_is_an_error_not_nan():
    # E[exp(u)²] is finite, but exp(exp(x)) overflows float64 at these variances
    x = sp.Symbol("x")
    net = ntk_sym.mlp(sp.exp(sp.exp(3 * x)), depth=2, w_std=3.0)
    with pytest.raises(NTKSymError, match="non-finite"):
        net.ntk(np.eye(3) * 30)
