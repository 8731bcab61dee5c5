"""scikit-learn integration: kernels, analytic hyperparameter gradients, estimators.

Independent references: the depth-1 ReLU NTK written out below (Cho & Saul's arc-cosine
kernels), central differences of the kernel values, a direct linear solve for the t = ∞
regressor, and scikit-learn's own estimator checks.
"""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import ntk_sym  # noqa: E402
from ntk_sym.gradients import kernel_gradients  # noqa: E402
from ntk_sym.layers import Conv, Dense, Flatten, Relu  # noqa: E402
from ntk_sym.sklearn import NNGP, NTK, NTKClassifier, NTKRegressor  # noqa: E402
from ntk_sym.symbolic.activations import resolve  # noqa: E402
from ntk_sym.symbolic.tangent import dc, dq11, dq12, dq22, dual_tangent  # noqa: E402
from tests.conftest import relative_entry_error  # noqa: E402

#: Central differences in log σ with step h: truncation ~h²·|∂³K| ≈ 1e-10 and rounding
#: ~1e-16/h ≈ 1e-11 relative to the kernel scale, so 1e-6 leaves four digits of margin.
FD_STEP, GRAD_RTOL = 1e-5, 1e-6


def _inputs(seed: int = 0) -> np.ndarray:
    """Random rows with an exact duplicate (rows 1 and 4) and mixed norms."""
    X = np.random.default_rng(seed).normal(size=(7, 3)) * [[1.0], [0.5], [2], [1], [1], [3], [1]]
    X[4] = X[1]
    return X


def _central_difference(kind, activation, depth, w, b, X, which):
    step = np.exp(FD_STEP * np.eye(2)[which])
    up = getattr(ntk_sym.mlp(activation, depth, w * step[0], b * step[1]), kind)(X)
    down = getattr(ntk_sym.mlp(activation, depth, w / step[0], b / step[1]), kind)(X)
    return (up - down) / (2 * FD_STEP)


def relu_depth1_ntk(X, Y, w, b):
    """Θ⁽²⁾ of one ReLU layer, written out: Σ⁽²⁾ + Σ̇⁽²⁾ Σ⁽¹⁾ with the arc-cosine kernels."""
    d = X.shape[1]
    s12 = w**2 * X @ Y.T / d + b**2
    s11 = w**2 * np.sum(X * X, 1)[:, None] / d + b**2
    s22 = w**2 * np.sum(Y * Y, 1)[None, :] / d + b**2
    cos = np.clip(s12 / np.sqrt(s11 * s22), -1, 1)
    th = np.arccos(cos)
    sigma = w**2 * np.sqrt(s11 * s22) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi) + b**2
    sigma_dot = w**2 * (np.pi - th) / (2 * np.pi)
    return sigma + sigma_dot * s12


# -- kernel values --------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kind", [(NTK, "ntk"), (NNGP, "nngp")])
def test_kernel_values_are_the_network_kernels(cls, kind):
    X, Y = _inputs(), _inputs(1)[:4]
    kernel = cls(depth=3, w_std=1.3, b_std=0.2, activation="erf")
    net = ntk_sym.mlp("erf", 3, 1.3, 0.2)
    assert np.array_equal(kernel(X), getattr(net, kind)(X))
    assert np.array_equal(kernel(X, Y), getattr(net, kind)(X, Y))
    # the O(n) diagonal agrees with the Gram matrix's to rounding
    np.testing.assert_allclose(kernel.diag(X), np.diag(kernel(X)), rtol=1e-13)


def test_relu_kernel_matches_the_written_out_formula():
    X, Y = _inputs(), _inputs(2)
    K = NTK(depth=1, w_std=1.4, b_std=0.3)(X, Y)
    # 1e-12: both are float64 evaluations of the same formula; arccos near ±1 costs a few digits
    np.testing.assert_allclose(K, relu_depth1_ntk(X, Y, 1.4, 0.3), rtol=1e-12, atol=1e-12)


# -- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "activation, depth, w, b",
    [("relu", 1, 1.4, 0.3), ("relu", 4, 0.9, 0.1), ("erf", 2, 1.2, 0.5), ("gaussian", 2, 1.0, 0.4),
     ("leaky_relu", 3, 1.1, 0.2), ("relu", 2, 1.3, 0.0)],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_gradients_match_central_differences(activation, depth, w, b, kind):
    X = _inputs()
    g = kernel_gradients(ntk_sym.mlp(activation, depth, w, b), X)
    analytic = g.d_ntk if kind == "ntk" else g.d_nngp
    values = g.ntk if kind == "ntk" else g.nngp
    assert np.all(np.isfinite(analytic))
    for which in (0, 1):
        fd = _central_difference(kind, activation, depth, w, b, X, which)
        err = relative_entry_error(analytic[..., which], fd, np.diag(values), np.diag(values))
        assert err.max() < GRAD_RTOL, (which, err.max())
    # duplicate rows: the diagonal entry and the off-diagonal copy have the same derivative
    np.testing.assert_allclose(analytic[1, 4], analytic[1, 1], rtol=1e-13)


