"""Shared fixtures: the adversarial input sets of the accuracy tests."""

import numpy as np
import pytest


def relative_entry_error(approx: np.ndarray, exact: np.ndarray, diag1, diag2) -> np.ndarray:
    """|K̂ᵢⱼ − Kᵢⱼ| / √(Kᵢᵢ Kⱼⱼ): the error measure of the accuracy criteria."""
    scale = np.sqrt(np.outer(np.abs(diag1), np.abs(diag2)))
    scale[scale == 0] = 1.0
    return np.abs(approx - exact) / scale


@pytest.fixture(scope="session")
def nasty_inputs() -> tuple[np.ndarray, np.ndarray]:
    """X1, X2 with exact duplicates (within X1 and across), exactly parallel and antipodal copies
    (x, 4x, −x), norms from 1e-3 to 1e3, a pair 1e-9 apart, and d = 5."""
    rng = np.random.default_rng(2018)
    base = rng.normal(size=(4, 5))
    X1 = np.vstack(
        [
            base[0],
            base[1],
            4.0 * base[0],  # exactly parallel (a power of two keeps it exact)
            -base[1],  # antipodal
            base[0],  # exact duplicate inside X1
            1e-3 * rng.normal(size=5) / np.sqrt(5),
            1e3 * rng.normal(size=5) / np.sqrt(5),
        ]
    )
    X2 = np.vstack(
        [
            base[1],  # a row of X2 equal to a row of X1
            base[0] + 1e-9,  # 1e-9 away from X1[0]
            -base[0],
            base[2],
            1e3 * base[3] / np.linalg.norm(base[3]),
        ]
    )
    return X1, X2
