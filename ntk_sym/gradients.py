"""Derivatives of a network's NNGP and NTK Gram matrices with respect to its log σ's.

For every layer list (MLPs, mixed activations, Residual, LayerNorm, Identity, user layers that
define `apply`, and convolutional networks with Conv, AvgPool, GlobalAvgPool, Flatten on
images): forward mode through the layer maps. derive (`ntk_sym.symbolic.tangent`: each layer's
tangent map by differentiation of its SymPy map, the activations' hand-written jvps) →
compile (`ntk_sym.compile.tangent`, cached per layer) → evaluate (`ntk_sym.numeric.tangent`,
float64, on whole arrays of pairs in row blocks).

The derivative axis (the last one) is labelled by `KernelGradients.parameters`:

* ``tied=True`` (the default): ("w_std", "b_std"), the derivatives along log σ_w and log σ_b
  of all Dense and Conv layers at once, i.e. the sum of the per-layer derivatives. For
  ``ntk_sym.mlp(φ, L, σ_w, σ_b)`` this is the derivative in the MLP's own σ_w, σ_b, and for
  ``ntk_sym.sklearn.NTK(network=net)`` in its two hyperparameters.
* ``tied=False``: one pair per Dense/Conv layer in network order, ("layer 1 w_std",
  "layer 1 b_std", "layer 3 w_std", …), positions as in error messages (``"layer 2.1"`` inside
  a residual block).

A layer with σ_b = 0 has zero derivative in log σ_b (∂/∂log σ_b = 2σ_b² ∂/∂σ_b²).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .compile.conv import first_spatial_layer
from .compile.tangent import compile_gradients
from .numeric.blas import single_threaded_blas
from .numeric.conv.inputs import as_image_pair, as_images
from .numeric.inputs import as_input_pair, as_inputs
from .numeric.tangent import PARAMETERS, TangentProgram, run
from .symbolic.conv_maps import is_convolutional

#: Pair-array entries (rows × columns × positions × (1 + directions)) per block: ~32 MB
#: arrays, so that a block's temporaries stay small; blocks run on a thread pool.
BLOCK_ENTRIES = 2**22
#: At most this many rows per block (vectors).
ROW_BLOCK = 128


@dataclass(frozen=True)
class KernelGradients:
    """Gram matrices (n1, n2) and their derivatives (n1, n2, P) along the log σ's named by
    `parameters` (P names; module docstring). `diagonal_gradients` gives (n,) and (n, P)."""

    nngp: np.ndarray
    ntk: np.ndarray
    d_nngp: np.ndarray
    d_ntk: np.ndarray
    parameters: tuple[str, ...] = PARAMETERS


def _program(net: object, X1: object, X2: object | None, tied: bool):
    layers = tuple(getattr(net, "layers", net))
    if is_convolutional(layers):
        layer = first_spatial_layer(layers)
        if X2 is None:
            A, B = as_images(X1, "X1", layer), None
        else:
            A, B = as_image_pair(X1, X2, layer)
        shape = A.shape[1:-1]
    else:
        if X2 is None:
            A, B = as_inputs(X1, "X1"), None
        else:
            A, B = as_input_pair(X1, X2)
        shape = ()
    return compile_gradients(layers, shape, bool(tied)), A, B


def kernel_gradients(
    net: object, X1: object, X2: object | None = None, *, tied: bool = True
) -> KernelGradients:
    """NNGP, NTK and their derivatives in the log σ's between the inputs X1 and X2 (X2 = X1 by
    default): vectors (n, d), or images (n, H, W, C) / (n, L, C) for convolutional networks.

    `net`: a network (``ntk_sym.serial``/``mlp``) or its tuple of layers; `tied`: the module
    docstring. Analytic, float64. Closed-form duals use their exact jvps; activations without
    one (tanh, SiLU, …) the Hermite series with Price's theorem
    (`ntk_sym.numeric.tangent.SeriesActivationStep`, its accuracy stated there).
    """
    program, A, B = _program(net, X1, X2, tied)
    same = B is None
    B = A if same else B
    points1 = _points(program, A)
    points2 = points1 if same else _points(program, B)
    identical = _identical_rows(A, B)
    per_row = len(B) * _entries_per_pair(program) * (1 + len(program.parameters))
    step = max(1, min(ROW_BLOCK, BLOCK_ENTRIES // per_row))
    blocks = [slice(i, min(i + step, len(A))) for i in range(0, len(A), step)]

    def block(rows: slice) -> tuple[np.ndarray, ...]:
        single_threaded_blas()  # concurrent multi-threaded OpenBLAS calls contend (see gram)
        sides = ([s.rows(rows) for s in points1[4]], points2[4])
        with _quiet():
            return run(program, A[rows], B, identical[rows], sides)[:4]

    workers = min(os.cpu_count() or 1, len(blocks))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # NumPy's ufuncs release the GIL
        parts = list(pool.map(block, blocks))
    nngp, ntk = (np.concatenate([p[k] for p in parts]) for k in (0, 1))
    d_nngp, d_ntk = (np.concatenate([np.moveaxis(p[k], 0, -1) for p in parts]) for k in (2, 3))
    return KernelGradients(nngp, ntk, d_nngp, d_ntk, program.parameters)


def _points(program: TangentProgram, X: np.ndarray) -> tuple:
    """The per-point pass of X: (Σ, Θ, dΣ, dΘ) of x with itself and the sides of every step."""
    with _quiet():
        return run(program, X, X, True)


def _quiet():
    """Infinite coefficients meet exactly zero tangents (`ntk_sym.numeric.tangent`): no
    warnings for the products that are then dropped."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def _entries_per_pair(program: TangentProgram) -> int:
    positions = int(np.prod(program.input_shape)) if program.nd else 1
    return positions**2 if program.full else positions


def _identical_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(n1, n2) mask of exactly equal inputs, through row ids (no (n1, n2, d) temporary)."""
    flat = np.vstack([A.reshape(len(A), -1), B.reshape(len(B), -1)])
    _, ids = np.unique(flat, axis=0, return_inverse=True)
    ids = ids.ravel()
    return ids[: len(A), None] == ids[None, len(A) :]


def diagonal_gradients(net: object, X: object, *, tied: bool = True) -> KernelGradients:
    """The same on the diagonal x = x' only: arrays (n,) and (n, P), O(n) work."""
    program, A, _ = _program(net, X, None, tied)
    nngp, ntk, d_nngp, d_ntk, _ = _points(program, A)
    return KernelGradients(
        nngp, ntk, np.moveaxis(d_nngp, 0, -1), np.moveaxis(d_ntk, 0, -1), program.parameters
    )


__all__ = ["PARAMETERS", "KernelGradients", "diagonal_gradients", "kernel_gradients"]
