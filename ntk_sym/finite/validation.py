"""Measured convergence of finite networks to the infinite-width theory.

Every function returns numbers (dataclasses of arrays and fitted slopes), small by default so the
test suite runs them, with `widths`/`seeds` parameters for the full sizes the book uses.

* `kernel_convergence`: ‖Θ̂₀ − Θ‖_F/‖Θ‖_F and ‖K̂ − K‖_F/‖K‖_F at initialisation, averaged over
  seeds, against width; fluctuations of the empirical kernels are O(n^{-1/2}), so the log–log slope
  is ≈ −½.
* `kernel_drift`: ‖Θ̂_T − Θ̂₀‖_F/‖Θ̂₀‖_F after training.
* `linearization_gap`: ‖f_T − f_lin,T‖/‖f_lin,T − f₀‖ at test inputs, the network against its
  linearisation at initialisation.

  Both vanish with width. Jacot et al. (2018) and Lee et al. (2019) bound them by O(n^{-1/2}); the
  sharper asymptotics (Dyer & Gur-Ari 2019) are O(1/n): each parameter moves by O(n^{-1/2}), and in
  the kernel these moves enter multiplied by readout weights of random sign, which average out
  over the n units. At the widths measured here (32 … 512) the fitted slopes lie between, ≈ −0.55
  to −0.9, so these are tested to fall at least as fast as n^{-0.35}, not against −½.
* `ensemble_vs_limit`: an ensemble's mean and standard deviation of f_T at test inputs against
  the Gaussian prediction for discrete gradient descent of `ntk_sym.dynamics.predict_gd`, and each
  network against the limit conditioned on its own f₀, f₀(x) − M_T (f₀(X) − y).
* `jacot_figure1`: the setting of Jacot, Gabriel & Hongler (2018), Figure 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..dynamics import predict_gd
from ..errors import NTKSymError
from ..layers.serial import Serial, mlp
from .network import FiniteNetwork, init, parameter_count
from .training import Loss, gradient_descent, linearized_descent

#: Parameters of one ensemble chunk are kept under this many bytes (training holds ~3 copies).
CHUNK_BYTES = 2**28


@dataclass
class WidthScaling:
    """A quantity measured over seeds at several widths, with its fitted log–log slope.

    values: (widths, seeds) per-seed measurements; mean: their mean per width; sem: the standard
    error of that mean; slope, intercept: the least-squares fit
    log(mean) = intercept + slope·log(width); slope_sem: the slope's standard error from the
    seeds' scatter, by the delta method: slope = Σᵢ cᵢ log meanᵢ with cᵢ the fit's weights, so
    Var(slope) ≈ Σᵢ cᵢ² (semᵢ/meanᵢ)² (the widths are drawn independently).
    """

    widths: np.ndarray
    values: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    slope: float
    intercept: float
    slope_sem: float = float("nan")


def fit_slope(widths: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (log width, log value)."""
    w, v = np.log(np.asarray(widths, float)), np.log(np.asarray(values, float))
    if w.size < 2 or not np.all(np.isfinite(v)):
        raise NTKSymError("a slope needs at least two widths and positive finite values")
    slope, intercept = np.polyfit(w, v, 1)
    return float(slope), float(intercept)


def _scaling(widths: Sequence[int], values: np.ndarray) -> WidthScaling:
    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=1)
    sem = values.std(axis=1, ddof=1) / np.sqrt(values.shape[1]) if values.shape[1] > 1 else 0 * mean
    slope, intercept = fit_slope(widths, mean)
    logw = np.log(np.asarray(widths, float))
    weights = (logw - logw.mean()) / np.sum((logw - logw.mean()) ** 2)
    slope_sem = float(np.sqrt(np.sum((weights * sem / mean) ** 2)))
    return WidthScaling(np.asarray(widths), values, mean, sem, slope, intercept, slope_sem)


