"""Forward-mode kernels: a network's NNGP and NTK with their tangents along the log σ's.

One evaluator for every layer list, vectors and images: a vector input is an image with no
spatial axes. The state at a pair of inputs is (Σ₁₂, Θ) with the per-point variances
Σ₁₁ = Σ(x, x)[p, p], Σ₂₂ = Σ(x', x')[p', p'], and each carries its tangents along D directions
(a leading axis of length D): the directions are combinations of the log σ_w, log σ_b of the
Dense and Conv layers, given to each step as a matrix of columns (`TangentProgram`). The input
is Σ⁰[p, p'] = x_p·x'_{p'}/C (C channels; x·x'/d for vectors) with Θ⁰ = 0, tangents 0.

Arrays: pair arrays are (*batch, *spatial) with batch = (n₁, n₂) (two input sets) or (n,)
(each input with itself, the per-point pass); spatial = (*S, *S') where a layer mixes
positions (AvgPool, GlobalAvgPool), else (*S) (only p = p' is read), () after the readout.
Per-point arrays are (n, *S). Tangents have the leading D axis. The per-point pass runs first
and gives every step's variances (and their tangents, and Hermite coefficients) to the pair
pass, as in `ntk_sym.numeric.conv.engine`.

Steps (compiled by `ntk_sym.compile.tangent`):

* `PointwiseStep`: a layer's pointwise map and its coefficients (`ntk_sym.symbolic.tangent`),
  dS' = Σ_j ∂S'/∂S_j dS_j + Σ_k σ_k ∂S'/∂σ_k · (direction's d log σ_k);
* `WindowStep`: Conv's and AvgPool's window means, GlobalAvgPool's and Flatten's readouts:
  linear, so the tangents move by the same map;
* `ClosedActivationStep`: closed-form duals with their hand-written jvps (`CompiledTangent`);
* `SeriesActivationStep`: the Hermite series with Price's theorem (its docstring);
* `FORK`, `JOIN`: a residual block's start and end (the kernels and tangents add).

Zero tangents: a coefficient can be infinite where its tangent is exactly zero, e.g. ReLU's
∂Ṫ/∂c = 1/(2π sin θ) at θ = 0 (identical inputs, dc = 0) or ∂T/∂q11 at a zero variance (a zero
input with σ_b = 0, where q11 ≡ 0). Such terms contribute nothing and are dropped. Identical
inputs at the same position are passed in as a mask, so their angle is exactly 0 and dc = 0 at
every layer, rather than a rounded angle of ~1e-8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError, NTKSymError
from .conv.window import Window, window_sum

#: Order of the derivative axis of the tied form: ∂/∂log σ_w, then ∂/∂log σ_b of every layer.
PARAMETERS = ("w_std", "b_std")


@dataclass(frozen=True)
class CompiledTangent:
    """An activation's duals and jvp coefficients as one array function.

    ``values(*primal) -> (T, Ṫ, dT coefficients..., dṪ coefficients...)``; the primal arguments
    are (q11, q12, q22) for form "covariance" (tangents dq11, dq12, dq22), (θ, cos θ, sin θ, q11,
    q22) for "angle" (tangents dq11, dq22, d cos θ). degree: the homogeneity degree of an angle
    form (degree 0, step and sign, has an angle map θ ↦ θ' ∝ √θ near 0).
    """

    form: str
    values: Callable
    n_tangents: int
    degree: int | None = None


@dataclass(frozen=True)
class CompiledMap:
    """A layer's pointwise map: ``values(Σ₁₁, Σ₁₂, Σ₂₂, Θ, *σ) -> (Σ₁₂', Θ', ∂/∂S (2×4 row-major),
    σ∂/∂σ (2×k row-major))``; `zero` marks the coefficients that are identically 0."""

    values: Callable
    n_sigmas: int
    zero: tuple[bool, ...]


@dataclass(frozen=True)
class Geometry:
    """Batch and spatial layout of the pair arrays (module docstring)."""

    zipped: bool
    full: bool
    nd: int

    def pooled(self) -> Geometry:
        return replace(self, full=False, nd=0)

    def groups(self, lead: int = 0) -> list[tuple[int, ...]]:
        """The spatial axes of the first input's position, then (full) of the second's."""
        start = lead + (1 if self.zipped else 2)
        first = tuple(range(start, start + self.nd))
        second = tuple(range(start + self.nd, start + 2 * self.nd))
        return [first, second] if self.full else [first]

    def _ones(self) -> tuple[int, ...]:
        return (1,) * self.nd if self.full else ()

    def left(self, v, lead: int = 0):
        """Per-point (…, n₁, *S) of the first set, broadcastable against the pair arrays."""
        head, n, spatial = v.shape[:lead], v.shape[lead], v.shape[lead + 1 :]
        batch = (n,) if self.zipped else (n, 1)
        return v.reshape(*head, *batch, *spatial, *self._ones())

    def right(self, v, lead: int = 0):
        """Per-point (…, n₂, *S') of the second set, likewise."""
        head, n, spatial = v.shape[:lead], v.shape[lead], v.shape[lead + 1 :]
        batch = (n,) if self.zipped else (1, n)
        return v.reshape(*head, *batch, *self._ones(), *spatial)

    def diagonal(self, arr, lead: int = 0):
        """Σ(x, x)[p, p] (…, n, *S) from a zipped pair array."""
        if not self.full:
            return arr
        head, n = arr.shape[:lead], arr.shape[lead]
        spatial = arr.shape[lead + 1 : lead + 1 + self.nd]
        size = int(np.prod(spatial))
        flat = arr.reshape(*head, n, size, size)
        return np.diagonal(flat, 0, -2, -1).reshape(*head, n, *spatial)

    def identical(self, rows, spatial: tuple[int, ...]):
        """Where the two inputs and positions are the same: `rows` (n₁, n₂) (or True when
        zipped) and, with pixel pairs, p = p'."""
        base = np.asarray(rows).reshape((-1,) if self.zipped else rows.shape)
        base = base.reshape(base.shape + (1,) * (len(spatial) * (2 if self.full else 1)))
        if not self.full or not spatial:
            return base
        size = int(np.prod(spatial))
        eye = np.eye(size, dtype=bool).reshape(*spatial, *spatial)
        return base & eye


@dataclass
class Pairs:
    """Σ₁₂ and Θ of the pair arrays and their tangents (D, …) along `directions` directions;
    a tangent is None while it is identically zero (before the first layer with σ's)."""

    cov: np.ndarray
    ntk: np.ndarray
    dcov: np.ndarray | None
    dntk: np.ndarray | None
    directions: int

    def __add__(self, other: Pairs) -> Pairs:
        def add(a, b):
            return b if a is None else a if b is None else a + b

        fields = (add(a, b) for a, b in zip(self.fields(), other.fields(), strict=True))
        return Pairs(*fields, self.directions)

    def fields(self) -> tuple:
        return self.cov, self.ntk, self.dcov, self.dntk

    def materialized(self) -> Pairs:
        """The same with zero arrays for the tangents that are None."""
        D = self.directions
        return Pairs(self.cov, self.ntk, _tangent(self.dcov, self.cov, D),
                     _tangent(self.dntk, self.ntk, D), D)


def _tangent(d, like, D: int):
    """d, or zeros (D, *like.shape) for None (a tangent identically zero)."""
    return np.zeros((D,) + np.shape(like)) if d is None else d


@dataclass(frozen=True)
class Side:
    """One input set's per-point variances (n, *S), their tangents (D, n, *S) and, before a
    series activation, its Hermite coefficients (c, d), each (K, n, *S)."""

    var: np.ndarray
    dvar: np.ndarray | None  # None: identically zero
    hermite: tuple | None = None

    def rows(self, sl: slice) -> Side:
        herm = None if self.hermite is None else tuple(h[:, sl] for h in self.hermite)
        return Side(self.var[sl], None if self.dvar is None else self.dvar[:, sl], herm)

    def tangent(self, D: int) -> np.ndarray:
        return _tangent(self.dvar, self.var, D)


@dataclass(frozen=True)
class Context:
    """What every step sees: the layout, the spatial shape of its input and the identity mask."""

    geom: Geometry
    shape: tuple[int, ...]
    rows: object  # (n₁, n₂) mask of identical inputs, or True (zipped)

    def identical(self):
        return self.geom.identical(self.rows, self.shape if self.geom.nd else ())


def _lead(D: int, ndim: int) -> tuple[int, ...]:
    return (D,) + (1,) * ndim


@dataclass(frozen=True)
class PointwiseStep:
    """A layer's pointwise map with its tangent (`CompiledMap`); `sigmas` its σ values and
    `columns` (D, k) the directions' d log σ of them."""

    fn: CompiledMap
    sigmas: tuple[float, ...]
    columns: np.ndarray | None
    name: str

    def __call__(self, s: Pairs, v1: Side, v2: Side, ctx: Context) -> tuple[Pairs, Context]:
        g = ctx.geom
        q11, q22 = g.left(v1.var), g.right(v2.var)
        side_tangents = (None if v.dvar is None else f(v.dvar, 1)
                         for v, f in ((v1, g.left), (v2, g.right)))
        d11, d22 = side_tangents
        tangents = (d11, s.dcov, d22, s.dntk)
        values = self.fn.values(q11, s.cov, q22, s.ntk, *self.sigmas)
        k = self.fn.n_sigmas
        out = list(values[:2])
        shape = np.broadcast_shapes(np.shape(s.cov), np.shape(out[0]))
        out = [np.broadcast_to(o, shape) if np.shape(o) != shape else o for o in out]
        if not (np.all(np.isfinite(out[0])) and np.all(np.isfinite(out[1]))):
            raise NTKSymError(
                f"{self.name}: the layer's map gives non-finite kernels at these inputs (e.g. "
                "LayerNorm of an input with zero variance, Σ(x, x) = 0, such as x = 0 with no "
                "bias before it)"
            )
        D = s.directions
        new = []
        for i in range(2):
            total = np.zeros((D,) + shape)
            for j in range(4):
                index = 2 + 4 * i + j
                if not self.fn.zero[index] and tangents[j] is not None:
                    total += values[index] * tangents[j]
            for j in range(k):
                index = 10 + k * i + j
                if not self.fn.zero[index]:
                    total += values[index] * self.columns[:, j].reshape(_lead(D, len(shape)))
            new.append(total)
        return Pairs(out[0], out[1], new[0], new[1], D), ctx


@dataclass(frozen=True)
class WindowStep:
    """A linear map over positions: "conv" (window mean moving both positions together),
    "avg_pool" (each position on its own), "global_avg_pool", "flatten" (the readouts)."""

    kind: str
    window: Window | None
    name: str

    def _map(self, arr, ctx: Context, lead: int):
        g = ctx.geom
        if self.kind == "conv":
            return window_sum(arr, g.groups(lead), self.window, ctx.shape) / self.window.count
        if self.kind == "avg_pool":
            groups = g.groups(lead)
            for group in groups:
                arr = window_sum(arr, [group], self.window, ctx.shape)
            return arr / self.window.count ** len(groups)
        axes = tuple(a for grp in g.groups(lead) for a in grp)
        if self.kind == "flatten" and g.full:
            first, second = g.groups(lead)
            size = int(np.prod(ctx.shape))
            flat = arr.reshape(*arr.shape[: first[0]], size, size)
            return np.diagonal(flat, 0, -2, -1).mean(-1)
        return arr.mean(axis=axes)

    def __call__(self, s: Pairs, v1: Side, v2: Side, ctx: Context) -> tuple[Pairs, Context]:
        if ctx.geom.nd == 0:
            raise InputError(f"{self.name}: comes after the readout (GlobalAvgPool or Flatten) "
                             "or in a network of vectors, where there are no spatial axes")
        out = Pairs(*(None if a is None else self._map(a, ctx, lead)
                      for a, lead in zip(s.fields(), (0, 0, 1, 1), strict=True)), s.directions)
        if self.kind in ("conv", "avg_pool"):
            return out, replace(ctx, shape=self.window.out_shape(ctx.shape, self.name))
        return out, replace(ctx, geom=ctx.geom.pooled(), shape=())


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den, 0 where num is exactly 0 (a variance identically zero has zero tangent)."""
    return np.where(num == 0, 0.0, num / np.where(den == 0, 1.0, den))


def _apply(coefficients: list, tangents: tuple, masked: tuple[bool, ...]):
    """Σ coefficient · tangent; in the `masked` terms a tangent exactly zero contributes zero
    even where its coefficient is infinite."""
    total = 0.0
    for coef, tan, mask in zip(coefficients, tangents, masked, strict=True):
        if isinstance(coef, int | float) and coef == 0:
            continue
        total = total + (np.where(tan == 0, 0.0, coef * tan) if mask else coef * tan)
    return total


def _activation_result(s: Pairs, T, Tdot, dT, dTdot) -> Pairs:
    """Σ' = T, Θ' = ṪΘ and their tangents dT, dṪ Θ + Ṫ dΘ."""
    shape = np.broadcast_shapes(np.shape(T), np.shape(s.cov))
    T = np.broadcast_to(T, shape)
    D = s.directions
    dT = np.broadcast_to(dT, (D,) + shape)
    return Pairs(T, Tdot * s.ntk, dT, dTdot * s.ntk + Tdot * s.dntk, D)


@dataclass(frozen=True)
class ClosedActivationStep:
    """Σ' = T, Θ' = ṪΘ for a closed-form dual, with its jvp (`CompiledTangent`)."""

    ct: CompiledTangent
    name: str

    def __call__(self, s: Pairs, v1: Side, v2: Side, ctx: Context) -> tuple[Pairs, Context]:
        ct, g, s = self.ct, ctx.geom, s.materialized()
        q11, q22 = g.left(v1.var), g.right(v2.var)
        d11, d22 = g.left(v1.tangent(s.directions), 1), g.right(v2.tangent(s.directions), 1)
        if ct.degree == 0 and (np.any(v1.var == 0) or np.any(v2.var == 0)):
            # u ≡ 0 there, so T = φ(0)² is not the angle form's J(0) (homogeneity fails at 0)
            raise NTKSymError(f"{self.name}: kernel gradients of a degree-0 activation (step, "
                              "sign) at an input of zero variance need b_std > 0")
        identical = ctx.identical()
        if ct.form == "covariance":
            primal, tangents = (q11, s.cov, q22), (d11, s.dcov, d22)
        else:
            root = np.sqrt(q11 * q22)
            positive = root > 0
            safe = np.where(positive, root, 1.0)
            cos = np.where(identical | ~positive, 1.0, np.clip(s.cov / safe, -1.0, 1.0))
            sin = np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
            th = np.arctan2(sin, cos)
            log_rate = _ratio(d11, q11) + _ratio(d22, q22)
            # cos θ = ±1 is an extremum of c, so dc = 0 there (rounded angles of near-identical
            # pairs, θ ≲ 1e-8, land here too: their dc-term is O(θ))
            at_pole = identical | ~positive | (sin == 0)
            dcos = np.where(at_pole, 0.0, s.dcov / safe - 0.5 * cos * log_rate)
            if ct.degree == 0 and np.any(at_pole & ~identical & positive):
                # there the next angle grows like √θ and its tangent is not O(θ)
                raise NTKSymError(
                    f"{self.name}: kernel gradients of a degree-0 activation (step, sign) are "
                    "ill-conditioned for distinct inputs whose angle rounds to 0 or π (closer "
                    "than ~1e-8); remove the near-duplicates"
                )
            primal, tangents = (th, cos, sin, q11, q22), (d11, d22, dcos)
        T, Tdot, *coefficients = ct.values(*primal)
        n = ct.n_tangents
        # only the dc coefficient (angle form) and zero variances meet an infinite coefficient
        zero_variance = bool(np.any(v1.var == 0) or np.any(v2.var == 0))
        masked = tuple(zero_variance or (ct.form == "angle" and i == 2) for i in range(n))
        dT = _apply(coefficients[:n], tangents, masked)
        dTdot = _apply(coefficients[n:], tangents, masked)
        return _activation_result(s, T, Tdot, dT, dTdot), ctx


@dataclass(frozen=True)
class SeriesActivationStep:
    """Σ' = T, Θ' = ṪΘ by the Hermite series, with the tangents from Price's theorem.

    With c_k(q), d_k(q) the normalised Hermite coefficients of φ and φ' at variance q
    (`ntk_sym.numeric.hermite`) and ρ = Σ₁₂/√(Σ₁₁Σ₂₂), every Gaussian cross moment is a
    Mehler series, 𝔼[f(u)g(v)] = Σ_k f_k(q₁) g_k(q₂) ρ^k, and Stein's identity gives the
    coefficients of the higher derivatives from those of φ': φ'' has √(k+1)/√q · d_{k+1}, φ'''
    has √((k+1)(k+2))/q · d_{k+2}. Price's theorem then gives

        dT = Ṫ dq12 + ½𝔼[φ''(u)φ(v)] dq11 + ½𝔼[φ(u)φ''(v)] dq22,
        dṪ = 𝔼[φ''φ''] dq12 + ½𝔼[φ'''(u)φ'(v)] dq11 + ½𝔼[φ'(u)φ'''(v)] dq22,

    with Ṫ = 𝔼[φ'φ'] (= ∂T/∂q12). The coefficients are those the kernel's series computes
    (`ntk_sym.compile.series.point_coefficients`, tails below tol/100 or RHO_REACH^{K+1}·tail
    ≤ tol), which makes the series accurate for |ρ| ≤ RHO_BULK; the derivative series are
    truncated at the same K, where their terms are larger by the factors √k and k above, so
    their error is not certified. Pairs with |ρ| > RHO_BULK take the moments from quadrature
    instead (`_moments`): the trapezoidal rule in the Cholesky frame, one-dimensional for
    identical inputs (u = v). Measured against central differences of the kernels
    (tests/test_gradients.py) the tangents agree to ~1e-9 relative for tanh.
    Where a variance is zero (σ_b = 0 and a zero input or patch) its tangent is zero too, and
    the 1/√q factors are set to 0 there.
    """

    coefficients: Callable  # q (m,) -> (c, d), each (K, m)
    functions: tuple[Callable, Callable, Callable]  # φ, φ', φ'' on arrays
    name: str

    def point_data(self, var: np.ndarray) -> tuple:
        c, d = self.coefficients(var.reshape(-1))
        return c.reshape(-1, *var.shape), d.reshape(-1, *var.shape)

    def __call__(self, s: Pairs, v1: Side, v2: Side, ctx: Context) -> tuple[Pairs, Context]:
        g = ctx.geom
        (c1, d1), (c2, d2) = _same_length(v1.hermite, v2.hermite)
        e1, f1 = _higher(d1, v1.var)
        e2, f2 = _higher(d2, v2.var)
        q11, q22 = g.left(v1.var), g.right(v2.var)
        root = np.sqrt(q11 * q22)
        rho = np.where(root > 0, s.cov / np.where(root > 0, root, 1.0), 0.0)
        rho = np.where(ctx.identical(), 1.0, np.clip(rho, -1.0, 1.0))
        pairs = ((c1, c2), (d1, d2), (e1, c2), (c1, e2), (e1, e2), (f1, d2), (d1, f2))
        sums = [np.zeros(rho.shape) for _ in pairs]
        for k in range(c1.shape[0] - 1, -1, -1):
            for acc, (a, b) in zip(sums, pairs, strict=True):
                acc *= rho
                acc += g.left(a[k]) * g.right(b[k])
        identical = np.broadcast_to(ctx.identical(), rho.shape)
        far = np.abs(rho) > RHO_BULK
        if np.any(far):
            idx = np.nonzero(far)
            a = np.broadcast_to(q11, rho.shape)[idx]
            b = np.broadcast_to(q22, rho.shape)[idx]
            values = _moments(self.functions, a, b, rho[idx], identical[idx])
            for acc, value in zip(sums, values, strict=True):
                acc[idx] = value
        T, Tdot, A1, A2, B, C1, C2 = sums
        s = s.materialized()
        d11, d22 = g.left(v1.tangent(s.directions), 1), g.right(v2.tangent(s.directions), 1)
        dT = Tdot * s.dcov + 0.5 * (A1 * d11 + A2 * d22)
        dTdot = B * s.dcov + 0.5 * (C1 * d11 + C2 * d22)
        return _activation_result(s, T, Tdot, dT, dTdot), ctx


#: Pairs with |ρ| above this take their moments from quadrature (`ntk_sym.numeric.mehler`'s
#: bulk: the coefficients are computed to make the series accurate up to it).
RHO_BULK = 0.9
#: The trapezoidal rule on z ∈ [−Z_MAX, Z_MAX] (the Gaussian weight is 2e-16 at the edge) with
#: steps H_2D (pairs) and H_1D (identical inputs): its error e^{−2πτ/h} for integrands analytic
#: in |Im z| < τ (tanh: τ = π/(2√q), error e^{−π²/(h√q)}) is below 1e-14 up to variance ~9
#: (2-D) and ~100 (1-D).
Z_MAX, H_2D, H_1D = 8.5, 0.1, 0.03
#: Pairs per chunk of the rules (the two-dimensional one holds chunk × nodes² arrays).
CHUNK_2D, CHUNK_1D = 64, 4096


def _moments(functions, q1, q2, rho, identical) -> tuple[np.ndarray, ...]:
    """(𝔼[φφ], 𝔼[φ'φ'], 𝔼[φ''(u)φ(v)], 𝔼[φ(u)φ''(v)], 𝔼[φ''φ''], 𝔼[φ'''(u)φ'(v)],
    𝔼[φ'(u)φ'''(v)]) at pairs (1-D arrays) by the trapezoidal rule; φ''' enters only through
    Stein's identity 𝔼[u φ''(u) φ'(v)] = q₁₁ 𝔼[φ'''(u)φ'(v)] + q₁₂ 𝔼[φ''(u)φ''(v)]."""
    out = [np.empty_like(rho) for _ in range(7)]
    for select, step, chunk in ((identical, H_1D, CHUNK_1D), (~identical, H_2D, CHUNK_2D)):
        where = np.nonzero(select)[0]
        for start in range(0, where.size, chunk):
            part = where[start : start + chunk]
            values = _rule(functions, q1[part], q2[part], rho[part], step, step == H_1D)
            for o, v in zip(out, values, strict=True):
                o[part] = v
    return tuple(out)


def _rule(functions, q1, q2, rho, h: float, one_dimensional: bool):
    """The moments of `_moments` at one chunk of pairs (u = v when one_dimensional)."""
    phi, dphi, ddphi = functions
    z = np.arange(-Z_MAX, Z_MAX + h / 2, h)
    w = h * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    r1, r2 = np.sqrt(q1)[:, None], np.sqrt(q2)[:, None]
    if one_dimensional:
        u, v, weights = r1 * z, r2 * z, w
    else:
        z1, z2 = z[:, None], z[None, :]
        c = rho[:, None, None]
        u = (r1[..., None] * z1) * np.ones_like(z2)
        v = r2[..., None] * (c * z1 + np.sqrt(np.maximum(1 - c * c, 0.0)) * z2)
        weights = w[:, None] * w[None, :]
    axes = tuple(range(1, u.ndim))
    f1, d1, e1 = phi(u), dphi(u), ddphi(u)
    f2, d2, e2 = phi(v), dphi(v), ddphi(v)

    def mean(x):
        return (x * weights).sum(axis=axes)

    B = mean(e1 * e2)
    q12 = rho * np.sqrt(q1 * q2)
    C1 = np.where(q1 > 0, (mean(u * e1 * d2) - q12 * B) / np.where(q1 > 0, q1, 1.0), 0.0)
    C2 = np.where(q2 > 0, (mean(d1 * v * e2) - q12 * B) / np.where(q2 > 0, q2, 1.0), 0.0)
    return mean(f1 * f2), mean(d1 * d2), mean(e1 * f2), mean(f1 * e2), B, C1, C2


def _same_length(h1: tuple, h2: tuple) -> tuple:
    """Both sides' coefficients padded with zeros to the same number of terms."""
    K = max(h1[0].shape[0], h2[0].shape[0])

    def pad(h):
        return tuple(np.concatenate([a, np.zeros((K - a.shape[0],) + a.shape[1:])]) for a in h)

    return pad(h1), pad(h2)


def _higher(d: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of φ'' and φ''' from those of φ' (Stein's identity; class docstring)."""
    K = d.shape[0]
    k = np.arange(K, dtype=float).reshape((K,) + (1,) * q.ndim)
    inv = np.where(q > 0, 1.0 / np.sqrt(np.where(q > 0, q, 1.0)), 0.0)
    e, f = np.zeros_like(d), np.zeros_like(d)
    e[:-1] = np.sqrt(k[:-1] + 1) * inv * d[1:]
    f[:-2] = np.sqrt((k[:-2] + 1) * (k[:-2] + 2)) * inv * inv * d[2:]
    return e, f


#: A residual block's start and end in a program's steps.
FORK, JOIN = "fork", "join"


@dataclass(frozen=True)
class TangentProgram:
    """The steps of a network, its directions (names) and the input's spatial shape (() for
    vectors); `full`: whether pixel pairs are kept (a layer mixes positions)."""

    steps: tuple
    parameters: tuple[str, ...]
    input_shape: tuple[int, ...]
    full: bool

    @property
    def nd(self) -> int:
        return len(self.input_shape)


def _input(program: TangentProgram, X1, X2, geom: Geometry) -> Pairs:
    """Σ⁰ = x_p·x'_{p'}/C, Θ⁰ = 0, zero tangents."""
    channels = X1.shape[-1]
    letters = "hwl"[: program.nd]
    first = "a" + letters + "z"
    second = ("a" if geom.zipped else "b") + (letters.upper() if geom.full else letters) + "z"
    target = ("a" if geom.zipped else "ab") + letters + (letters.upper() if geom.full else "")
    cov = np.einsum(f"{first},{second}->{target}", X1, X2) / channels
    return Pairs(cov, np.zeros_like(cov), None, None, len(program.parameters))


def run(program: TangentProgram, X1, X2, rows, sides: tuple | None = None):
    """(Σ, Θ, dΣ, dΘ) after the last step, and the `Side` at every step's input.

    Without `sides` this is the per-point pass (X2 is X1, each input with itself); with sides
    = (sides of X1's rows, sides of X2), the pair pass between X1 and X2, `rows` the (n₁, n₂)
    mask of identical inputs.
    """
    zipped = sides is None
    geom = Geometry(zipped, program.full, program.nd)
    state = _input(program, X1, X2, geom)
    ctx = Context(geom, program.input_shape, True if zipped else rows)
    record, stack = [], []
    for i, step in enumerate(program.steps):
        if zipped:
            g = ctx.geom
            dvar = None if state.dcov is None else g.diagonal(state.dcov, 1)
            v1 = v2 = Side(g.diagonal(state.cov), dvar)
            if isinstance(step, SeriesActivationStep):
                v1 = v2 = replace(v1, hermite=step.point_data(v1.var))
            record.append(v1)
        else:
            v1, v2 = sides[0][i], sides[1][i]
        if step == FORK:
            stack.append(state)
        elif step == JOIN:
            state = state + stack.pop()
        else:
            state, ctx = step(state, v1, v2, ctx)
    if ctx.geom.nd:
        raise InputError("the network has no GlobalAvgPool or Flatten before its readout Dense: "
                         "its output would still have spatial axes")
    return (*state.materialized().fields(), record)


__all__ = [
    "FORK",
    "JOIN",
    "PARAMETERS",
    "ClosedActivationStep",
    "CompiledMap",
    "CompiledTangent",
    "PointwiseStep",
    "SeriesActivationStep",
    "Side",
    "TangentProgram",
    "WindowStep",
    "run",
]