def test_gradients_are_finite_and_right_on_adversarial_inputs(nasty_inputs):
    """Duplicates, exactly parallel and antipodal rows, norms 1e-3..1e3, a pair 1e-9 apart."""
    X = np.vstack(nasty_inputs)
    K = ntk_sym.mlp("relu", 3, 1.4, 0.3).ntk(X)
    d_ntk = kernel_gradients(ntk_sym.mlp("relu", 3, 1.4, 0.3), X).d_ntk
    for which in (0, 1):
        fd = _central_difference("ntk", "relu", 3, 1.4, 0.3, X, which)
        assert relative_entry_error(d_ntk[..., which], fd, np.diag(K), np.diag(K)).max() < 1e-6


def test_sklearn_gradient_is_the_log_space_derivative_in_hyperparameter_order():
    X = _inputs()
    kernel = NTK(depth=2, w_std=1.2, b_std=0.4)
    names = [h.name for h in kernel.hyperparameters]
    assert names == ["b_std", "w_std"]
    np.testing.assert_allclose(kernel.theta, np.log([0.4, 1.2]))
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (7, 7, 2)
    for i in range(2):
        step = FD_STEP * np.eye(2)[i]
        up = kernel.clone_with_theta(kernel.theta + step)(X)
        down = kernel.clone_with_theta(kernel.theta - step)(X)
        fd = (up - down) / (2 * FD_STEP)
        assert relative_entry_error(G[..., i], fd, np.diag(K), np.diag(K)).max() < GRAD_RTOL


def test_angle_form_tangent_is_the_covariance_derivative():
    """The (q11, q22, cos θ) jvp of ReLU equals SymPy's jvp of its covariance-form dual."""
    tangent = dual_tangent(resolve("relu"))
    dual = resolve("relu").dual  # in q11, q12, q22
    point = {sp.Symbol("q_11", positive=True): 1.3, sp.Symbol("q_22", positive=True): 0.7}
    q11, q22 = point
    q12 = sp.Symbol("q_12", real=True)
    point[q12] = 0.4
    tan = {dq11: 0.3, dq12: -0.2, dq22: 0.5}
    direct = sum(sp.diff(dual, v) * tan[d] for v, d in ((q11, dq11), (q12, dq12), (q22, dq22)))
    root = sp.sqrt(point[q11] * point[q22])
    cos = point[q12] / root
    dcos = tan[dq12] / root - cos / 2 * (tan[dq11] / point[q11] + tan[dq22] / point[q22])
    th, c, s = sp.acos(cos), sp.Symbol("c", real=True), sp.Symbol("s", nonnegative=True)
    angle_point = {**point, sp.Symbol("theta", nonnegative=True): th, c: cos, s: sp.sin(th)}
    steps = ((dq11, tan[dq11]), (dq22, tan[dq22]), (dc, dcos))
    via_angle = sum(tangent.dT[t] * v for t, v in steps)
    assert abs(float(direct.subs(point)) - float(via_angle.subs(angle_point))) < 1e-14


def test_zero_bias_is_a_fixed_hyperparameter():
    kernel = NTK(depth=2)
    assert [h.name for h in kernel.hyperparameters if not h.fixed] == ["w_std"]
    _, G = kernel(_inputs(), eval_gradient=True)
    assert G.shape == (7, 7, 1)


# -- scikit-learn conventions -----------------------------------------------------------------
def test_kernel_api_conventions():
    kernel = NTK(depth=3, w_std=1.5, b_std=0.1, activation="erf")
    assert not kernel.is_stationary()
    assert clone(kernel) == kernel and clone(kernel) is not kernel
    params = kernel.get_params()
    assert params["depth"] == 3 and params["activation"] == "erf"
    moved = kernel.clone_with_theta(np.log([0.2, 2.0]))
    assert (moved.b_std, moved.w_std) == pytest.approx((0.2, 2.0))
    assert moved.depth == 3
    kernel.set_params(depth=2)
    assert kernel.depth == 2
    composite = ConstantKernel(2.0) * NTK(depth=2, b_std=0.1) + WhiteKernel(0.3)
    X = _inputs()
    expected = 2.0 * NTK(depth=2, b_std=0.1)(X) + 0.3 * np.eye(7)
    np.testing.assert_allclose(composite(X), expected, rtol=1e-14)
    assert composite(X, eval_gradient=True)[1].shape == (7, 7, 4)


def test_gp_regression_learns_sigma_w_and_sigma_b():
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[:120]), (y[:120] - y.mean()) / y.std()
    kernel = NTK(depth=2, w_std=1.0, b_std=0.5) + WhiteKernel(0.5)
    gp = GaussianProcessRegressor(kernel, random_state=0).fit(X, y)
    start = gp.log_marginal_likelihood(kernel.theta)
    assert gp.log_marginal_likelihood_value_ > start + 1.0
    # at the optimum inside the bounds the analytic gradient of the evidence vanishes
    lml, grad = gp.log_marginal_likelihood(gp.kernel_.theta, eval_gradient=True)
    free = np.all(np.abs(gp.kernel_.theta[:, None] - gp.kernel_.bounds) > 1e-3, axis=1)
    assert np.all(np.abs(grad[free]) < 1e-2 * max(1.0, abs(lml)))
    assert gp.kernel_.k1.w_std != 1.0 and gp.kernel_.k1.b_std != 0.5


