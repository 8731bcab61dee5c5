"""Predictions of a `Network`'s infinite-width limit: kernels from `net.kernels`, then dynamics.

Thin wrappers: they compute (NNGP, NTK) on the training set, between test and training set and
on the test set, and hand them to `flow.predict_from_kernels` / `discrete.predict_gd_from_kernels`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from .discrete import predict_gd_from_kernels
from .ensemble import Prediction
from .flow import DEFAULT_TIMES, predict_from_kernels


class HasKernels(Protocol):
    """Anything with ``kernels(X1, X2=None) -> (nngp, ntk)``, such as `ntk_sym.Network`."""

    def kernels(self, X1: object, X2: object | None = None) -> tuple[np.ndarray, np.ndarray]: ...


def _kernel_blocks(net: HasKernels, X_train: object, X_test: object) -> tuple[np.ndarray, ...]:
    """(Θ(X,X), Θ(x,X), K(X,X), K(x,X), K(x,x)) of `net`, in the predictors' order."""
    nngp_train, ntk_train = net.kernels(X_train)
    nngp_test_train, ntk_test_train = net.kernels(X_test, X_train)
    nngp_test, _ = net.kernels(X_test)
    return ntk_train, ntk_test_train, nngp_train, nngp_test_train, nngp_test


def predict(
    net: HasKernels,
    X_train: object,
    y_train: object,
    X_test: object,
    times: float | Iterable[float] = DEFAULT_TIMES,
    lr: float = 1.0,
    diag_reg: float = 0.0,
    loss: str = "sum",
    kernel: str = "ntk",
) -> Prediction:
    """Gradient-flow predictions of `net`'s infinite-width limit at `times` (see `flow`).

    Returns a `Prediction` with `.mean` (len(times), n_test[, k]), `.cov`
    (len(times), n_test, n_test), `.train_loss` (len(times),) and `.times`.
    """
    blocks = _kernel_blocks(net, X_train, X_test)
    return predict_from_kernels(*blocks, y_train, times, lr, diag_reg, loss, kernel)


def predict_gd(
    net: HasKernels,
    X_train: object,
    y_train: object,
    X_test: object,
    steps: int | Iterable[int] = (0, 1, 10, 100),
    lr: float = 1.0,
    diag_reg: float = 0.0,
    loss: str = "sum",
    kernel: str = "ntk",
) -> Prediction:
    """Predictions of `net`'s infinite-width limit after `steps` gradient-descent steps."""
    blocks = _kernel_blocks(net, X_train, X_test)
    return predict_gd_from_kernels(*blocks, y_train, steps, lr, diag_reg, loss, kernel)
