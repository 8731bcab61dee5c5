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
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorBound:
    """Certified (to first order) maximum errors of a Gram computation.

    nngp, ntk: bounds on max |K − K_exact|/√(K_ii K_jj) of the two kernels;
    layers: the per-layer truncation bounds (β_T, β_Ṫ) the dual reported;
    quadrature_pairs: entries (pairs × layers) computed by the 2-D rule, outside the bound;
    kind: the dual's kind ("hermite series", or a closed form: then all zeros, exact up to
    rounding).
    """

    nngp: float
    ntk: float
    layers: tuple[tuple[float, float], ...]
    quadrature_pairs: int
    kind: str

    def __str__(self) -> str:
        return (
            f"max error ≤ {self.nngp:.1e} (NNGP), {self.ntk:.1e} (NTK) relative to √(K_ii K_jj)"
            f" [{self.kind}; {self.quadrature_pairs} pair-layers by the 2-D rule]"
        )


def propagate(spec, P1, P2, report: dict, diagonal_of) -> ErrorBound:
    """`ErrorBound` from a filled `gram` report (see the module docstring).

    diagonal_of(extra) gives (Ṫ, q 𝔼[φ''²]) per point from the dual's per-point data of a layer.
    """
    s = spec.w_std**2
    layers = report.get("layers") or [(0.0, 0.0)] * spec.depth
    sets = [_Diagonal(P, spec) for P in (P1, P2)]
    e = f = 0.0
    for layer, (beta_T, beta_Td) in enumerate(layers):
        ratios = [d.ratios(layer, s, diagonal_of) for d in sets]
        alpha, gamma, mu, nu, kappa = (max(r[j] for r in ratios) for j in range(5))
        e_next = alpha * beta_T + gamma * e
        f = mu * e_next + nu * beta_Td + kappa * e + nu * f
        e = e_next
    return ErrorBound(
        float(e),
        float(f),
        tuple(tuple(x) for x in layers),
        int(report.get("pairs", 0)),
        spec.dual.kind,
    )


class _Diagonal:
    """Θ⁽ˡ⁾(x, x) along the layers of one point set, for the ratios of the module docstring."""

    def __init__(self, P, spec):
        self.P, self.spec = P, spec
        q, s, b = P.var[0], spec.w_std**2, spec.b_std**2
        self.theta = (q - b) / s + 1.0 if spec.standard else q

    def ratios(self, layer: int, s: float, diagonal_of) -> tuple[float, ...]:
        P, spec = self.P, self.spec
        q, T, Sigma = P.var[layer], P.T[layer], P.var[layer + 1]
        Tdot, slope = diagonal_of(P.extra[layer])
        first = T + 1.0 if spec.standard else Sigma
        theta_next = first + s * Tdot * self.theta
        values = (
            s * T / Sigma,
            s * Tdot * q / Sigma,
            Sigma / (s * theta_next) if spec.standard else Sigma / theta_next,
            s * Tdot * self.theta / theta_next,
            s * slope * self.theta / theta_next,
        )
        self.theta = theta_next
        return tuple(float(v.max()) if v.size else 0.0 for v in values)