def test_svc_precomputed_and_callable_agree_and_classify():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kernel = NTK(depth=3, w_std=1.5, b_std=0.1)
    train, test = np.arange(0, 569, 2), np.arange(1, 569, 2)
    pre = SVC(kernel="precomputed", C=1.0).fit(kernel(X[train]), y[train])
    pred_pre = pre.predict(kernel(X[test], X[train]))
    pred_call = SVC(kernel=kernel, C=1.0).fit(X[train], y[train]).predict(X[test])
    assert np.array_equal(pred_pre, pred_call)
    assert np.mean(pred_pre == y[test]) > 0.93  # linear and RBF SVMs reach ~0.97 here


def test_kernel_ridge_pipeline_and_grid_search():
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:150], y[:150]
    pipe = make_pipeline(StandardScaler(), KernelRidge(kernel=NTK(depth=2, b_std=0.1)))
    grid = GridSearchCV(pipe, {"kernelridge__alpha": [0.1, 10.0],
                               "kernelridge__kernel__depth": [1, 3]}, cv=3)  # fmt: skip
    grid.fit(X, y)
    assert grid.best_score_ > 0.2  # diabetes: linear models reach R² ≈ 0.45
    assert grid.best_params_["kernelridge__kernel__depth"] in (1, 3)


def test_regressor_at_infinite_time_is_kernel_regression():
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[:80]), y[:80] / 100
    reg = NTKRegressor(depth=2, w_std=1.2, b_std=0.3, diag_reg=1e-3).fit(X[:60], y[:60])
    mean, std = reg.predict(X[60:], return_std=True)
    net = ntk_sym.mlp("relu", 2, 1.2, 0.3)
    theta = net.ntk(X[:60]) + 1e-3 * np.eye(60)
    np.testing.assert_allclose(mean, net.ntk(X[60:], X[:60]) @ np.linalg.solve(theta, y[:60]),
                               rtol=1e-8)  # fmt: skip
    assert std.shape == (20,) and np.all(std > 0)
    # t = 0: the untrained network, mean 0 and the NNGP's prior standard deviation
    mean0, std0 = clone(reg).set_params(t=0.0).fit(X[:60], y[:60]).predict(X[60:], True)
    np.testing.assert_allclose(mean0, 0.0)
    np.testing.assert_allclose(std0, np.sqrt(np.diag(net.nngp(X[60:]))), rtol=1e-12)


def test_classifier_and_regressor_in_cross_validation():
    X, y = load_iris(return_X_y=True)
    clf = make_pipeline(StandardScaler(), NTKClassifier(depth=2, b_std=0.1, diag_reg=1e-2))
    assert cross_val_score(clf, X, y, cv=5).mean() > 0.9
    folds = KFold(3, shuffle=True, random_state=0)  # iris is sorted by species
    # petal width has mean 1.2: without a bias (b_std = 0) f(0) = 0 and R² drops to ~0.6
    params = {"depth": [1, 2], "t": [1.0, np.inf], "b_std": [0.0, 0.5]}
    grid = GridSearchCV(NTKRegressor(diag_reg=1e-2), params, cv=folds)
    grid.fit(StandardScaler().fit_transform(X[:, :3]), X[:, 3])
    assert grid.best_score_ > 0.85 and grid.best_params_["b_std"] == 0.5


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_gets_sklearn_style_errors():
    X = _inputs()
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NTK()(bad)
    with pytest.raises(ValueError, match="same number of features"):
        NTK()(X, X[:, :2])
    with pytest.raises(ValueError, match="0 < low"):
        NTK(w_std_bounds=(-1.0, 10.0))
    with pytest.raises(ValueError, match="only be evaluated when Y is None"):
        NTK()(X, X, eval_gradient=True)
    with pytest.raises(ValueError, match="input_shape"):
        NTK(network=ntk_sym.serial(Conv((3,)), Relu(), Flatten(), Dense()))(X)
    with pytest.raises(ValueError, match="needs 6"):
        NTK(network=ntk_sym.serial(Conv((3,)), Relu(), Flatten(), Dense()), input_shape=(3, 2))(
            X[:, :2]
        )
    reg = NTKRegressor().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        NTKRegressor().fit(bad, X[:, 0])


def test_tanh_kernel_values_are_the_network_kernels():
    X = _inputs()
    np.testing.assert_array_equal(NTK(depth=2, activation="tanh")(X), ntk_sym.mlp("tanh", 2).ntk(X))


@parametrize_with_checks([NTKRegressor(), NTKClassifier()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_importing_ntk_sym_does_not_import_sklearn():
    code = "import sys, ntk_sym; ntk_sym.mlp().ntk([[1.0]]); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
