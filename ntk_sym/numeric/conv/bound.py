"""The error bound of convolutional Gram matrices computed with the Hermite series dual.

Each series activation reports its truncation bounds β_T, β_Ṫ relative to √(T₁₁T₂₂) (resp.
√(Ṫ₁₁Ṫ₂₂)) over every pixel pair of every tile and of the images' own runs (`numeric.bound.
per_layer`). They propagate to first order, as for MLPs (`ntk_sym.numeric.bound`), with e, f
bounds on |δΣ[p, p']|/√(Σ₁₁[p]Σ₂₂[p']) and |δΘ[p, p']|/√(Θ₁₁[p]Θ₂₂[p']) over all image and
pixel pairs (e = f = 0 at the input), per (image, position) ratios maximised over both sets:

* Conv, Dense (s = σ_w², b = σ_b²): e' = e, since |s·mean_δ δΣ| ≤ e s·mean_δ √(Σ₁Σ₂) ≤
  e √((Σ'₁ − b)(Σ'₂ − b)) by Cauchy–Schwarz (zero padding adds zero terms); f' = max(e, f),
  since Θ' = Σ' + s·mean Θ (standard: Σ + 1 + sΘ) and e√(Σ'₁Σ'₂) + f√(S₁S₂) ≤ max(e, f)√(Θ'₁Θ'₂);
* a series activation, at exact input variances v: e' = β_T + γ e, f' = β_Ṫ + κ e + f with
  γ = max Ṫ(v) v/T(v) (|∂T/∂Σ₁₂| = |𝔼φ'φ'| ≤ √(Ṫ₁Ṫ₂)) and κ = max v𝔼[φ''²]/Ṫ(v)
  (|∂Ṫ/∂Σ₁₂| ≤ √(𝔼φ''²(v₁)𝔼φ''²(v₂)), |Ṫ₁₂| ≤ √(Ṫ₁Ṫ₂)); a closed-form one: β = 0 and κ is
  unknown (ReLU's Ṫ is not Lipschitz in Σ₁₂), so f is propagated only while e = 0;
* AvgPool, GlobalAvgPool: e' = e·max A/v', A the window (all-pixel) mean of the input variances
  and v' the pooled variance (|mean δΣ| ≤ e (mean √v₁)(mean √v₂) ≤ e √(A₁A₂)); Flatten: e' = e.
  The same with Θ for f.

After a pooling step with e > 0 the per-point variances themselves carry truncation errors,
which the first-order rule of an activation does not cover: a network with an activation after
such a step gets the per-layer bounds only (`ErrorBound.nngp`, `.ntk` None, with the reason).
Pairs computed by the 2-D rule (ρ near ±1 where the series does not reach tol) are outside the
bound and counted; squares of the β's (below 1e-28) and float64 rounding are not included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..bound import ErrorBound, per_layer
from .engine import PointData, Program
from .steps import ActivationStep, ConvStep, DenseStep, PoolStep, ReadoutStep
from .window import window_sum


def propagate_conv(program: Program, P1: PointData, P2: PointData, bounds: list,
                   diagonal_of: Callable) -> ErrorBound:
    """`ErrorBound` of a conv gram's report (module docstring); diagonal_of(extra) gives
    (Ṫ, q𝔼[φ''²]) per point from a series layer's per-point data."""
    names, layers, pairs = per_layer(program, bounds)
    kinds = sorted({s.dual.kind for s in program.steps if isinstance(s, ActivationStep)})
    kind = ", ".join(kinds) or "no activation"
    if not names:  # closed forms only: exact up to rounding
        return ErrorBound(0.0, 0.0, (), 0, kind)
    beta = dict(zip(names, layers, strict=True))
    e, f, mixed = 0.0, 0.0, False
    for i, step in enumerate(program.steps):
        if isinstance(step, ConvStep | DenseStep):
            f = None if f is None else max(e, f)
        elif isinstance(step, ActivationStep):
            if mixed and e > 0:
                return ErrorBound(None, None, tuple(layers), pairs, kind, names, reason=(
                    "an activation after pooling, whose input variances carry truncation "
                    "errors: the NNGP and NTK errors are not propagated"))
            beta_T, beta_Td = beta.get(step.name, (0.0, 0.0))
            gamma = _max_ratio(step, i, (P1, P2), lambda *a: _gamma(*a, diagonal_of))
            kappa = _max_ratio(step, i, (P1, P2), lambda *a: _kappa(*a, diagonal_of))
            if f is not None:
                f = None if kappa is None and e > 0 else beta_Td + (kappa or 0.0) * e + f
            e = beta_T + gamma * e
        elif isinstance(step, PoolStep | ReadoutStep):
            if isinstance(step, ReadoutStep) and step.kind == "flatten":
                continue
            if e > 0:
                mixed = True
            e *= max(_pool_ratio(program, step, i, P.var) for P in (P1, P2))
            if f is not None and f > 0:
                f *= max(_pool_ratio(program, step, i, P.theta) for P in (P1, P2))
    reason = "" if f is not None else (
        "the NTK's is not: a closed-form activation after a series layer, whose Ṫ need not be "
        "Lipschitz in Σ₁₂")
    return ErrorBound(float(e), None if f is None else float(f), tuple(layers), pairs, kind,
                      names, reason=reason)


def _max_ratio(step, i: int, sets, ratio):
    values = [ratio(step, P.var[i], P.var[i + 1], P.extra[i]) for P in sets]
    return None if any(v is None for v in values) else max(values)


def _gamma(step, v, T, extra, diagonal_of) -> float:
    """max Ṫ(v) v/T(v) over the (position, image) points (0 where T = 0: φ(u) = 0 a.s.)."""
    Tdot = step.dual.diag(v)[1] if extra is None else diagonal_of(extra)[0]
    return _safe_max(Tdot * v, T)


def _kappa(step, v, T, extra, diagonal_of) -> float | None:
    """max v𝔼[φ''²]/Ṫ(v), from the series data (None for duals without it)."""
    if extra is None:
        return None
    Tdot, slope = diagonal_of(extra)
    return _safe_max(slope, Tdot)


def _safe_max(num, den) -> float:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    return float(ratio.max()) if ratio.size else 0.0


def _pool_ratio(program: Program, step, i: int, diagonals) -> float:
    """max A/v' for a pooling step (module docstring), from the per-point diagonals before
    and after it (Σ or Θ); 0 while Θ = 0."""
    before, after = diagonals[i], diagonals[i + 1]
    if before is None or after is None:
        return 0.0
    before = np.asarray(before, dtype=float)
    nd = program.nd
    if isinstance(step, ReadoutStep):
        mean = before.reshape(-1, before.shape[-1]).mean(0)
    else:
        groups = [tuple(range(nd))]
        mean = window_sum(before, groups, step.window, program.shapes[i]) / step.window.count
    return _safe_max(mean, after)
