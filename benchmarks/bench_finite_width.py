"""The O(1/n) finite-width prediction (`net.finite_width`) against the plain `net.kernels` call.

Run: python benchmarks/bench_finite_width.py  (prints a table; nothing is asserted). m = 100
inputs in d = 10, depth 5, σ_w = 1.4, σ_b = 0.2, widths 64 (both calls warmed up first, so the
one-off SymPy and compile costs are excluded and listed separately). The two calls alternate 15
times and the medians are reported, so the ratio is meaningful on a shared machine while
absolute times are not.
"""

import statistics
import time

import numpy as np

import ntk_sym

M, D, DEPTH, WIDTH, ROUNDS = 100, 10, 5, 64, 15


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    X = np.random.default_rng(0).standard_normal((M, D))
    print(f"m = {M}, d = {D}, depth {DEPTH}, width {WIDTH}; medians of {ROUNDS} alternations")
    print(f"{'φ':8} {'first fw call':>14} {'kernels':>10} {'finite_width':>13} {'ratio':>7}")
    for name in ("relu", "erf", "tanh"):
        net = ntk_sym.mlp(name, DEPTH, 1.4, 0.2)
        first = timed(lambda net=net: net.finite_width(X, WIDTH))
        net.kernels(X)
        kern, fw = [], []
        for _ in range(ROUNDS):
            kern.append(timed(lambda net=net: net.kernels(X)))
            fw.append(timed(lambda net=net: net.finite_width(X, WIDTH)))
        k, f = statistics.median(kern), statistics.median(fw)
        print(f"{name:8} {first * 1e3:12.1f}ms {k * 1e3:8.2f}ms {f * 1e3:11.2f}ms {f / k:7.2f}")


if __name__ == "__main__":
    main()
