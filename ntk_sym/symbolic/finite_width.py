r"""The O(1/n) mean shift and variance of a finite network's empirical NNGP and NTK at one input.

Conventions (`ntk_sym.finite.init`): NTK parameterization, one output, hidden Dense ℓ of width
n_ℓ, h⁽ˡ⁺¹⁾ = (σ_w/√n_ℓ) W φ(h⁽ˡ⁾) + σ_b b. The empirical NNGP is
Σ̂ = (σ_w²/n_L) φ(h_L)·φ(h_L) + σ_b² (the readout's σ's) and the empirical NTK is
Θ̂ = Σ_θ (∂f/∂θ)². Both are random through the initialisation; at O(1/n) their mean and
variance are sums over the hidden layers, 𝔼 = limit + Σ_ℓ a_ℓ/n_ℓ and Var = Σ_ℓ b_ℓ/n_ℓ.
`fold` computes a_ℓ, b_ℓ.

Derivation. Let G_ℓ = (σ_w²/n) Σ_k φ(h_k)² + σ_b² be the empirical kernel that the units of
layer ℓ + 1 are drawn with: given layer ℓ they are i.i.d. N(0, G_ℓ), so the chain G_1 → G_2 → …
is Markov with 𝔼[G_{ℓ+1} | G_ℓ] = σ_w² t(G_ℓ) + σ_b², t(q) = 𝔼[φ(√q z)²], and conditional
variance σ_w⁴ Var[φ²]/n_ℓ. The NTK scalar adds Θ_{ℓ+1} = G_{ℓ+1} + D_{ℓ+1} Θ_ℓ with
D = (σ_w²/n) Σ_k φ'(h_k)²; the pair (G, Θ) is pushed through the infinite-width map M and
picks up, at every hidden layer, the covariance of the unit average (σ_w²φ², σ_w²(φ² + Θφ'²)):

    C_{ℓ+1} = J_ℓ C_ℓ J_ℓᵀ + V_ℓ/n_ℓ,   μ_{ℓ+1} = J_ℓ μ_ℓ + ½ H_ℓ : C_ℓ,

J, H the Jacobian and Hessian of M at the limit. This is exact for Σ̂ (the Markov chain) at
O(1/n). The NTK has two more terms, from the backward signals correlating with the forward ones
through the shared weights. Holding every layer but ℓ at infinite width, the layers above ℓ make
f a Gaussian process in layer ℓ's features a = φ(h_ℓ), with kernel F(G(a, b)); the parameters
below ℓ contribute Θ_ℓ Σ_k φ'_k² (∂f/∂a_k)². Its conditional variance, a Gaussian quadratic form,
gives b_ℓ ⊃ 2σ_w⁴ Θ_ℓ² 𝔼[φ'⁴] B_ℓ², with B_ℓ = Π_{m>ℓ} σ_w² ṫ(q_m) (∂F/∂G₁₂). Its conditional mean
involves the second derivatives of F; on the diagonal, in the coordinates (q₁₁, q₂₂, ρ) where F
is regular at ρ = 1 (for ReLU, F is not twice differentiable in q₁₂ there), it adds

    a_ℓ ⊃ Θ_ℓ σ_w⁴ 𝔼[φ'²φ²] (4 ∂²F/∂q₁₁∂q₂₂ − B_ℓ/G_ℓ),

with ∂²F/∂q₁₁∂q₂₂ from a forward pass of (dq/dq₀, ∂²ρ/∂q₁₁∂q₂₂) through the layers above: each
layer maps ρ with slope σ_w² q ṫ/q' and curvature σ_w² u/(4q q') − (σ_w² t')²/(4q'²),
u = 𝔼[z²φ'(√q z)²] (ρ' is maximal, = 1, at q₁₁ = q₂₂, so its first q-derivatives vanish).
For bias-free ReLU every mean shift vanishes and the variances are rationals.

The fold is plain arithmetic, so it runs on SymPy numbers (exact coefficients) and on NumPy arrays
(one entry per input point, `ntk_sym.numeric.finite_width`) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..errors import NTKSymError
from .activations import Activation
from .gaussian_moments import MOMENTS, closed_form, mpmath_moment, q
from .maps import ActivationMap, DenseMap, IdentityMap, Layer, exact

Moments = Callable[[Activation | None, object], dict]


@dataclass(frozen=True)
class Stage:
    """One Dense layer (σ_w, σ_b) with the activation before it (None: the identity, or the
    network's input for the first Dense); `source` is the index of the hidden layer whose width
    is its fan-in (None for the first Dense)."""

    w_std: sp.Expr
    b_std: sp.Expr
    phi: Activation | None
    source: int | None


# -- the layer list as stages: one rule per layer kind -------------------------------------------
def _dense(layer: DenseMap, pending: list, stages: list[Stage], where: str) -> None:
    if layer.standard:
        raise NTKSymError(
            f"layer {where} (Dense, standard parameterization): the finite-width corrections "
            "are derived for the NTK parameterization only"
        )
    if not stages and pending:
        raise NTKSymError(
            f"layer {where}: an activation before the first Dense acts on the raw input, which "
            "is not Gaussian; the finite-width corrections need a Dense first"
        )
    phi = pending[0] if pending else None
    source = None if not stages else len(stages) - 1
    stages.append(Stage(exact(layer.w_std), exact(layer.b_std), phi, source))
    pending.clear()


def _activation(layer: ActivationMap, pending: list, stages: list[Stage], where: str) -> None:
    if pending:
        raise NTKSymError(
            f"layer {where} ({layer.label()}): two activations without a Dense between them; "
            "the finite-width corrections take one activation per hidden layer"
        )
    pending.append(layer.phi)


def _identity(layer: IdentityMap, pending: list, stages: list[Stage], where: str) -> None:
    return None


_RULES: dict[type, Callable] = {
    DenseMap: _dense,
    ActivationMap: _activation,
    IdentityMap: _identity,
}


@lru_cache(maxsize=256)
def stages(layers: tuple[Layer, ...]) -> tuple[Stage, ...]:
    """The network as Dense stages; a layer kind without a derived correction raises an
    `NTKSymError` naming it."""
    out: list[Stage] = []
    pending: list[Activation] = []
    for i, layer in enumerate(layers, 1):
        rule = next((r for kind, r in _RULES.items() if isinstance(layer, kind)), None)
        if rule is None:
            raise NTKSymError(
                f"layer {i} ({type(layer).__name__}): no finite-width correction is derived for "
                "this layer kind (covered: Dense, activations, Identity)"
            )
        rule(layer, pending, out, str(i))
    return tuple(out)


def identity_moments(variance: object) -> dict:
    """The moments of φ(x) = x (two Dense layers in a row)."""
    return {
        "t": variance, "t1": 1, "t2": 0, "td": 1, "td1": 0, "td2": 0,
        "m4": 3 * variance**2, "m22": variance, "d4": 1, "u": 1,
    }


# -- the fold --------------------------------------------------------------------------------------
@dataclass
class _Source:
    """What hidden layer `index`'s finite width has done so far, as coefficients of 1/n."""

    index: int
    mean: list  # (G, Θ)
    cov: list  # (GG, GΘ, ΘΘ)
    gradient_var: object  # 2σ⁴Θ²𝔼[φ'⁴] B², B so far
    ntk: object  # Θ_ℓ
    weight: object  # σ_w⁴ 𝔼[φ'²φ²]
    kernel: object  # G after the layer
    slope: object  # dq/dq₀
    curvature: object  # ∂²ρ/∂q₁₁∂q₂₂
    sensitivity: object  # B


@dataclass
class Expansion:
    """Limits and per-hidden-layer 1/n coefficients at one input.

    nngp, ntk: the infinite-width Σ(x, x), Θ(x, x); the lists hold one coefficient per hidden
    layer ℓ, so 𝔼[Σ̂] = nngp + Σ_ℓ nngp_shift[ℓ]/n_ℓ, Var[Σ̂] = Σ_ℓ nngp_var[ℓ]/n_ℓ, and the same
    for Θ̂.
    """

    nngp: object
    ntk: object
    nngp_shift: list
    ntk_shift: list
    nngp_var: list
    ntk_var: list


def _propagate(src: _Source, m: dict, s2: object, b2: object, q: object, theta: object) -> None:
    """Push one source's coefficients through a Dense(σ_w² = s2, σ_b² = b2) after φ (moments
    `m` at the limit variance q, NTK θ): μ ← Jμ + ½H:C, C ← JCJᵀ, the gradient term by B², the
    ρ-curvature forward pass."""
    q_next = s2 * m["t"] + b2
    j00 = s2 * m["t1"]
    j10 = s2 * (m["t1"] + m["td1"] * theta)
    j11 = s2 * m["td"]
    (mg, mt), (cgg, cgt, ctt) = src.mean, src.cov
    src.mean = [
        j00 * mg + s2 * m["t2"] * cgg / 2,
        j10 * mg + j11 * mt + (s2 * (m["t2"] + m["td2"] * theta) * cgg
                               + 2 * s2 * m["td1"] * cgt) / 2,
    ]
    src.cov = [
        j00**2 * cgg,
        j00 * (j10 * cgg + j11 * cgt),
        j10**2 * cgg + 2 * j10 * j11 * cgt + j11**2 * ctt,
    ]
    src.gradient_var = j11**2 * src.gradient_var
    rho_slope = s2 * q * m["td"] / q_next
    rho_curve = s2 * m["u"] / (4 * q * q_next) - (s2 * m["t1"]) ** 2 / (4 * q_next**2)
    src.curvature = rho_slope * src.curvature + rho_curve * src.slope**2
    src.slope = j00 * src.slope
    src.sensitivity = j11 * src.sensitivity


def _inject(index: object, m: dict, s2: object, b2: object, theta: object) -> _Source:
    """The new source of a Dense (σ_w² = s2) whose fan-in is hidden layer `index`: the unit
    covariance V of (σ_w²φ², σ_w²(φ² + θφ'²)), the gradient variance 2σ_w⁴θ²𝔼[φ'⁴]."""
    var_f = m["m4"] - m["t"] ** 2
    cov_fd = m["m22"] - m["t"] * m["td"]
    var_d = m["d4"] - m["td"] ** 2
    s4 = s2**2
    return _Source(
        index=index,
        mean=[0, 0],
        cov=[
            s4 * var_f,
            s4 * (var_f + theta * cov_fd),
            s4 * (var_f + 2 * theta * cov_fd + theta**2 * var_d),
        ],
        gradient_var=2 * s4 * theta**2 * m["d4"],
        ntk=theta,
        weight=s4 * m["m22"],
        kernel=s2 * m["t"] + b2,
        slope=1,
        curvature=0,
        sensitivity=1,
    )


def _readout(src: _Source, q: object) -> tuple:
    """(nngp shift, ntk shift, nngp var, ntk var) of one source at the output (variance q)."""
    cross = q * src.curvature + src.slope**2 / (4 * q)
    ntk_shift = src.mean[1] + src.ntk * src.weight * (4 * cross - src.sensitivity / src.kernel)
    return src.mean[0], ntk_shift, src.cov[0], src.cov[2] + src.gradient_var


def fold(stage_list: Sequence[Stage], input_kernel: object, moments: Moments) -> Expansion:
    """The O(1/n) expansion at one input of kernel Σ⁰ = ‖x‖²/d (`input_kernel`); `moments(φ, q)`
    returns the dict of `ntk_sym.symbolic.gaussian_moments.MOMENTS` at variance q."""
    first = stage_list[0]
    q = first.w_std**2 * input_kernel + first.b_std**2
    theta = q
    sources: list[_Source] = []
    for stage in stage_list[1:]:
        m = moments(stage.phi, q)
        s2, b2 = stage.w_std**2, stage.b_std**2
        for src in sources:
            _propagate(src, m, s2, b2, q, theta)
        sources.append(_inject(stage.source, m, s2, b2, theta))
        q, theta = s2 * m["t"] + b2, s2 * m["t"] + b2 + s2 * m["td"] * theta
    columns = list(zip(*(_readout(src, q) for src in sources), strict=True)) or [()] * 4
    return Expansion(q, theta, *(list(c) for c in columns))


# -- the recursion as equations ----------------------------------------------------------------
_NAMES = {
    "t": "t", "t1": "t'", "t2": "t''", "td": r"\dot{t}", "td1": r"\dot{t}'", "td2": r"\dot{t}''",
    "m4": r"\mathbb{E}[\phi^4]", "m22": r"\mathbb{E}[\phi^2\phi'^2]",
    "d4": r"\mathbb{E}[\phi'^4]", "u": r"\mathbb{E}[z^2\phi'^2]",
}


def step_equations() -> list[sp.Eq]:
    """One hidden layer's step of the fold as SymPy equations, from the same code that computes
    the numbers: a source's coefficients (mean μ, covariance C of (Σ̂, Θ̂), gradient term g,
    ρ-curvature κ with slope s, sensitivity B) before (subscript ℓ) and after the Dense, the
    moments of φ at the limit variance q_ℓ, and the new source the layer's width injects."""
    qs, th, sw, sb = sp.symbols(r"q_\ell \Theta_\ell \sigma_w \sigma_b", positive=True)
    m = {k: sp.Function(name)(qs) for k, name in _NAMES.items()}
    fields = [r"\mu_{\Sigma}", r"\mu_{\Theta}", r"C_{\Sigma\Sigma}", r"C_{\Sigma\Theta}",
              r"C_{\Theta\Theta}", "g", r"\kappa", "s", "B"]
    before = {f: sp.Symbol(rf"{f}^{{(\ell)}}") for f in fields}
    b = [before[f] for f in fields]
    src = _Source(0, b[:2], b[2:5], b[5], 0, 0, 0, b[7], b[6], b[8])
    _propagate(src, m, sw**2, sb**2, qs, th)
    after = [*src.mean, *src.cov, src.gradient_var, src.curvature, src.slope, src.sensitivity]
    eqs = [sp.Eq(sp.Symbol(rf"{f}^{{(\ell+1)}}"), sp.simplify(v))
           for f, v in zip(fields, after, strict=True)]
    new = _inject(0, m, sw**2, sb**2, th)
    # the base is braced, {C}^{(ℓ+1)}_{new}: TeX allows one subscript per base
    eqs += [sp.Eq(sp.Symbol(rf"{{{f}}}^{{(\ell+1)}}_{{\mathrm{{new}}}}"), sp.simplify(v))
            for f, v in zip(fields[2:6],
                            [*new.cov, new.gradient_var], strict=True)]
    return eqs


def latex() -> str:
    """`step_equations` as a LaTeX ``aligned`` block (for the book)."""
    rows = [sp.latex(eq.lhs) + " &= " + sp.latex(eq.rhs) for eq in step_equations()]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def exact_moments(phi: Activation | None, variance: sp.Expr, dps: int = 30) -> dict:
    """The moments at `variance` as SymPy numbers: exact for piecewise-polynomial φ
    (`gaussian_moments.closed_form`), else mpmath quadrature at `dps` digits."""
    if phi is None:
        return identity_moments(variance)
    closed = closed_form(phi)
    if closed is not None:
        return {k: v.subs(q, variance) for k, v in closed.items()}
    return {k: mpmath_moment(phi, k, variance, dps) for k in MOMENTS}


def expansion(layers: tuple[Layer, ...], input_kernel: object = 1) -> Expansion:
    """The exact (SymPy) expansion at one input with Σ⁰ = ‖x‖²/d = `input_kernel`."""
    return fold(stages(layers), sp.nsimplify(input_kernel), exact_moments)