def ensembles(
    net: Serial, width: int, seeds: int, input_dim: int, seed: int = 0
) -> Iterator[FiniteNetwork]:
    """`seeds` independent networks as ensembles of at most `CHUNK_BYTES` of parameters each.

    Each width draws from the children of its own ``SeedSequence([seed, width])``, so widths are
    statistically independent of one another (the draws within a width depend on the chunking).
    """
    per_net = 8 * parameter_count(net, width, input_dim)
    chunk = max(1, min(seeds, CHUNK_BYTES // per_net))
    children = np.random.SeedSequence([seed, width]).spawn(-(-seeds // chunk))
    for start, child in zip(range(0, seeds, chunk), children, strict=True):
        size = min(chunk, seeds - start)
        yield init(net, width, child, ensemble=size, input_dim=input_dim)


def _relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a − b‖_F/‖b‖_F over the last two axes (a batched over ensemble members)."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


@dataclass
class KernelConvergence:
    """Relative Frobenius errors of the empirical NTK and NNGP at initialisation, per width."""

    ntk: WidthScaling
    nngp: WidthScaling


def kernel_convergence(
    net: Serial,
    x: np.ndarray,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    seeds: int = 16,
    seed: int = 0,
) -> KernelConvergence:
    """‖Θ̂₀ − Θ‖_F/‖Θ‖_F and ‖K̂ − K‖_F/‖K‖_F on the Gram matrices of `x`, per width and seed."""
    x = np.asarray(x, dtype=float)
    nngp, ntk = net.kernels(x)
    errs_ntk, errs_nngp = [], []
    for width in widths:
        e_ntk, e_nngp = [], []
        for ens in ensembles(net, width, seeds, x.shape[1], seed):
            e_ntk.append(_relative(ens.empirical_ntk(x), ntk))
            e_nngp.append(_relative(ens.empirical_nngp(x), nngp))
        errs_ntk.append(np.concatenate(e_ntk))
        errs_nngp.append(np.concatenate(e_nngp))
    return KernelConvergence(_scaling(widths, errs_ntk), _scaling(widths, errs_nngp))


@dataclass
class TrainingRun:
    """A training problem: inputs, targets, test inputs, learning rate, steps and loss."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    lr: float
    steps: int
    loss: Loss = "sum"

    @classmethod
    def default(
        cls,
        net: Serial,
        n_train: int = 6,
        n_test: int = 4,
        dim: int = 3,
        seed: int = 0,
        decay: float = 1e-2,
        max_steps: int = 1000,
    ) -> TrainingRun:
        """Gaussian inputs, y = sin(x₁) + x₂x₃/2 (dim ≥ 3), lr = 1/λ_max(Θ), and enough steps
        (at most `max_steps`) that the slowest kernel mode's residual decays by `decay`."""
        if dim < 3:
            raise NTKSymError(f"the default problem needs dim ≥ 3, got {dim}")
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_train, dim))
        y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
        x_test = rng.standard_normal((n_test, dim))
        lam = np.linalg.eigvalsh(net.ntk(x))
        lr = 1.0 / lam[-1]
        slowest = np.log1p(-lr * max(lam[0], 1e-12))
        steps = int(min(max_steps, np.ceil(np.log(decay) / slowest)))
        return cls(x, y, x_test, lr, steps)


def _train(ens: FiniteNetwork, run: TrainingRun):
    return gradient_descent(
        ens, run.x, run.y, lr=run.lr, steps=run.steps, loss=run.loss, x_test=run.x_test
    )


@dataclass
class KernelDrift:
    """‖Θ̂_T − Θ̂₀‖_F/‖Θ̂₀‖_F per width and seed (Θ̂ on train ∪ test inputs), and the final
    training loss relative to the initial one."""

    drift: WidthScaling
    loss_ratio: np.ndarray


def kernel_drift(
    net: Serial,
    run: TrainingRun,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    seeds: int = 8,
    seed: int = 0,
) -> KernelDrift:
    """How far the empirical NTK moves while gradient descent trains the network on `run`."""
    both = np.concatenate([run.x, run.x_test])
    drifts, ratios = [], []
    for width in widths:
        d, r = [], []
        for ens in ensembles(net, width, seeds, both.shape[1], seed):
            traj = _train(ens, run)
            d.append(_relative(traj.network.empirical_ntk(both), ens.empirical_ntk(both)))
            r.append(traj.loss[-1] / traj.loss[0])
        drifts.append(np.concatenate(d))
        ratios.append(np.concatenate(r))
    return KernelDrift(_scaling(widths, drifts), np.array(ratios))


def linearization_gap(
    net: Serial,
    run: TrainingRun,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    seeds: int = 8,
    seed: int = 0,
) -> WidthScaling:
    """‖f_T(x*) − f_lin,T(x*)‖/‖f_lin,T(x*) − f₀(x*)‖ per width and seed (test inputs x*)."""
    gaps = []
    for width in widths:
        g = []
        for ens in ensembles(net, width, seeds, run.x.shape[1], seed):
            real = _train(ens, run).test
            lin = linearized_descent(
                ens, run.x, run.y, lr=run.lr, steps=run.steps, loss=run.loss, x_test=run.x_test
            ).test
            g.append(
                np.linalg.norm(real[-1] - lin[-1], axis=-1)
                / np.linalg.norm(lin[-1] - lin[0], axis=-1)
            )
        gaps.append(np.concatenate(g))
    return _scaling(widths, gaps)


@dataclass
class EnsembleComparison:
    """Trained ensembles against the infinite-width Gaussian prediction at the test inputs.

    mean, cov: the predicted μ_T and C_T. ens_mean, ens_std: (widths, m) ensemble statistics.
    mean_error: RMS over test points of (ensemble mean − μ_T)/√diag C_T, per width; its pure
    Monte Carlo size is ≈ 1/√seeds (`mc_mean_error`). std_error: RMS of ensemble std/√diag C_T − 1;
    Monte Carlo size ≈ 1/√(2(seeds − 1)) (`mc_std_error`). conditional: each network's
    ‖f_T − (f₀ − M_T(f₀(X) − y))‖/‖M_T(f₀(X) − y)‖ at the test inputs, the limit conditioned on
    the network's own initial function, which has no Monte Carlo floor.
    """

    widths: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    ens_mean: np.ndarray
    ens_std: np.ndarray
    mean_error: np.ndarray
    std_error: np.ndarray
    mc_mean_error: float
    mc_std_error: float
    conditional: WidthScaling


def ensemble_vs_limit(
    net: Serial,
    run: TrainingRun,
    widths: Sequence[int] = (64, 256, 1024),
    seeds: int = 32,
    seed: int = 0,
) -> EnsembleComparison:
    """Train `seeds` networks per width on `run` and compare with `dynamics.predict_gd`."""
    # The limit is affine in the targets, μ_T = M_T y; predicting the targets [y, I] at once
    # gives μ_T and the matrix M_T (columns 1…N) from the same `dynamics.predict_gd` call.
    targets = np.column_stack([run.y, np.eye(run.x.shape[0])])
    pred = predict_gd(net, run.x, targets, run.x_test, steps=[run.steps], lr=run.lr, loss=run.loss)
    mu, m, cov = pred.mean[0, :, 0], pred.mean[0, :, 1:], pred.cov[0]
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if np.any(sd <= 0):
        raise NTKSymError("the predicted variance vanishes at a test input; choose other inputs")
    means, stds, mean_err, std_err, cond = [], [], [], [], []
    for width in widths:
        finals, conds = [], []
        for ens in ensembles(net, width, seeds, run.x.shape[1], seed):
            traj = _train(ens, run)
            f0, f0_test, ft = traj.train[0], traj.test[0], traj.test[-1]
            move = (f0 - run.y) @ m.T
            conds.append(
                np.linalg.norm(ft - (f0_test - move), axis=-1) / np.linalg.norm(move, axis=-1)
            )
            finals.append(ft)
        finals = np.concatenate(finals)
        means.append(finals.mean(axis=0))
        stds.append(finals.std(axis=0, ddof=1))
        mean_err.append(np.sqrt(np.mean(((means[-1] - mu) / sd) ** 2)))
        std_err.append(np.sqrt(np.mean((stds[-1] / sd - 1.0) ** 2)))
        cond.append(np.concatenate(conds))
    return EnsembleComparison(
        np.asarray(widths),
        mu,
        cov,
        np.array(means),
        np.array(stds),
        np.array(mean_err),
        np.array(std_err),
        1.0 / np.sqrt(seeds),
        1.0 / np.sqrt(2.0 * (seeds - 1)),
        _scaling(widths, cond),
    )


@dataclass
class JacotFigure1:
    """Empirical Θ̂(x₀, x(γ)) at t = 0 and t = `steps` against the limit Θ(x₀, x(γ)).

    gamma: (g,) angles; limit: (g,); initial, trained: (widths, seeds, g); train_x, train_y: the
    training set; deviation_initial, deviation_trained: (widths,) RMS over seeds and angles of
    Θ̂ − Θ, relative to max Θ; final_loss: (widths, seeds).
    """

    widths: np.ndarray
    gamma: np.ndarray
    limit: np.ndarray
    initial: np.ndarray
    trained: np.ndarray
    train_x: np.ndarray
    train_y: np.ndarray
    deviation_initial: np.ndarray
    deviation_trained: np.ndarray
    final_loss: np.ndarray


def jacot_net() -> Serial:
    """Jacot et al. (2018), Figure 1: 4 layers = 3 hidden ReLU nonlinearities, σ_w = 1, β = 0.1.

    Their α⁽ˡ⁺¹⁾ = W⁽ˡ⁾α⁽ˡ⁾/√n_l + β b⁽ˡ⁾ with n₀ = d = 2 is our NTK parameterization with
    σ_b = β, including the 1/d input scaling, so their limiting kernel is our `net.ntk` as is:
    Θ(x₀, x₀) = 0.2825 and Θ(x₀, −x₀) ≈ 0.0644 for x₀ = (1, 0).
    """
    return mlp("relu", depth=3, w_std=1.0, b_std=0.1)


def jacot_figure1(
    widths: Sequence[int] = (500, 10000),
    seeds: int = 10,
    steps: int = 200,
    lr: float = 1.0,
    n_train: int = 16,
    n_gamma: int = 61,
    seed: int = 0,
) -> JacotFigure1:
    """Θ̂(x₀, x(γ)), x(γ) = (cos γ, sin γ), x₀ = (1, 0), γ ∈ [−π, π], before and after `steps`
    steps of gradient descent at learning rate `lr` on f*(x) = x₁x₂.

    Training inputs are `n_train` standard-normal points in ℝ² (our choice: the paper does not fix
    the number here); the loss averages over them (``loss="mean"``), ℒ = ½·mean (f − f*)², as in
    the paper's empirical cost.
    """
    net = jacot_net()
    gamma = np.linspace(-np.pi, np.pi, n_gamma)
    circle = np.stack([np.cos(gamma), np.sin(gamma)], axis=1)
    x0 = np.array([[1.0, 0.0]])
    rng = np.random.default_rng(seed)
    train_x = rng.standard_normal((n_train, 2))
    train_y = train_x[:, 0] * train_x[:, 1]
    limit = net.ntk(x0, circle)[0]
    initial, trained, losses = [], [], []
    for width in widths:
        before, after, loss = [], [], []
        for ens in ensembles(net, width, seeds, 2, seed):
            before.append(ens.empirical_ntk(x0, circle)[:, 0])
            traj = gradient_descent(ens, train_x, train_y, lr=lr, steps=steps, loss="mean")
            after.append(traj.network.empirical_ntk(x0, circle)[:, 0])
            loss.append(traj.loss[-1])
            del traj
        initial.append(np.concatenate(before))
        trained.append(np.concatenate(after))
        losses.append(np.concatenate(loss))
    initial, trained = np.array(initial), np.array(trained)
    scale = np.max(limit)

    def rms(values: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean((values - limit) ** 2, axis=(1, 2))) / scale

    return JacotFigure1(
        np.asarray(widths),
        gamma,
        limit,
        initial,
        trained,
        train_x,
        train_y,
        rms(initial),
        rms(trained),
        np.array(losses),
    )
