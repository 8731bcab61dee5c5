"""A direct, untiled evaluation of convolutional NNGP/NTK kernels at mpmath precision.

Written from the conventions of neural-tangents' ``stax`` (issue 12), independently of the
engine: every image pair and every pixel pair of the inputs is kept at once, as NumPy object
arrays of mpmath numbers, and each layer is applied by explicit index lists.

Layers are plain tuples: ("conv", size, strides, padding, w_std, b_std), ("relu",), ("erf",)
(φ = erf), ("tanh",), ("softplus",), ("silu",), ("avgpool", size, strides), ("gap",),
("flatten",), ("dense", w_std, b_std).

ReLU and erf use their closed forms at `dps` digits. tanh, softplus and SiLU have none: their
𝔼[φ(u)φ(v)] and 𝔼[φ'(u)φ'(v)] come from a product Gauss–Hermite rule with `GAUSS_HERMITE`
nodes per dimension in float64, with (u, v) = (√v₁ z₁, √v₂ (ρ z₁ + √(1 − ρ²) z₂)) and φ, φ'
written out here by hand (no SymPy, no Hermite series, no trapezoidal rule: the engine's two
duals). The integrands are analytic in a strip |Im z| < τ (tanh: τ = π/(2√v), softplus and
SiLU: π/√v) only, so the rule converges like e^{−c τ √N}: measured against a 25-digit mpmath
quadrature at N = 160, ≤ 4e-15 relative for variances up to 1 (tanh; softplus and SiLU ≤ 1e-15
up to 2) but 7e-13 at variance 1.5 (tanh). Variances above `MAX_VARIANCE` are refused, so a
test cannot lose that accuracy unnoticed; the entries are then carried at `dps` digits.
"""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np


def _positions(shape):
    return list(itertools.product(*(range(n) for n in shape)))


def _sources(shape, size, strides, padding):
    """(out_shape, src) with src[o, δ] the flat input position of output o at offset δ, or
    the index P (a zero entry) for padding."""
    if padding == "VALID":
        out = tuple((n - k) // s + 1 for n, k, s in zip(shape, size, strides, strict=True))
        lo = [0] * len(shape)
    else:
        out = tuple(-(-n // s) for n, s in zip(shape, strides, strict=True))
        lo = [max((o - 1) * s + k - n, 0) // 2
              for n, k, s, o in zip(shape, size, strides, out, strict=True)]
    flat = {p: i for i, p in enumerate(_positions(shape))}
    offsets = _positions(size)
    src = np.zeros((len(_positions(out)), len(offsets)), dtype=int)
    for a, o in enumerate(_positions(out)):
        for j, d in enumerate(offsets):
            q = [oi * s + di - before
                 for oi, s, di, before in zip(o, strides, d, lo, strict=True)]
            if padding == "CIRCULAR":
                q = [qi % n for qi, n in zip(q, shape, strict=True)]
            inside = all(0 <= qi < n for qi, n in zip(q, shape, strict=True))
            src[a, j] = flat[tuple(q)] if inside else len(flat)
    return out, src


def _padded(K):
    N, _, P, _ = K.shape
    Z = np.full((N, N, P + 1, P + 1), mp.mpf(0), dtype=object)
    Z[:, :, :P, :P] = K
    return Z


def _window(K, src, same_offsets):
    Z = _padded(K)
    k = src.shape[1]
    if same_offsets:
        terms = [Z[:, :, src[:, j][:, None], src[:, j][None, :]] for j in range(k)]
    else:
        terms = [Z[:, :, src[:, i][:, None], src[:, j][None, :]]
                 for i in range(k) for j in range(k)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total / len(terms)


def _relu(c, v1, v2):
    if v1 == 0 or v2 == 0:
        theta = mp.pi / 2
    else:
        theta = mp.acos(max(-1, min(1, c / mp.sqrt(v1 * v2))))
    T = mp.sqrt(v1 * v2) * (mp.sin(theta) + (mp.pi - theta) * mp.cos(theta)) / (2 * mp.pi)
    return T, (mp.pi - theta) / (2 * mp.pi)


def _erf(c, v1, v2):
    den = (1 + 2 * v1) * (1 + 2 * v2)
    return 2 / mp.pi * mp.asin(2 * c / mp.sqrt(den)), 4 / (mp.pi * mp.sqrt(den - 4 * c * c))


#: Nodes per dimension of the product Gauss–Hermite rule, and the largest variance it is
#: accurate for (module docstring).
GAUSS_HERMITE, MAX_VARIANCE = 160, 1.0


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(x / 2.0))


#: φ and φ' of the activations without a closed form, by hand.
SMOOTH = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "softplus": (lambda x: np.logaddexp(0.0, x), _sigmoid),
    "silu": (lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x)))),
}


