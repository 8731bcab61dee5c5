"""Independent references for the dynamics tests: kernels, and the linear ODE integrated directly.

Nothing here uses ntk_sym.dynamics. The joint state z = [f(X); f(x)] (training then test points)
of the linearised network obeys dz/dt = −η M (z_X − y) with M = [Θ(X, X); Θ(x, X)]; its flow is
affine, z_t = Φ_t z₀ + c_t, and with z₀ ~ N(0, K_joint) the test block has mean c_t[x] and
covariance Φ_t[x] K_joint Φ_t[x]ᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ntk_sym


@dataclass(frozen=True)
class Kernels:
    """Joint NTK and NNGP Gram matrices over n training points followed by m test points."""

    ntk: np.ndarray
    nngp: np.ndarray
    n: int

    def blocks(self, kernel: str = "ntk") -> tuple[np.ndarray, ...]:
        """(Θ(X,X), Θ(x,X), K(X,X), K(x,X), K(x,x)); with kernel="nngp", Θ is replaced by K."""
        n = self.n
        drive = self.ntk if kernel == "ntk" else self.nngp
        K = self.nngp
        return drive[:n, :n], drive[n:, :n], K[:n, :n], K[n:, :n], K[n:, n:]


def relu_kernels(n: int, m: int, d: int = 3, seed: int = 0) -> Kernels:
    """NTK/NNGP of a depth-2 ReLU network (ntk_sym's engine) on Gaussian inputs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, d))
    nngp, ntk = ntk_sym.mlp("relu", depth=2, w_std=1.5, b_std=0.1).kernels(X)
    return Kernels(ntk, nngp, n)


def random_spd(rng: np.random.Generator, size: int, cond: float) -> np.ndarray:
    """A random symmetric positive-definite matrix with eigenvalues log-spaced from 1 to 1/cond."""
    Q, _ = np.linalg.qr(rng.normal(size=(size, size)))
    return (Q * np.logspace(0, -np.log10(cond), size)) @ Q.T


def feature_kernels(rng: np.random.Generator, n: int, m: int, width: int) -> Kernels:
    """Joint kernels J Jᵀ and F Fᵀ of random features: exactly PSD, rank ≤ width."""
    J = rng.normal(size=(n + m, width)) / np.sqrt(width)
    F = rng.normal(size=(n + m, width)) / np.sqrt(width)
    return Kernels(J @ J.T, F @ F.T, n)


def rk4_flow(
    drive: np.ndarray, n: int, y: np.ndarray, eta: float, times: np.ndarray, h_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Propagators (Φ_t, c_t) of dz/dt = −η M (z_X − y) at sorted finite `times`, by RK4.

    drive: the joint (n+m, n+m) kernel whose first n columns give M. Steps are at most h_max.
    Returns Φ of shape (T, n+m, n+m) and c of shape (T, n+m[, k]).
    """
    M = drive[:, :n]
    single = y.ndim == 1
    y = y.reshape(n, -1)
    size = drive.shape[0]
    # Φ and c advance together as one augmented matrix [Φ | c]; c's "targets" enter as −y.
    state = np.hstack([np.eye(size), np.zeros((size, y.shape[1]))])
    shift = np.hstack([np.zeros((n, size)), y])

    def rate(z: np.ndarray) -> np.ndarray:
        return -eta * M @ (z[:n] - shift)

    out_phi, out_c, now = [], [], 0.0
    for target in times:
        steps = int(np.ceil((target - now) / h_max))
        h = (target - now) / steps if steps else 0.0
        for _ in range(steps):
            k1 = rate(state)
            k2 = rate(state + h / 2 * k1)
            k3 = rate(state + h / 2 * k2)
            k4 = rate(state + h * k3)
            state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        now = target
        out_phi.append(state[:, :size].copy())
        out_c.append(state[:, size:].copy())
    return np.array(out_phi), _target_shape(np.array(out_c), single)


def gd_iterate(
    drive: np.ndarray, n: int, y: np.ndarray, eta: float, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Φ_k, c_k) of the GD map z ← z − η M (z_X − y), iterated step by step to sorted `steps`."""
    M = drive[:, :n]
    single = y.ndim == 1
    y = y.reshape(n, -1)
    size = drive.shape[0]
    state = np.hstack([np.eye(size), np.zeros((size, y.shape[1]))])
    shift = np.hstack([np.zeros((n, size)), y])
    out_phi, out_c, done = [], [], 0
    for target in steps:
        for _ in range(int(target) - done):
            state = state - eta * M @ (state[:n] - shift)
        done = int(target)
        out_phi.append(state[:, :size].copy())
        out_c.append(state[:, size:].copy())
    return np.array(out_phi), _target_shape(np.array(out_c), single)


def _target_shape(c: np.ndarray, single: bool) -> np.ndarray:
    """Drop the output axis of c for 1-D targets, as the predictors do."""
    return c[..., 0] if single else c


def block_moments(
    phi: np.ndarray, c: np.ndarray, prior: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean c[x] and covariance Φ[x] K_joint Φ[x]ᵀ of the test block, for each time."""
    rows = phi[:, n:, :]
    return c[:, n:], rows @ prior @ rows.transpose(0, 2, 1)


def max_rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual − expected| / max |expected| (a norm-wise relative error)."""
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
