"""Time the analytic kernel gradients (`ntk_sym.gradients`) against central differences.

Central differences in log σ_w and log σ_b need four extra Gram matrices from the engine; the
tangent recursion computes both derivatives in one pass over the pairs. Best of 3 each, after
one warm-up call that compiles everything; peak memory by tracemalloc in an untimed
call. Prints a Markdown table for benchmarks/README.md.

    python benchmarks/bench_gradients.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import ntk_sym
from ntk_sym.gradients import kernel_gradients

W_STD, B_STD, STEP = 1.5, 0.1, 1e-5


def central_differences(activation: str, depth: int, X: np.ndarray) -> np.ndarray:
    out = []
    for which in (0, 1):
        scale = np.exp(STEP * np.eye(2)[which])
        up = ntk_sym.mlp(activation, depth, W_STD * scale[0], B_STD * scale[1]).ntk(X)
        down = ntk_sym.mlp(activation, depth, W_STD / scale[0], B_STD / scale[1]).ntk(X)
        out.append((up - down) / (2 * STEP))
    return np.stack(out, axis=-1)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_gib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**30


def row(activation: str, n: int, depth: int = 3) -> str:
    X = np.random.default_rng(n).normal(size=(n, 20))
    net = ntk_sym.mlp(activation, depth, W_STD, B_STD)
    kernel_gradients(net, X[:5])  # compile
    t_kernel = best_of(lambda: net.ntk(X))
    t_grad = best_of(lambda: kernel_gradients(net, X))
    t_fd = best_of(lambda: central_differences(activation, depth, X))
    peak = peak_gib(lambda: kernel_gradients(net, X))
    g = kernel_gradients(net, X)
    fd = central_differences(activation, depth, X)
    scale = np.sqrt(np.outer(np.diag(g.ntk), np.diag(g.ntk)))[..., None]
    dev = np.max(np.abs(g.d_ntk - fd) / scale)
    return (
        f"| {activation} | {depth} | {n} | {t_kernel:.3f} | {t_grad:.3f} | {t_fd:.3f} "
        f"| {t_grad / t_kernel:.1f}× | {t_fd / t_grad:.2f}× | {peak:.2f} GiB | {dev:.1e} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="n = 300 only")
    args = parser.parse_args()
    sizes = (300,) if args.quick else (300, 1000, 2000)
    print(
        "| φ | depth | n | kernel (s) | gradient (s) | central diff. (s) | grad/kernel "
        "| FD/grad | peak gradient | max dev vs FD |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for activation in ("relu", "erf"):
        for n in sizes:
            print(row(activation, n), flush=True)


if __name__ == "__main__":
    main()
