"""Property-based test: random layer lists on adversarial inputs, float64 against 60 digits.

Networks start with a Dense (σ_w ∈ [0.5, 2], σ_b ∈ [0, 1]), then hidden units drawn from
(φ, Dense), (LayerNorm, φ, Dense), Residual(Dense, φ, Dense) (valid after the first Dense:
the block ends in a Dense, so its output is uncorrelated with the skip) and Identity, and end in
a Dense. Inputs are a few rows built to break the engine: duplicates, antipodes x and −x,
parallels 3x, norms from 1e-150 to 1e150 (mixed in one matrix), and zero rows when the first
Dense has σ_b > 0 (else a zero row has zero variance, refused by LayerNorm).

Each example checks, for both kernels K (NNGP and NTK):
* accuracy: |K − K_ref| ≤ TOL·√(K_ref,ii K_ref,jj) with K_ref the mpmath backend at 60 digits
  (an independent evaluation, pair by pair in covariance form, `ntk_sym.symbolic.reference`);
  TOL = 1e-12 is the engine's stated accuracy at these depths (tests/test_kernels_accuracy.py:
  per layer its closed forms err by a few ulps, the Hermite series by ≤ 1e-14 certified);
* symmetry, exactly: K(X, X) = K(X, X)ᵀ bit for bit;
* positive semi-definiteness: λ_min ≥ −(TOL + m·ε)·trace. An entrywise error
  |E_ij| ≤ TOL·√(K_ii K_jj) has ‖E‖₂ ≤ TOL·‖v vᵀ‖₂ = TOL·trace (v = √diag K), so an exactly
  PSD kernel computed within TOL keeps λ_min ≥ −TOL·trace; eigvalsh adds a backward error of
  about m·ε·‖K‖₂ ≤ m·ε·trace. So c = TOL/ε + m in λ_min ≥ −c·ε·trace.

The fast tier uses activations with closed-form duals (the 60-digit path evaluates them
directly). Under `-m slow`: deeper networks with more rows, and networks with tanh and softplus,
which have no closed form, so that their reference is a 2-D mpmath quadrature per pair (43 s
for 3 rows and one tanh layer at 20 digits on the 2-core machine); those run at 30 digits, still
18 orders below TOL. On huge inputs the float64 engine may refuse with an `NTKSymError` naming
the variance (erf's closed form overflows at Σ ≳ 1e154; the series' quadrature resolves φ on the
scale of x); any other exception, or a NaN, fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from ntk_sym.errors import NTKSymError
from ntk_sym.layers import (
    Abs,
    Dense,
    Erf,
    Gelu,
    Identity,
    LayerNorm,
    LeakyRelu,
    Relu,
    Residual,
    Softplus,
    Tanh,
    serial,
)

TOL = 1e-12
EPS = np.finfo(np.float64).eps
#: Row norms: tiny, ordinary and huge, all in one matrix.
NORMS = (1e-150, 1e-8, 1.0, 1e8, 1e150)
#: The fast tier's norms. Near-degenerate pairs from huge and tiny norms break TOL today (the
#: xfail tests below; also x, −x at ‖x‖ = 1e-8 with σ_b > 0: 1.1e-10), and the slow tier, drawing
#: from NORMS, fails until they are fixed. Degenerate rows (duplicates, antipodes, zeros) stay.
FAST_NORMS = (1.0, 3.0)

#: Gelu is left out: its NTK loses accuracy at large variances (below).
CLOSED_FORM = (Relu, Erf, Abs, lambda: LeakyRelu(0.1))
SERIES = (Tanh, Softplus)


@st.composite
def dense(draw) -> Dense:
    # σ_b is 0 or at least 0.01: a subnormal σ_b whose square underflows is not the point here
    return Dense(draw(st.floats(0.5, 2.0)), draw(st.just(0.0) | st.floats(0.01, 1.0)))


@st.composite
def networks(draw, activations, max_units: int):
    """Dense, then 1…max_units hidden units, then the readout Dense if the last unit has none."""
    phi = st.sampled_from(activations).map(lambda make: make())
    layers = [draw(dense())]
    for _ in range(draw(st.integers(1, max_units))):
        kind = draw(st.sampled_from(("activation", "layernorm", "residual", "identity")))
        if kind == "activation":
            layers += [draw(phi), draw(dense())]
        elif kind == "layernorm":
            layers += [LayerNorm(), draw(phi), draw(dense())]
        elif kind == "residual":
            layers.append(Residual(draw(dense()), draw(phi), draw(dense())))
        else:
            layers.append(Identity())
    if not isinstance(layers[-1], Dense):
        layers.append(draw(dense()))
    return serial(*layers)


@st.composite
def adversarial_inputs(draw, max_rows: int, zero_rows: bool, norms: tuple) -> np.ndarray:
    """Rows each fresh (a random direction at a drawn norm) or made from an earlier row."""
    d = draw(st.integers(1, 4))
    ops = ["fresh", "duplicate", "antipode", "parallel"] + (["zero"] if zero_rows else [])
    rows: list[np.ndarray] = []
    for _ in range(draw(st.integers(2, max_rows))):
        op = draw(st.sampled_from(ops)) if rows else "fresh"
        if op == "fresh":
            direction = np.array(draw(st.lists(st.floats(-1, 1), min_size=d, max_size=d)))
            assume(np.linalg.norm(direction) > 0.1)
            rows.append(direction / np.linalg.norm(direction) * draw(st.sampled_from(norms)))
        elif op == "zero":
            rows.append(np.zeros(d))
        else:
            earlier = rows[draw(st.integers(0, len(rows) - 1))]
            rows.append({"duplicate": 1.0, "antipode": -1.0, "parallel": 3.0}[op] * earlier)
    return np.array(rows)


def _check(net, X: np.ndarray, dps: int) -> None:
    try:
        computed = net.kernels(X)
    except NTKSymError as err:
        # at huge variances the engine may refuse with a clear error, never a NaN or another
        # exception: erf's closed form overflows at Σ ≳ 1e154, the Hermite series' quadrature
        # resolves φ on the scale of x
        assert np.max(np.abs(X)) >= 1e8 and "varian" in str(err), (err, net, X)
        return
    # the reference must resolve 1 + 2Σ (erf) and σ_b² + Σ at Σ ~ ‖x‖²: `dps` digits beyond
    # the inputs' squared range (at ‖x‖ = 1e150 and 60 digits, 1 + 2Σ rounds to 2Σ)
    top = np.max(np.abs(X))
    digits = dps + (2 * int(np.ceil(np.log10(top))) if top > 1 else 0)
    reference = net.kernels(X, backend="mpmath", dps=digits)
    # a kernel beyond float64's range is not the engine's to represent
    assume(all(np.all(np.abs(K) < 1e300) for K in reference))
    for K, ref in zip(computed, reference, strict=True):
        assert np.all(np.isfinite(K)), (net, X)
        scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        error = np.abs(K - ref)
        assert np.all(error <= TOL * scale), (np.max(error / scale), net, X)
        assert np.array_equal(K, K.T), (net, X)
        lam_min = np.linalg.eigvalsh(K)[0]
        c = TOL / EPS + len(X)
        assert lam_min >= -c * EPS * np.trace(K), (lam_min, net, X)


def _property(activations, max_units: int, max_rows: int, dps: int = 60, norms=NORMS):
    @given(st.data())
    def run(data):
        net = data.draw(networks(activations, max_units), label="net")
        zero_rows = net.layers[0].b_std > 0
        _check(net, data.draw(adversarial_inputs(max_rows, zero_rows, norms), label="X"), dps)

    return run


_FAST = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    # each example costs seconds (the 60-digit path): report the first failure unshrunk
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

test_closed_form_networks_on_adversarial_inputs = _FAST(
    _property(CLOSED_FORM, max_units=3, max_rows=5, norms=FAST_NORMS)
)

test_deeper_closed_form_networks = pytest.mark.slow(
    settings(_FAST, max_examples=60)(_property(CLOSED_FORM, max_units=5, max_rows=6))
)

# 30 digits: the quadrature reference's cost grows with the digits, and 1e-30 is still 18
# orders below TOL
test_networks_with_series_duals = pytest.mark.slow(
    settings(_FAST, max_examples=8)(
        _property(SERIES + CLOSED_FORM, max_units=2, max_rows=3, dps=30)
    )
)


@pytest.mark.xfail(strict=True, reason="GELU's Ṫ cancels for parallel inputs at large variance")
def test_gelu_ntk_on_parallel_inputs_of_large_norm():
    """Found by the property test: for x and 3x at ‖x‖ = 1e8 the NTK errs by 2.8e-9 relative to
    √(Θ_ii Θ_jj) (6.5e-13 at ‖x‖ = 1e4: the error grows with the norm); the NNGP is within 2e-16."""
    net = serial(Dense(1.0, 0.4), Gelu(), Dense(1.0, 0.0))
    _check(net, np.array([[1e8], [3e8]]), 60)


@pytest.mark.xfail(strict=True, reason="near-antipodal pair after a biased Dense and LayerNorm")
def test_layernorm_abs_on_antipodal_inputs_of_large_norm():
    """Found by the property test: x and −x at ‖x‖ = 1e8 through Dense (σ_b > 0), LayerNorm,
    |·|: cos θ = −1 + 2σ_b²/‖x‖²-ish after LayerNorm, and the kernels err by ~2e-9."""
    net = serial(Dense(1.0, 0.5), LayerNorm(), Abs(), Dense(0.6, 0.3), Abs(), Dense(0.7, 0.96))
    x = np.array([1e8, 0.0, 1.3e5])
    _check(net, np.array([x, -x, np.zeros(3)]), 60)
