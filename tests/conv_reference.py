"""A direct, untiled evaluation of convolutional NNGP/NTK kernels at mpmath precision.

Written from the conventions of neural-tangents' ``stax`` (issue 12), independently of the
engine: every image pair and every pixel pair of the inputs is kept at once, as NumPy object
arrays of mpmath numbers, and each layer is applied by explicit index lists.

Layers are plain tuples: ("conv", size, strides, padding, w_std, b_std), ("relu",), ("erf",)
(φ = erf), ("avgpool", size, strides), ("gap",), ("flatten",), ("dense", w_std, b_std).
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
