"""Derivatives of a network's NNGP and NTK Gram matrices with respect to log σ_w and log σ_b.

derive (`ntk_sym.symbolic.tangent`) → compile (`ntk_sym.compile.tangent`) → evaluate
(`ntk_sym.numeric.tangent`): analytic, float64, for activations with a closed-form dual and the
NTK parameterization.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .compile.tangent import compile_layer, compile_tangent
from .errors import NTKSymError
from .network import Network
from .numeric.blas import single_threaded_blas
from .numeric.inputs import as_input_pair, as_inputs
from .numeric.tangent import PARAMETERS, tangent_kernels

#: Rows per block: (2, 128, n2) float64 tangents stay small, and blocks run on a thread pool.
ROW_BLOCK = 128


@dataclass(frozen=True)
class KernelGradients:
    """Gram matrices (n1, n2) and their derivatives (n1, n2, 2) along (log σ_w, log σ_b)."""

    nngp: np.ndarray
    ntk: np.ndarray
    d_nngp: np.ndarray
    d_ntk: np.ndarray


def _check(net: Network) -> None:
    if net.parameterization != "ntk":
        raise NTKSymError("kernel gradients cover the NTK parameterization only")


def kernel_gradients(net: Network, X1: object, X2: object | None = None) -> KernelGradients:
    """NNGP, NTK and their derivatives in log σ_w, log σ_b between the rows of X1 and X2.

    Analytic (the compiled tangent recursion), float64; needs a closed-form dual.
    """
    _check(net)
    A, B = as_input_pair(X1, X2)
    B = A if B is None else B
    d = A.shape[1]
    norms2 = np.einsum("ij,ij->i", B, B)[None, :] / d
    identical = _identical_rows(A, B)
    blocks = [slice(i, min(i + ROW_BLOCK, len(A))) for i in range(0, len(A), ROW_BLOCK)]

    def block(rows: slice) -> tuple[np.ndarray, ...]:
        single_threaded_blas()  # concurrent multi-threaded OpenBLAS calls contend (see gram)
        a = A[rows]
        dots = (a @ B.T) / d
        norms1 = np.einsum("ij,ij->i", a, a)[:, None] / d
        return _run(net, dots, norms1, norms2, identical[rows])

    workers = min(os.cpu_count() or 1, len(blocks))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # NumPy's ufuncs release the GIL
        parts = list(pool.map(block, blocks))
    nngp, ntk = (np.concatenate([p[k] for p in parts]) for k in (0, 1))
    d_nngp, d_ntk = (np.concatenate([np.moveaxis(p[k], 0, -1) for p in parts]) for k in (2, 3))
    return KernelGradients(nngp, ntk, d_nngp, d_ntk)


def _run(net: Network, dots, diag1, diag2, identical) -> tuple[np.ndarray, ...]:
    ct = compile_tangent(net.activation) if net.depth else None
    layer = compile_layer()
    return tangent_kernels(
        ct, layer, net.depth, net.w_std, net.b_std, dots, diag1, diag2, identical
    )


def _identical_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(n1, n2) mask of exactly equal rows, through row ids (no (n1, n2, d) temporary)."""
    _, ids = np.unique(np.vstack([A, B]), axis=0, return_inverse=True)
    ids = ids.ravel()
    return ids[: len(A), None] == ids[None, len(A) :]


def diagonal_gradients(net: Network, X: object) -> KernelGradients:
    """The same on the diagonal x = x' only: arrays (n,) and (n, 2), O(n) work."""
    _check(net)
    A = as_inputs(X, "X")
    norms = np.einsum("ij,ij->i", A, A) / A.shape[1]
    identical = np.ones(len(A), dtype=bool)
    nngp, ntk, d_nngp, d_ntk = _run(net, norms, norms, norms, identical)
    return KernelGradients(nngp, ntk, np.moveaxis(d_nngp, 0, -1), np.moveaxis(d_ntk, 0, -1))


__all__ = ["PARAMETERS", "KernelGradients", "diagonal_gradients", "kernel_gradients"]
