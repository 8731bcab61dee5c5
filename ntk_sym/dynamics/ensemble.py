"""Mean and covariance over random initialisation of the linearised infinite-width network.

Setting (Lee et al. 2019, "Wide neural networks of any depth evolve as linear models"): at
initialisation the outputs are a Gaussian process f₀ ~ GP(0, K) with K the NNGP kernel, and
training moves them along the NTK Θ. Any of our training rules ends at

    f(x) = f₀(x) + A (y − f₀(X)),    A = Θ(x, X) V diag(g) Vᵀ,

with Θ(X, X) + δI = V diag(λ) Vᵀ and a per-mode gain g (`filters`). Since f is affine in the
Gaussian f₀, it is Gaussian with

    mean  μ(x)     = A y,
    cov   Σ(x, x') = K(x, x') + A K(X, X) Aᵀ − A K(X, x') − K(x, X) Aᵀ.

Multiple outputs y ∈ ℝ^{n×k} are k independent GPs with the same kernels: the mean has a trailing
axis k and the covariance is shared. `train_loss` is the loss of the mean prediction on the
training set, where f̄ − y = −V diag(e) Vᵀ y with the per-mode error e.

diag_reg δ is added to the diagonal of both training kernels, Θ(X, X) and K(X, X). This is
exactly a private random feature √δ·ξᵢ on each training point (ξ ~ N(0, 1), trained with the
other parameters): it adds δ to the NTK and to the NNGP on the training set only. For
kernel="nngp" it makes t = ∞ the GP posterior with observation-noise variance δ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import checks
from .spectrum import Spectrum, psd_spectrum

KERNELS = ("ntk", "nngp")


@dataclass(frozen=True)
class Prediction:
    """Gaussian predictions of the infinite-width network at several training times.

    Attributes
    ----------
    times
        The times t (gradient flow) or step counts k (gradient descent), shape (T,).
    mean
        𝔼[f_t(x)] at the test points, shape (T, n_test) or (T, n_test, k).
    cov
        Cov[f_t(x), f_t(x')] between test points, shape (T, n_test, n_test) (shared by outputs).
    train_loss
        Loss of the mean prediction on the training set, shape (T,), in the chosen
        normalisation (½‖f̄ − y‖², or that divided by n_train for loss="mean"). With diag_reg
        it is the loss the regularised dynamics minimises (the private features included).
    kernel, lr, loss, diag_reg
        The settings that produced it.
    """

    times: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    train_loss: np.ndarray
    kernel: str
    lr: float
    loss: str
    diag_reg: float

    @property
    def std(self) -> np.ndarray:
        """Marginal standard deviations √Σ(x, x), shape (T, n_test); rounding negatives → 0."""
        var = np.diagonal(self.cov, axis1=1, axis2=2)
        return np.sqrt(np.maximum(var, 0.0))


@dataclass(frozen=True)
class Problem:
    """Validated kernels and targets of one prediction problem.

    spectrum: eigendecomposition of the training kernel that drives the dynamics (+δI).
    drive_test_train: that kernel between test and training points, (m, n).
    prior_train, prior_test_train, prior_test: the NNGP K(X, X) + δI, K(x, X), K(x, x).
    y: targets (n,) or (n, k). rate: the learning rate per unit of the summed loss (η or η/n).
    loss_scale: 1 or 1/n, the factor in front of ½‖f − y‖².
    """

    spectrum: Spectrum
    drive_test_train: np.ndarray
    prior_train: np.ndarray
    prior_test_train: np.ndarray
    prior_test: np.ndarray
    y: np.ndarray
    rate: float
    loss_scale: float


def setup(
    ntk_train: object | None,
    ntk_test_train: object | None,
    nngp_train: object,
    nngp_test_train: object,
    nngp_test: object,
    y_train: object,
    lr: float,
    diag_reg: float,
    loss: str,
    kernel: str,
) -> Problem:
    """Validate every input (shapes, finiteness, symmetry, PSD) and decompose the training kernel.

    kernel="ntk" trains along Θ (the NTK arguments are required); kernel="nngp" trains along K
    (readout-only training; the NTK arguments are ignored and may be None).
    loss="sum" is ½‖f − y‖²; loss="mean" is ½‖f − y‖²/n, which is the sum with η → η/n.
    """
    checks.choice("kernel", kernel, KERNELS)
    checks.choice("loss", loss, checks.LOSSES)
    lr = checks.positive("lr", lr)
    diag_reg = checks.non_negative("diag_reg", diag_reg)
    y = checks.as_targets(y_train)
    n = y.shape[0]
    train_shape = np.shape(nngp_train)
    if len(train_shape) == 2 and train_shape[0] == train_shape[1] != n:
        raise InputError(
            f"y_train has {n} rows but nngp_train is {train_shape}: one target row per "
            "training point"
        )
    prior_test_train = np.asarray(nngp_test_train, dtype=np.float64)
    if prior_test_train.ndim != 2:
        raise InputError(
            f"nngp_test_train must be 2-D (n_test, n_train), got shape {prior_test_train.shape}"
        )
    m = prior_test_train.shape[0]
    prior_test_train = checks.as_matrix("nngp_test_train", prior_test_train, (m, n))
    nngp_train = checks.as_symmetric("nngp_train", nngp_train, n)
    prior_train = nngp_train + diag_reg * np.eye(n)
    prior_test = checks.as_symmetric("nngp_test", nngp_test, m)
    if kernel == "ntk":
        if ntk_train is None or ntk_test_train is None:
            raise InputError("kernel='ntk' needs ntk_train and ntk_test_train")
        drive_train = checks.as_symmetric("ntk_train", ntk_train, n)
        drive_test_train = checks.as_matrix("ntk_test_train", ntk_test_train, (m, n))
    else:
        drive_train = nngp_train
        drive_test_train = prior_test_train
    spectrum = psd_spectrum(drive_train, diag_reg, f"{kernel}_train")
    scale = 1.0 if loss == "sum" else 1.0 / n
    return Problem(
        spectrum, drive_test_train, prior_train, prior_test_train, prior_test, y, lr * scale, scale
    )


def moments(
    problem: Problem, gains: np.ndarray, errors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, cov, train_loss) for per-mode gains and errors of shape (T, n) (module docstring)."""
    V = problem.spectrum.eigenvectors
    B = problem.drive_test_train @ V  # Θ(x, X) V, so that A = B diag(g) Vᵀ
    y_modes = V.T @ problem.y
    prior_modes = V.T @ problem.prior_train @ V
    cross_modes = V.T @ problem.prior_test_train.T  # Vᵀ K(X, x)

    mean = np.einsum("mn,tn,n...->tm...", B, gains, y_modes)
    # One time at a time: memory O(m·n + m²) rather than O(T·m·n); the work per time is the
    # same O(m n² + m² n) either way.
    cov = np.empty((gains.shape[0],) + problem.prior_test.shape)
    for i, g in enumerate(gains):
        BG = B * g  # A_t V
        A_Kx = BG @ cross_modes
        cov_t = problem.prior_test + BG @ prior_modes @ BG.T - A_Kx - A_Kx.T
        cov[i] = (cov_t + cov_t.T) / 2

    y_power = y_modes**2 if y_modes.ndim == 1 else np.sum(y_modes**2, axis=1)
    train_loss = 0.5 * problem.loss_scale * (errors**2 @ y_power)
    return mean, cov, train_loss
