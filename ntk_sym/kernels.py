"""Numeric NNGP/NTK Gram matrices of a `Network`: backend dispatch and compiled-kernel caching."""

from __future__ import annotations

import numpy as np

from .compile import DEFAULT_QUADRATURE_DEGREE, array_module, compile_dual
from .engine import LayerSpec, kernel_block
from .errors import NTKSymError
from .inputs import as_input_pair
from .network import Network
from .reference import kernels_mpmath

BACKENDS = ("numpy", "mpmath", "cupy")


def layer_spec(
    net: Network, backend: str = "numpy", degree: int = DEFAULT_QUADRATURE_DEGREE
) -> LayerSpec:
    """The engine's view of `net`, with its dual compiled (and cached) for `backend`."""
    return LayerSpec(
        compile_dual(net.activation, backend, degree),
        net.depth,
        net.w_std,
        net.b_std,
        net.parameterization == "standard",
    )


def kernels(
    net: Network,
    X1: object,
    X2: object | None = None,
    backend: str = "numpy",
    dps: int = 50,
    degree: int = DEFAULT_QUADRATURE_DEGREE,
) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) Gram matrices of shape (n1, n2) of `net` between the rows of X1 and X2.

    backend: "numpy" (float64, default), "cupy" (float64 on a GPU; NumPy arrays returned) or
    "mpmath" (`dps` digits, object arrays of mpf; slow, a reference).
    degree: quadrature nodes per dimension for activations without a closed form.
    """
    A, B = as_input_pair(X1, X2)
    if backend == "mpmath":
        act = net.activation
        return kernels_mpmath(
            act, net.depth, net.w_std, net.b_std, net.parameterization == "standard", A, B, dps
        )
    if backend not in BACKENDS:
        raise NTKSymError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    xp = array_module(backend)
    spec = layer_spec(net, backend, degree)
    # overflow shows up as non-finite output, reported by _check_finite with its cause
    with np.errstate(over="ignore", invalid="ignore"):
        nngp, ntk = kernel_block(spec, xp.asarray(A), None if B is None else xp.asarray(B), xp)
    if backend == "cupy":
        nngp, ntk = nngp.get(), ntk.get()
    if B is None:
        # exact symmetry: the lower triangle mirrors the upper one
        nngp = np.triu(nngp) + np.triu(nngp, 1).T
        ntk = np.triu(ntk) + np.triu(ntk, 1).T
    _check_finite(nngp, ntk, net)
    return nngp, ntk


def _check_finite(nngp: np.ndarray, ntk: np.ndarray, net: Network) -> None:
    if not (np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))):
        raise NTKSymError(
            f"{net!r} produced non-finite kernel values (overflow of the variances, or an "
            "activation whose Gaussian expectations diverge at these variances)"
        )