def _gauss_hermite_pairs(name, c, v1, v2):
    """(𝔼[φ(u)φ(v)], 𝔼[φ'(u)φ'(v)]) for arrays of covariances c and variances v1, v2."""
    phi, dphi = SMOOTH[name]
    if max(v1.max(), v2.max()) > MAX_VARIANCE:
        raise ValueError(f"variance {max(v1.max(), v2.max()):.3g} > {MAX_VARIANCE}: the "
                         "Gauss–Hermite reference is not accurate there; scale the inputs")
    z, w = np.polynomial.hermite_e.hermegauss(GAUSS_HERMITE)
    w = w / np.sqrt(2.0 * np.pi)
    z1, z2 = z[:, None], z[None, :]
    weight = w[:, None] * w[None, :]
    T, D = np.empty(c.shape), np.empty(c.shape)
    for k, (ck, a, b) in enumerate(zip(c, v1, v2, strict=True)):
        root = np.sqrt(a * b)
        rho = 0.0 if root == 0 else min(1.0, max(-1.0, ck / root))
        u = np.sqrt(a) * z1 + 0.0 * z2
        v = np.sqrt(b) * (rho * z1 + np.sqrt(1.0 - rho * rho) * z2)
        T[k] = (weight * phi(u) * phi(v)).sum()
        D[k] = (weight * dphi(u) * dphi(v)).sum()
    return T, D


def reference_kernels(layers, X1, X2=None, dps: int = 30):
    """(NNGP, NTK) between the images X1 (n₁, *S, C) and X2 as float64 arrays (n₁, n₂)."""
    X = X1 if X2 is None else np.concatenate([X1, X2])
    N, shape, C = X.shape[0], X.shape[1:-1], X.shape[-1]
    with mp.workdps(dps):
        flat = np.array([[[mp.mpf(float(v)) for v in px] for px in img.reshape(-1, C)]
                         for img in X], dtype=object)
        K = np.einsum("ipc,jqc->ijpq", flat, flat) / C
        T = None  # Θ⁰ = 0
        for layer in layers:
            kind = layer[0]
            if kind == "conv":
                _, size, strides, padding, w, b = layer
                shape, src = _sources(shape, size, strides, padding)
                s = mp.mpf(w) ** 2
                K = s * _window(K, src, True) + mp.mpf(b) ** 2
                T = K + (0 if T is None else s * _window(T, src, True))
            elif kind == "avgpool":
                _, size, strides = layer
                shape, src = _sources(shape, size, strides, "VALID")
                K = _window(K, src, False)
                T = None if T is None else _window(T, src, False)
            elif kind in SMOOTH:
                pooled = K.ndim == 2
                idx = list(np.ndindex(*K.shape))
                if pooled:
                    v1 = [K[i, i] for i, _ in idx]
                    v2 = [K[j, j] for _, j in idx]
                else:
                    v1 = [K[i, i, p, p] for i, _, p, _ in idx]
                    v2 = [K[j, j, q, q] for _, j, _, q in idx]
                as_float = [np.array([float(x) for x in arr]) for arr in
                            ([K[t] for t in idx], v1, v2)]
                Tv, Dv = _gauss_hermite_pairs(kind, *as_float)
                newK, dot = np.empty_like(K), np.empty_like(K)
                for t, a, b in zip(idx, Tv, Dv, strict=True):
                    newK[t], dot[t] = mp.mpf(float(a)), mp.mpf(float(b))
                K = newK
                T = None if T is None else dot * T
            elif kind in ("relu", "erf"):
                fn = _relu if kind == "relu" else _erf
                pooled = K.ndim == 2
                var = np.array([K[i, i] for i in range(N)], dtype=object)
                if not pooled:
                    var = np.array([[var[i][p, p] for p in range(K.shape[2])] for i in range(N)],
                                   dtype=object)
                newK = np.empty_like(K)
                dot = np.empty_like(K)
                for idx in np.ndindex(*K.shape):
                    if pooled:
                        v1, v2 = var[idx[0]], var[idx[1]]
                    else:
                        v1, v2 = var[idx[0], idx[2]], var[idx[1], idx[3]]
                    newK[idx], dot[idx] = fn(K[idx], v1, v2)
                K = newK
                T = None if T is None else dot * T
            elif kind == "gap":
                K = K.sum(axis=(2, 3)) / K.shape[2] ** 2
                T = None if T is None else T.sum(axis=(2, 3)) / T.shape[2] ** 2
            elif kind == "flatten":
                K = np.einsum("ijpp->ij", K) / K.shape[2]
                T = None if T is None else np.einsum("ijpp->ij", T) / T.shape[2]
            elif kind == "dense":
                _, w, b = layer
                s = mp.mpf(w) ** 2
                K_new = s * K + mp.mpf(b) ** 2
                T = K_new + (0 if T is None else s * T)
                K = K_new
            else:
                raise ValueError(kind)
    n1 = 0 if X2 is None else X1.shape[0]
    return (np.array(K[n1:, n1:] if X2 is None else K[:n1, n1:], dtype=float),
            np.array(T[n1:, n1:] if X2 is None else T[:n1, n1:], dtype=float))
