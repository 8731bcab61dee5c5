"""The O(1/n) finite-width expansion: exact ReLU laws, and an independent Monte Carlo.

The Monte Carlo below is written here, from the network's definition, and does not use
`ntk_sym.finite`. It samples one input's forward and backward pass exactly but without forming
the weight matrices: for W with i.i.d. N(0, 1) entries and a fixed input a, W a = ‖a‖ g with
g = W â ~ N(0, I), and W(I − ââᵀ) is independent of g, so Wᵀδ = â (g·δ) + ‖δ‖ P⊥ ξ (in law,
jointly with g) for any δ that depends on W only through g, ξ ~ N(0, I) independent, P⊥ the
projection orthogonal to â. (δ is the backward signal, a function of W a and of later layers.)
The empirical NTK is then Θ̂ = Σ_k ‖δ_k‖² (σ_w² ‖a_k‖²/n_k + σ_b²), the empirical NNGP
Σ̂ = σ_w² ‖a_L‖²/n_L + σ_b². `test_projection_sampler_matches_dense_weights` checks the sampler
against literal weight matrices.

Tolerances. The variance of a sample variance is (μ₄ − σ⁴)/E; the O(1/n²) remainder is measured
by fitting n·Var = b + c/n over the widths (weighted least squares), and the prediction must
match b within 4 standard errors of the fit; at each width, the prediction b/n must match
the measured variance within 4 standard errors plus the fitted |c|/n² allowance.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import ntk_sym
from ntk_sym.errors import NTKSymError
from ntk_sym.layers import Dense, Relu
from ntk_sym.numeric.finite_width import moments
from ntk_sym.symbolic.activations import get
from ntk_sym.symbolic.finite_width import expansion
from ntk_sym.symbolic.gaussian_moments import MOMENTS, mpmath_moment

# -- the independent Monte Carlo ---------------------------------------------------------------
_FUNCTIONS = {
    "relu": (lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(float)),
    "tanh": (np.tanh, lambda h: 1.0 / np.cosh(h) ** 2),
}


def _erf_pair():
    from scipy.special import erf

    return erf, lambda h: 2.0 / np.sqrt(np.pi) * np.exp(-(h**2))


_FUNCTIONS["erf"] = _erf_pair()


def sample_kernels(name, w, b, widths, x, ensemble, seed, chunk=20000):
    """(Σ̂, Θ̂) at the input x for `ensemble` networks Dense(w, b), φ, …, Dense(w, b)."""
    phi, dphi = _FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    nngp, ntk = [], []
    for start in range(0, ensemble, chunk):
        size = min(chunk, ensemble - start)
        fan = [x.size] + list(widths)
        outs = list(widths) + [1]
        acts = [np.broadcast_to(x, (size, x.size))]
        pres, gs = [], []
        for k in range(len(fan)):
            a = acts[-1]
            g = rng.standard_normal((size, outs[k]))
            norm = np.linalg.norm(a, axis=1, keepdims=True)
            h = w / np.sqrt(fan[k]) * norm * g + b * rng.standard_normal((size, outs[k]))
            gs.append(g)
            pres.append(h)
            if k < len(widths):
                acts.append(phi(h))
        delta = np.ones((size, 1))
        total = np.zeros(size)
        for k in range(len(fan) - 1, -1, -1):
            a = acts[k]
            sq = np.einsum("ij,ij->i", a, a)
            total += np.einsum("ij,ij->i", delta, delta) * (w**2 * sq / fan[k] + b**2)
            if k == 0:
                break
            unit = a / np.sqrt(sq)[:, None]
            xi = rng.standard_normal(a.shape)
            xi -= unit * np.einsum("ij,ij->i", xi, unit)[:, None]
            along = np.einsum("ij,ij->i", gs[k], delta)
            back = unit * along[:, None] + np.linalg.norm(delta, axis=1)[:, None] * xi
            delta = dphi(pres[k - 1]) * (w / np.sqrt(fan[k])) * back
        last = acts[-1]
        nngp.append(w**2 * np.einsum("ij,ij->i", last, last) / fan[-1] + b**2)
        ntk.append(total)
    return np.concatenate(nngp), np.concatenate(ntk)


def _dense_weights_kernels(name, w, b, widths, x, ensemble, seed):
    """The same with literal weight matrices (slow; the sampler's check)."""
    phi, dphi = _FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    sizes = [x.size] + list(widths) + [1]
    Ws = [rng.standard_normal((ensemble, sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)]
    bs = [rng.standard_normal((ensemble, sizes[k + 1])) for k in range(len(sizes) - 1)]
    acts, pres = [np.broadcast_to(x, (ensemble, x.size))], []
    for k, (W, bb) in enumerate(zip(Ws, bs, strict=False)):
        h = w / np.sqrt(sizes[k]) * np.einsum("eij,ej->ei", W, acts[-1]) + b * bb
        pres.append(h)
        if k < len(Ws) - 1:
            acts.append(phi(h))
    delta = np.ones((ensemble, 1))
    total = np.zeros(ensemble)
    for k in range(len(Ws) - 1, -1, -1):
        sq = np.einsum("ij,ij->i", acts[k], acts[k])
        total += np.einsum("ij,ij->i", delta, delta) * (w**2 * sq / sizes[k] + b**2)
        if k:
            back = np.einsum("eij,ei->ej", Ws[k], delta)
            delta = dphi(pres[k - 1]) * (w / np.sqrt(sizes[k])) * back
    last = acts[-1]
    return w**2 * np.einsum("ij,ij->i", last, last) / sizes[-2] + b**2, total


def _variance_and_error(s: np.ndarray) -> tuple[float, float]:
    c = s - s.mean()
    var = np.mean(c**2)
    return var, np.sqrt(max(np.mean(c**4) - var**2, 0.0) / s.size)


def _fit(ns, values, errors):
    """Weighted least squares of y = b + c/n: (b, c, se(b))."""
    ns = np.asarray(ns, dtype=float)
    A = np.stack([np.ones_like(ns), 1 / ns], axis=1) / np.asarray(errors)[:, None]
    y = np.asarray(values) / np.asarray(errors)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    cov = np.linalg.inv(A.T @ A)
    return coef[0], coef[1], np.sqrt(cov[0, 0])


# -- exact laws: bias-free ReLU ----------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_relu_exact_laws_equal_widths(depth):
    e = expansion(ntk_sym.mlp("relu", depth).layers, sp.Rational(7, 3))
    sigma = e.nngp
    assert all(c == 0 for c in e.nngp_shift + e.ntk_shift)  # 𝔼 equals the limit
    assert sp.simplify(e.ntk - (depth + 1) * sigma) == 0
    # Var[Σ̂]/Σ² = Π(1 + 5/n_ℓ) − 1: its 1/n_ℓ coefficients are 5 each.
    n = sp.symbols(f"n1:{depth + 1}", positive=True)
    eps = sp.Symbol("eps")
    product = sp.prod([1 + 5 * eps / ni for ni in n]) - 1
    first_order = sp.diff(product, eps).subs(eps, 0)
    ours = sum(c / ni for c, ni in zip(e.nngp_var, n, strict=False)) / sigma**2
    assert sp.simplify(ours - first_order) == 0
    ratio = sp.simplify(sum(e.ntk_var) / e.ntk**2)
    assert ratio == sp.Rational(depth * (11 * depth + 7), 3 * (depth + 1))


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_relu_exact_laws_unequal_widths(depth):
    e = expansion(ntk_sym.mlp("relu", depth, w_std=2.0).layers, 1)
    for m, c in enumerate(e.ntk_var, 1):
        r, s = depth + 1 - m, m
        assert sp.nsimplify(sp.simplify(c / e.ntk**2)) == sp.Rational(
            5 * r**2 + 5 * s**2 + 2 * r * s, (depth + 1) ** 2
        )
    for c in e.nngp_var:
        assert sp.simplify(c / e.nngp**2) == 5


def test_relu_at_one_layer_is_three_over_n():
    e = expansion(ntk_sym.mlp("relu", 1, 1.3).layers, sp.Rational(1, 2))
    assert sp.simplify(e.ntk_var[0] / e.ntk**2) == 3


# -- the moments ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["erf", "tanh", "relu"])
def test_numeric_moments_against_mpmath(name):
    """The Gauss–Legendre rule (and the compiled closed forms) against 30-digit quadrature."""
    phi = get(name)
    got = moments(phi, np.array([0.3, 2.5]))
    for i, v in enumerate((0.3, 2.5)):
        for k in MOMENTS:
            ref = float(mpmath_moment(phi, k, v))
            assert abs(got[k][i] - ref) <= 1e-12 * max(1.0, abs(ref)), (k, v)


# -- against finite networks ----------
CASES = {
    "relu_bias": ("relu", 1.4, 0.3),
    "erf": ("erf", 1.5, 0.2),
    "tanh": ("tanh", 1.6, 0.1),
}


def _net(name, w, b, depth):
    return ntk_sym.mlp(name, depth, w, b)


def _check(case, depth, widths, ensemble, seed):
    name, w, b = CASES[case]
    x = np.linspace(-1.0, 1.5, 4)
    net = _net(name, w, b, depth)
    for kind in ("nngp", "ntk"):
        vals, errs, shifts, shift_errs, preds_var, preds_shift = [], [], [], [], [], []
        for k, n in enumerate(widths):
            fw = net.finite_width(x[None, :], n)
            samples = sample_kernels(name, w, b, [n] * depth, x, ensemble, seed + k)
            s = samples[0 if kind == "nngp" else 1]
            v, ve = _variance_and_error(s)
            vals.append(n * v)
            errs.append(n * ve)
            limit = getattr(fw, kind)[0]
            shifts.append(n * (s.mean() - limit))
            shift_errs.append(n * np.sqrt(v / s.size))
            preds_var.append(n * getattr(fw, f"{kind}_var")[0])
            preds_shift.append(n * (getattr(fw, f"{kind}_mean")[0] - limit))
        b_fit, c_fit, se = _fit(widths, vals, errs)
        assert abs(b_fit - preds_var[0]) <= 4 * se, (case, kind, b_fit, preds_var[0], se)
        for n, val, err, pred in zip(widths, vals, errs, preds_var, strict=False):
            assert abs(val - pred) <= 4 * err + abs(c_fit) / n, (case, kind, n, val, pred)
        a_fit, _, se_a = _fit(widths, shifts, shift_errs)
        assert abs(a_fit - preds_shift[0]) <= 4 * se_a, (case, kind, a_fit, preds_shift[0], se_a)
    return preds_shift, shift_errs


@pytest.mark.parametrize("case", list(CASES))
def test_montecarlo_small(case):
    """Depth 2, widths 32–128, 2·10⁴ networks per width."""
    _check(case, 2, (32, 64, 128), 20000, 11)


def test_nngp_shift_is_seen():
    """erf, bias-free, depth 3: the NNGP's mean shift (negative) stands above the Monte Carlo
    floor, and agrees with the prediction within that floor plus the O(1/n²) allowance
    (10 % of the shift at n = 64: the fitted |c/a| in the sweeps is below 5)."""
    x = np.linspace(-1.0, 1.5, 4)
    n = 64
    fw = _net("erf", 1.0, 0.0, 3).finite_width(x[None, :], n)
    shift = fw.nngp_mean[0] - fw.nngp[0]
    nngp, _ = sample_kernels("erf", 1.0, 0.0, [n] * 3, x, 60000, 5)
    floor = np.std(nngp) / np.sqrt(nngp.size)
    assert shift < -5 * floor
    assert abs(nngp.mean() - fw.nngp_mean[0]) < 4 * floor + 0.1 * abs(shift)


def test_relu_diagonal_means_are_the_limit():
    """ReLU with bias: t(q) = q/2 is linear and ṫ = 1/2 constant, and the gradient term
    vanishes, so the predicted diagonal mean shifts are zero (checked against the finite networks
    in test_montecarlo_small[relu_bias])."""
    fw = _net("relu", 1.4, 0.3, 4).finite_width(np.ones((1, 3)), 8)
    assert np.allclose(fw.nngp_mean, fw.nngp, rtol=1e-14)
    assert np.allclose(fw.ntk_mean, fw.ntk, rtol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_montecarlo_sweep(case):
    """Depth 3, widths 64–512, 10⁵ networks per width."""
    _check(case, 3, (64, 128, 256, 512), 100000, 23)


def test_unequal_widths_montecarlo():
    name, w, b = CASES["erf"]
    x = np.linspace(-1.0, 1.5, 4)
    widths = (48, 160)
    fw = _net(name, w, b, 2).finite_width(x[None, :], widths)
    nngp, ntk = sample_kernels(name, w, b, widths, x, 80000, 3)
    for s, pred in ((nngp, fw.nngp_var[0]), (ntk, fw.ntk_var[0])):
        v, ve = _variance_and_error(s)
        # O(1/n²) allowance: 15 % of the prediction at n = 48 (the fits above find |c|/b ≲ 5).
        assert abs(v - pred) <= 4 * ve + 0.15 * pred


def test_projection_sampler_matches_dense_weights():
    x = np.array([0.3, -1.1, 0.8])
    a = sample_kernels("tanh", 1.3, 0.2, [24, 24], x, 30000, 1)
    d = _dense_weights_kernels("tanh", 1.3, 0.2, [24, 24], x, 30000, 2)
    for s, t in zip(a, d, strict=False):
        for stat in (np.mean, np.var):
            sa, st = stat(s), stat(t)
            err = np.std(s) / np.sqrt(s.size) * (1 if stat is np.mean else 2 * np.std(s))
            assert abs(sa - st) <= 5 * err * np.sqrt(2), (stat.__name__, sa, st)


# -- errors ----------
@pytest.mark.parametrize("width", [1, 0, 64.0, 2.5, True, "64"])
def test_bad_widths(width):
    with pytest.raises(NTKSymError, match="width"):
        ntk_sym.mlp("relu", 2).finite_width(np.ones((2, 3)), width)


def test_wrong_number_of_widths():
    with pytest.raises(NTKSymError, match="2 hidden layers"):
        ntk_sym.mlp("relu", 2).finite_width(np.ones((2, 3)), [64, 64, 64])


def test_uncovered_layer_is_named():
    net = ntk_sym.serial(Dense(), Relu(), ntk_sym.layers.LayerNorm(), Dense())
    with pytest.raises(NTKSymError, match="LayerNorm"):
        net.finite_width(np.ones((2, 3)), 64)


def test_shapes_and_coefficients():
    X = np.random.default_rng(0).standard_normal((5, 3))
    fw = ntk_sym.mlp("erf", 3, 1.2, 0.1).finite_width(X, (64, 128, 256))
    assert fw.ntk_var.shape == (5,) and fw.coefficients["ntk_var"].shape == (5, 3)
    assert np.allclose(fw.ntk_var, fw.coefficients["ntk_var"] @ (1 / np.array([64, 128, 256])))


def test_printed_step_gives_relu_five_over_n():
    """The printed recursion, with bias-free ReLU's moments (t = q/2, 𝔼[φ⁴] = 3q²/2) put in,
    gives the new source's Var[Σ̂]/Σ² = 5 and the covariance factor (σ_w²/2)² per layer."""
    from ntk_sym.symbolic.finite_width import latex, step_equations

    eqs = {str(eq.lhs): eq.rhs for eq in step_equations()}
    qs = sp.Symbol(r"q_\ell", positive=True)
    sw = sp.Symbol(r"\sigma_w", positive=True)
    sb = sp.Symbol(r"\sigma_b", positive=True)
    relu = {"t": qs / 2, "t'": sp.Rational(1, 2), r"\mathbb{E}[\phi^4]": 3 * qs**2 / 2}
    def put(expr):
        for f in expr.atoms(sp.Function):
            name = type(f).__name__
            if name in relu:
                expr = expr.subs(f, relu[name])
        return expr
    new = put(eqs[r"{C_{\Sigma\Sigma}}^{(\ell+1)}_{\mathrm{new}}"])
    assert sp.simplify(new / (sw**2 * qs / 2) ** 2) == 5
    old = put(eqs[r"C_{\Sigma\Sigma}^{(\ell+1)}"])
    c = sp.Symbol(r"C_{\Sigma\Sigma}^{(\ell)}")
    assert sp.simplify(old - (sw**2 / 2) ** 2 * c) == 0
    assert sb not in new.free_symbols
    assert latex().startswith(r"\begin{aligned}")


def test_unequal_widths_relu_formula_montecarlo():
    """Bias-free ReLU, depth 2, widths (32, 128): the finite networks' Var[Θ̂]/𝔼[Θ̂]² against
    Σ_m (5R² + 5S² + 2RS)/(n_m (L + 1)²), R = L + 1 − m, S = m, and Var[Σ̂]/Σ² against
    (1 + 5/n₁)(1 + 5/n₂) − 1 (exact at every width). Allowance for the NTK's O(1/n²): 15 % of the
    prediction (its size at these widths, from the equal-width sweep's fit, is below 10 %)."""
    widths = (32, 128)
    x = np.linspace(-1.0, 1.5, 4)
    nngp, ntk = sample_kernels("relu", 1.0, 0.0, widths, x, 100000, 9)
    formula = sum(
        (5 * (3 - m) ** 2 + 5 * m**2 + 2 * (3 - m) * m) / (n * 9) for m, n in enumerate(widths, 1)
    )
    v, ve = _variance_and_error(ntk)
    mean = ntk.mean()
    assert abs(v / mean**2 - formula) <= 4 * ve / mean**2 + 0.15 * formula
    v, ve = _variance_and_error(nngp)
    exact = (1 + 5 / widths[0]) * (1 + 5 / widths[1]) - 1
    # 𝔼[Σ̂] is the limit exactly, so divide by Σ² itself: Σ = (‖x‖²/d)/4 at σ_w = 1, depth 2.
    sigma = (x @ x / x.size) / 4
    assert abs(v / sigma**2 - exact) <= 4 * ve / sigma**2
