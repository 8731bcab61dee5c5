"""Bad input to the dynamics gets an InputError naming the problem, never a NaN."""

from __future__ import annotations

import numpy as np
import pytest
from dynamics_reference import feature_kernels

from ntk_sym.dynamics import max_stable_lr, predict_from_kernels, predict_gd_from_kernels
from ntk_sym.errors import InputError

N, M = 5, 2


@pytest.fixture(scope="module")
def args() -> dict:
    rng = np.random.default_rng(0)
    blocks = feature_kernels(rng, N, M, width=20).blocks()
    names = ("ntk_train", "ntk_test_train", "nngp_train", "nngp_test_train", "nngp_test")
    return dict(zip(names, blocks, strict=True), y_train=rng.normal(size=N))


def _with(args: dict, **changes: object) -> dict:
    return {**args, **changes}


def _nan_at(matrix: np.ndarray) -> np.ndarray:
    bad = matrix.copy()
    bad[0, -1] = np.nan
    return bad


BAD_KERNELS = [
    ("ntk_train", lambda a: a["ntk_train"][:, :-1], "ntk_train must have shape"),
    ("ntk_test_train", lambda a: a["ntk_test_train"].T, "ntk_test_train must have shape"),
    ("nngp_train", lambda a: np.zeros((N, N + 1)), "nngp_train must have shape"),
    ("nngp_test_train", lambda a: a["nngp_test_train"][0], "must be 2-D"),
    ("nngp_test", lambda a: np.eye(M + 1), "nngp_test must have shape"),
    ("ntk_train", lambda a: _nan_at(a["ntk_train"]), "ntk_train has non-finite"),
    ("nngp_test", lambda a: _nan_at(a["nngp_test"]) + np.inf, "nngp_test has non-finite"),
    ("ntk_train", lambda a: a["ntk_train"] + np.triu(np.ones((N, N)), 1), "must be symmetric"),
    ("ntk_train", lambda a: a["ntk_train"] - 2 * np.eye(N), "not positive semi-definite"),
    ("ntk_train", lambda a: "kernel", "numeric array"),
]


@pytest.mark.parametrize(("name", "make", "message"), BAD_KERNELS)
def test_bad_kernels(args, name, make, message):
    with pytest.raises(InputError, match=message):
        predict_from_kernels(**_with(args, **{name: make(args)}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y_train": np.ones(N + 1)}, "y_train has 6 rows but nngp_train is"),
        ({"y_train": np.ones((N, 2, 1))}, r"y_train must have shape \(n,\) or \(n, k\)"),
        ({"y_train": np.r_[np.ones(N - 1), np.nan]}, "y_train has 1 non-finite"),
        ({"times": [1.0, -0.5]}, "times must be non-negative"),
        ({"times": [np.nan]}, "times contain NaN"),
        ({"times": []}, "non-empty"),
        ({"times": [[1.0]]}, "1-D"),
        ({"lr": 0.0}, "lr must be finite and positive"),
        ({"lr": np.inf}, "lr must be finite and positive"),
        ({"diag_reg": -1e-3}, "diag_reg must be finite and non-negative"),
        ({"loss": "average"}, "loss must be one of 'sum', 'mean'"),
        ({"kernel": "rbf"}, "kernel must be one of 'ntk', 'nngp'"),
        ({"ntk_train": None}, "kernel='ntk' needs ntk_train"),
    ],
)
def test_bad_options(args, changes, message):
    with pytest.raises(InputError, match=message):
        predict_from_kernels(**_with(args, **changes))


def test_nngp_mode_needs_no_ntk(args):
    pred = predict_from_kernels(**_with(args, ntk_train=None, ntk_test_train=None, kernel="nngp"))
    assert np.all(np.isfinite(pred.cov))


@pytest.mark.parametrize("steps", [[1.5], [-1], [np.inf], [[2]]])
def test_bad_steps(args, steps):
    with pytest.raises(InputError, match="steps"):
        predict_gd_from_kernels(**args, steps=steps, lr=0.1)


def test_bad_stable_lr_input(args):
    with pytest.raises(InputError, match="kernel_train must be a square"):
        max_stable_lr(args["ntk_test_train"])
    with pytest.raises(InputError, match="kernel_train must be a square"):
        max_stable_lr(np.ones(N))
    with pytest.raises(InputError, match="loss must be one of"):
        max_stable_lr(args["ntk_train"], loss="avg")
