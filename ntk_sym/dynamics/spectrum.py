"""The eigendecomposition of the training kernel that drives the dynamics.

Θ_reg = Θ(X, X) + δI = V diag(λ) Vᵀ (δ = `diag_reg`). One decomposition serves every time and
every step count: all predictions are Θ(x, X) V diag(g(λ)) Vᵀ for a per-mode filter g.

Rounding policy. A positive semi-definite kernel assembled in float64 has eigenvalues that are
only known to about n·ε·λ_max (ε the machine epsilon), and small ones can come out slightly
negative. Eigenvalues with |λ| ≤ n·ε·λ_max are therefore set to exactly 0 (such a mode is not
trained in finite time, and at t = ∞ it is dropped as by the Moore–Penrose pseudo-inverse, which
is exact for a PSD joint kernel since Θ(x, X)v = 0 whenever Θ(X, X)v = 0). An eigenvalue below
−n·ε·λ_max cannot come from rounding: the kernel is not PSD and an `InputError` is raised. Use
`diag_reg` > 0 to make an ill-conditioned kernel strictly positive definite instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Spectrum:
    """Eigenvalues λ (ascending, ≥ 0) and orthonormal eigenvectors V (columns) of a kernel."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue."""
        return float(self.eigenvalues[-1])


def rounding_threshold(eigenvalues: np.ndarray) -> float:
    """n·ε·max|λ|: eigenvalues smaller in magnitude are indistinguishable from 0 in float64."""
    n = eigenvalues.size
    return n * np.finfo(np.float64).eps * float(np.max(np.abs(eigenvalues), initial=0.0))


def psd_spectrum(kernel: np.ndarray, diag_reg: float = 0.0, name: str = "kernel") -> Spectrum:
    """Eigendecomposition of `kernel` + `diag_reg`·I under the rounding policy above.

    `kernel` must already be a validated symmetric float64 matrix.
    """
    reg = kernel + diag_reg * np.eye(kernel.shape[0])
    eigenvalues, eigenvectors = np.linalg.eigh(reg)
    tol = rounding_threshold(eigenvalues)
    if eigenvalues[0] < -tol:
        raise InputError(
            f"{name} is not positive semi-definite: eigenvalue {eigenvalues[0]:.6g} is below the "
            f"rounding level -{tol:.3g} (n·eps·max|λ|); check the kernel (e.g. its quadrature "
            f"accuracy), or add diag_reg > {-eigenvalues[0]:.3g}"
        )
    eigenvalues = np.where(np.abs(eigenvalues) <= tol, 0.0, eigenvalues)
    return Spectrum(eigenvalues, eigenvectors)
