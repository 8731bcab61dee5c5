"""A bound on the error of Gram matrices computed with a dual that certifies its truncation.

The dual reports, per layer l, the largest truncation errors of T₁₂ and Ṫ₁₂ relative to
√(T₁₁T₂₂) and √(Ṫ₁₁Ṫ₂₂): β_T⁽ˡ⁾, β_Ṫ⁽ˡ⁾ (`CompiledDual.reports_bound`). Errors then propagate
through the recursion Σ' = sT + b, Θ' = Σ' + sṪΘ (s = σ_w², b = σ_b²). To first order, with
e_l, f_l the errors of Σ⁽ˡ⁾ and Θ⁽ˡ⁾ relative to √(K₁₁K₂₂) (e₁ = f₁ = 0: the first layer is
exact) and using |Ṫ₁₂| ≤ √(Ṫ₁₁Ṫ₂₂), |∂Ṫ/∂q₁₂| = |𝔼[φ''φ'']| ≤ √(𝔼φ''²(q₁) 𝔼φ''²(q₂)),
|Θ₁₂| ≤ √(Θ₁₁Θ₂₂) (Cauchy–Schwarz for the Gaussian pair and for the positive kernels),

    e_{l+1} ≤ α β_T + γ e_l,
    f_{l+1} ≤ μ e_{l+1} + ν β_Ṫ + κ e_l + ν f_l,

with per-point ratios maximised over both input sets: α = max sT/Σ', γ = max sṪq/Σ',
μ = max Σ'/Θ' (standard parameterization, where Θ' holds T itself: Σ'/(sΘ')), ν = max sṪΘ/Θ',
κ = max s·(q𝔼φ''²)·Θ/Θ' (each bound on a product √(x₁x₂) by the larger factor). The result
bounds max |K − K_exact|/√(K₁₁K₂₂) over all entries, to first order in the β's (their squares,
below 1e-28, are dropped); pairs done by the two-dimensional rule are not covered (counted).

This propagation assumes the MLP recursion: a program of a folded Dense followed by fused
Activation → Dense steps only (every network that `ntk_sym.mlp_spec` recognises), each activation
reporting bounds. For other layer lists (residual blocks, LayerNorm, mixed closed-form and series
activations) only the per-layer bounds are reported: `ErrorBound.nngp` and `.ntk` are then None,
and nothing is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .engine import PointData, Program
from .steps import ActivationDense


@dataclass(frozen=True)
class ErrorBound:
    """Certified (to first order) maximum errors of a Gram computation.

    nngp, ntk: bounds on max ``|K − K_exact|/√(K_ii K_jj)`` of the two kernels, or None where they
    are not propagated (`reason`; MLPs: this module's docstring, convolutional networks:
    `ntk_sym.numeric.conv.bound`);
    layers: the per-layer truncation bounds (β_T, β_Ṫ) the duals reported, in layer order;
    layer_names: the names of those layers;
    quadrature_pairs: entries (pairs × layers) computed by the 2-D rule, outside the bound;
    kind: the duals' kind ("hermite series", or a closed form: then all zeros, exact up to
    rounding).
    """

    nngp: float | None
    ntk: float | None
    layers: tuple[tuple[float, float], ...]
    quadrature_pairs: int
    kind: str
    layer_names: tuple[str, ...] = ()
    #: why nngp or ntk is None (what is not propagated), empty when both are given
    reason: str = ""

    def __str__(self) -> str:
        where = f"[{self.kind}; {self.quadrature_pairs} pair-layers by the 2-D rule]"
        worst = max((max(b) for b in self.layers), default=0.0)
        if self.nngp is None:
            why = self.reason or "not an MLP: the NNGP and NTK errors are not propagated"
            return f"per-layer truncation ≤ {worst:.1e} relative to √(T11 T22) ({why}) {where}"
        ntk = "not propagated" if self.ntk is None else f"{self.ntk:.1e}"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"max error ≤ {self.nngp:.1e} (NNGP), {ntk} (NTK) relative to √(K_ii K_jj){why}"
            f" {where}"
        )


def per_layer(program: Program, bounds: list) -> tuple[tuple[str, ...], list, int]:
    """Max-reduce the tiles' (layer name, (β_T, β_Ṫ, pairs)) per layer, in program order, and
    sum the pairs done by the 2-D rule."""
    names = [s.name for s in program.steps if _reports(s)]
    layers = {name: [0.0, 0.0] for name in names}
    pairs = 0
    for name, (beta_T, beta_Td, count) in bounds:
        layers[name][0] = max(layers[name][0], float(beta_T))
        layers[name][1] = max(layers[name][1], float(beta_Td))
        pairs += int(count)
    return tuple(names), [tuple(layers[n]) for n in names], pairs


def propagate(
    program: Program, P1: PointData, P2: PointData, bounds: list, diagonal_of: Callable
) -> ErrorBound:
    """`ErrorBound` from a gram report's "bounds" and "points" (module docstring).

    diagonal_of(extra) gives (Ṫ, q 𝔼[φ''²]) per point from the dual's per-point data of a layer.
    """
    names, layers, pairs = per_layer(program, bounds)
    kind = ", ".join(sorted({d.kind for d in map(_dual, program.steps) if d is not None}))
    if not names:  # closed forms only: exact up to rounding
        return ErrorBound(0.0, 0.0, (), 0, kind or "no activation")
    is_mlp = program.first is not None and all(
        isinstance(s, ActivationDense) and _reports(s) for s in program.steps
    )
    if not is_mlp:
        return ErrorBound(None, None, tuple(layers), pairs, kind, names)
    e = f = 0.0
    for k, (step, (beta_T, beta_Td)) in enumerate(zip(program.steps, layers, strict=True), 1):
        ratios = [_ratios(step, P.stages[k - 1], P.stages[k], diagonal_of) for P in (P1, P2)]
        alpha, gamma, mu, nu, kappa = (max(r[j] for r in ratios) for j in range(5))
        e_next = alpha * beta_T + gamma * e
        f = mu * e_next + nu * beta_Td + kappa * e + nu * f
        e = e_next
    return ErrorBound(float(e), float(f), tuple(layers), pairs, kind, names)


def _dual(step):
    """The compiled dual of an activation step (fused or not), else None."""
    return getattr(getattr(step, "activation", step), "dual", None)


def _reports(step) -> bool:
    dual = _dual(step)
    return dual is not None and dual.reports_bound


def _ratios(step: ActivationDense, before, after, diagonal_of) -> tuple[float, ...]:
    """α, γ, μ, ν, κ of one fused hidden layer (module docstring) over one point set: `before`
    holds q = Σ(x, x) and Θ(x, x), `after` Σ', Θ' and, in `extra`, T and the dual's data
    (`steps.ActivationDense.points`)."""
    s, standard = step.dense.s, step.dense.standard
    q, theta = before.var, before.ntk
    T, Sigma, theta_next = after.extra[0], after.var, after.ntk
    Tdot, slope = diagonal_of(after.extra[4])
    values = (
        s * T / Sigma,
        s * Tdot * q / Sigma,
        Sigma / (s * theta_next) if standard else Sigma / theta_next,
        s * Tdot * theta / theta_next,
        s * slope * theta / theta_next,
    )
    return tuple(float(v.max()) if v.size else 0.0 for v in values)
