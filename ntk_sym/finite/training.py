"""The one training loop of finite networks: full-batch gradient descent, and the same on the
network's linearisation around initialisation.

Loss ℒ = ½ s ‖f(X) − y‖² (summed over points and outputs), the loss the kernels' gradient flow
df/dt = −η Θ (f − y) assumes, with s = 1 (``loss="sum"``, the default) or s = 1/N
(``loss="mean"``, the same loss at learning rate η/N). One step of gradient descent with learning
rate η updates every parameter array θ by θ ← θ − η r_θ ∂ℒ/∂θ, r_θ the learning-rate weight of
the parameterization (`FiniteNetwork.rates`: 1 in the NTK parameterization; 1/fan_in for weights
in the standard one). To first order in η the outputs move by f ← f − η s Θ̂ (f − y), the
discrete form of df/dt = −η Θ (f − y). The loop is the same for every layer list, vectors or
images, one output or several (y of shape (N,) or (N, K)).

The linearised network f_lin(x) = f₀(x) + J₀(x)(θ − θ₀) is trained *in function space*: under the
same update its parameter step is −η s R J₀ᵀ(f_lin(X) − y) (R = diag(r_θ)), so its outputs obey
exactly

    f_lin,t+1(X) = f_lin,t(X) − η s Θ̂₀(X, X) (f_lin,t(X) − y),
    f_lin,t+1(x) = f_lin,t(x) − η s Θ̂₀(x, X) (f_lin,t(X) − y),

with Θ̂₀ the empirical NTK at initialisation (one output). No parameters are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError, NTKSymError
from ..numeric.progress import progress_bar
from .network import FiniteNetwork
from .protocol import leaves

Loss = Literal["sum", "mean"]


@dataclass
class Trajectory:
    """Outputs recorded during training.

    steps: the recorded step indices (0 = initialisation), shape (T,).
    train, test: outputs at those steps, (T, [E,] N) and (T, [E,] M) (test is None without X_test;
    several outputs add a last axis K).
    loss: ℒ at those steps, (T, [E]).
    network: the trained network (None for the linearised model, trained in function space).
    """

    steps: np.ndarray
    train: np.ndarray
    test: np.ndarray | None
    loss: np.ndarray
    network: FiniteNetwork | None


def loss_scale(loss: Loss, n: int) -> float:
    """s in ℒ = ½ s ‖f − y‖²: 1 for "sum", 1/n for "mean"."""
    if loss == "sum":
        return 1.0
    if loss == "mean":
        return 1.0 / n
    raise NTKSymError(f"loss must be 'sum' or 'mean', got {loss!r}")


def _record_steps(steps: int, record: int | Sequence[int] | None) -> set[int]:
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise NTKSymError(f"steps must be a non-negative integer, got {steps!r}")
    if record is None:
        return {0, steps}
    if isinstance(record, int | np.integer):
        if record < 1:
            raise NTKSymError(f"record interval must be positive, got {record}")
        return set(range(0, steps + 1, int(record))) | {steps}
    chosen = {int(s) for s in record}
    if any(s < 0 or s > steps for s in chosen):
        raise NTKSymError(f"recorded steps must lie in [0, {steps}], got {sorted(chosen)}")
    return chosen


def _targets(fnet: FiniteNetwork, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    want = (x.shape[0],) if fnet.outputs == 1 else (x.shape[0], fnet.outputs)
    if y.shape != want:
        raise InputError(f"y must have shape {want} to match X and the network's outputs, got "
                         f"{y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("y has non-finite entries")
    return y


def _check_lr(lr: float) -> float:
    if not np.isfinite(lr) or lr <= 0:
        raise NTKSymError(f"learning rate must be finite and positive, got {lr!r}")
    return float(lr)


def gradient_descent(
    fnet: FiniteNetwork,
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float,
    steps: int,
    loss: Loss = "sum",
    x_test: np.ndarray | None = None,
    record: int | Sequence[int] | None = None,
    progress: bool = False,
) -> Trajectory:
    """Train a copy of `fnet` (every ensemble member at once) by `steps` full-batch GD steps.

    `record` chooses the steps whose outputs are kept: None (start and end), an interval, or a
    list of step indices. The loss diverging to a non-finite value raises `NTKSymError`.
    """
    lr = _check_lr(lr)
    x = fnet.check_inputs(x)
    y = _targets(fnet, x, y)
    x_test = None if x_test is None else fnet.check_inputs(x_test, "X_test")
    scale = loss_scale(loss, x.shape[0])
    keep = _record_steps(steps, record)
    net = fnet.copy()
    rates = list(leaves(net.rates()))
    axes = tuple(range(1, 1 + y.ndim))  # points (and outputs), after the ensemble axis
    log = _Recorder()
    with progress_bar(steps, "gradient descent", progress, unit="step") as bar:
        for step in range(steps + 1):
            with np.errstate(over="ignore", invalid="ignore"):
                trace = net.forward(x)
                residual = trace.output - y
                value = 0.5 * scale * np.sum(residual**2, axis=axes)
            if not np.all(np.isfinite(value)):
                raise NTKSymError(f"gradient descent diverged at step {step} (learning rate {lr})")
            if step in keep:
                test = None if x_test is None else net.forward(x_test).output
                log.add(step, net, trace.output, test, value)
            if step == steps:
                break
            bar.set_postfix(loss=float(np.mean(value)), refresh=False)
            bar.update()
            grads = net.gradients(trace, scale * residual)
            for param, grad, rate in zip(leaves(net.params), leaves(grads.tree), rates,
                                         strict=True):
                # In place: θ ← θ − η r ∂ℒ/∂θ without a weight-sized temporary.
                grad *= lr * rate
                param -= grad
    return log.finish(net)


def linearized_descent(
    fnet: FiniteNetwork,
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float,
    steps: int,
    loss: Loss = "sum",
    x_test: np.ndarray | None = None,
    record: int | Sequence[int] | None = None,
    progress: bool = False,
) -> Trajectory:
    """Gradient descent on the linearisation of `fnet` at its current parameters (function space).

    Exact for the first-order Taylor model: see the module docstring. Same arguments as
    `gradient_descent`; the returned trajectory has ``network=None``.
    """
    lr = _check_lr(lr)
    x = fnet.check_inputs(x)
    y = _targets(fnet, x, y)
    scale = loss_scale(loss, x.shape[0])
    keep = _record_steps(steps, record)
    single = fnet.ensemble is None
    lift = (lambda a: a[None]) if single else (lambda a: a)
    f = lift(fnet.apply(x)).copy()
    theta = lift(fnet.empirical_ntk(x))
    f_test = theta_test = None
    if x_test is not None:
        f_test = lift(fnet.apply(x_test)).copy()
        theta_test = lift(fnet.empirical_ntk(x_test, x))
    log = _Recorder()
    with progress_bar(steps, "linearised descent", progress, unit="step") as bar:
        for step in range(steps + 1):
            residual = f - y
            value = 0.5 * scale * np.sum(residual**2, axis=-1)
            if not np.all(np.isfinite(value)):
                raise NTKSymError(
                    f"linearised descent diverged at step {step} (learning rate {lr})"
                )
            if step in keep:
                log.add(step, fnet, f.copy(), None if f_test is None else f_test.copy(), value)
            if step == steps:
                break
            bar.set_postfix(loss=float(np.mean(value)), refresh=False)
            bar.update()
            if f_test is not None:
                f_test -= lr * scale * np.einsum("eij,ej->ei", theta_test, residual)
            f -= lr * scale * np.einsum("eij,ej->ei", theta, residual)
    return log.finish(None)


class _Recorder:
    """Collects (step, outputs, loss) and stacks them, dropping the ensemble axis of single nets."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.train: list[np.ndarray] = []
        self.test: list[np.ndarray | None] = []
        self.loss: list[np.ndarray] = []
        self.single = True

    def add(self, step: int, net: FiniteNetwork, train, test, loss) -> None:
        self.single = net.ensemble is None
        pick = (lambda a: a[0]) if self.single else (lambda a: a)
        self.steps.append(step)
        self.train.append(pick(train))
        self.test.append(None if test is None else pick(test))
        self.loss.append(pick(loss))

    def finish(self, net: FiniteNetwork | None) -> Trajectory:
        test = None if self.test[0] is None else np.stack(self.test)
        return Trajectory(
            np.array(self.steps), np.stack(self.train), test, np.stack(self.loss), net
        )
