"""Finite networks: empirical NTK by per-layer Gram factorisation against the explicit Jacobian
product, and the cost of one full-batch gradient-descent step, per width.

Run: python benchmarks/bench_finite.py  (prints a table; nothing is asserted).
"""

import time

import numpy as np

import ntk_sym
from ntk_sym.finite import gradient_descent, init

STEPS = 10


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def explicit_ntk(fnet, x):
    """Θ̂ = J Jᵀ with J built row by row from vector–Jacobian products (NTK parameterization)."""
    rows = []
    for i in range(x.shape[0]):
        g = fnet.vjp(x, np.eye(x.shape[0])[i])
        rows.append(np.concatenate([p.ravel() for p in (*g.weights, *g.biases)]))
    jac = np.array(rows)
    return jac @ jac.T


def main() -> None:
    net = ntk_sym.mlp("relu", depth=3, w_std=1.5, b_std=0.1)
    x = np.random.default_rng(0).standard_normal((32, 8))
    y = np.sin(x[:, 0])
    header = ("width", "factorised NTK", "explicit J Jᵀ", "max |diff|", "GD step")
    print("{:>6} {:>15} {:>14} {:>11} {:>9}".format(*header))
    for width in (128, 512, 1024, 2048):
        fnet = init(net, width, seed=0)
        fast = best_of(lambda fnet=fnet: fnet.empirical_ntk(x))
        slow = best_of(lambda fnet=fnet: explicit_ntk(fnet, x), repeat=1)
        diff = np.max(np.abs(fnet.empirical_ntk(x) - explicit_ntk(fnet, x)))
        step = best_of(
            lambda fnet=fnet: gradient_descent(fnet, x, y, lr=0.01, steps=STEPS), repeat=1
        )
        print(f"{width:>6} {fast:>14.4f}s {slow:>13.4f}s {diff:>11.2e} {step / STEPS:>8.4f}s")


if __name__ == "__main__":
    main()
