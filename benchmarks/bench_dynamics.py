"""Wall time of the infinite-width predictor: one eigendecomposition, many times.

Run: PYTHONPATH=. python benchmarks/bench_dynamics.py
Prints seconds for predict_from_kernels at n training / m test points and T times, next to the
cost of the eigendecomposition alone (the part shared by all times).
"""

from __future__ import annotations

import time

import numpy as np

from ntk_sym.dynamics import predict_from_kernels


def _kernels(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, ...]:
    """Random-feature NTK/NNGP blocks (exactly PSD) over n training and m test points."""
    J = rng.normal(size=(n + m, 2 * n)) / np.sqrt(2 * n)
    F = rng.normal(size=(n + m, 2 * n)) / np.sqrt(2 * n)
    ntk, nngp = J @ J.T, F @ F.T
    return ntk[:n, :n], ntk[n:, :n], nngp[:n, :n], nngp[n:, :n], nngp[n:, n:]


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'n':>6} {'m':>5} {'T':>4} {'eigh s':>8} {'predict s':>10}")
    for n, m, count in ((500, 100, 20), (500, 100, 200), (1000, 200, 20)):
        blocks = _kernels(rng, n, m)
        y = rng.normal(size=n)
        times = np.r_[np.logspace(-3, 3, count - 1), np.inf]
        start = time.perf_counter()
        np.linalg.eigh(blocks[0])
        eig = time.perf_counter() - start
        start = time.perf_counter()
        predict_from_kernels(*blocks, y, times)
        total = time.perf_counter() - start
        print(f"{n:>6} {m:>5} {count:>4} {eig:>8.3f} {total:>10.3f}")


if __name__ == "__main__":
    main()
