"""Time the analytic kernel gradients (`ntk_sym.gradients`) against the kernels and central
differences.

MLPs: central differences in log σ_w and log σ_b need four extra Gram matrices from the engine;
the tangent evaluator computes both derivatives in one pass over the pairs. CNTKs: the
gradient's cost relative to the plain kernels (`net.kernels`), tied (2 directions) and per
layer (2 per Conv/Dense). Best of 3 each, after one warm-up call that compiles everything;
peak memory by tracemalloc in an untimed call. Prints Markdown tables for
benchmarks/README.md.

    python benchmarks/bench_gradients.py [--quick] [--mlp-only]

``--mlp-only`` runs the MLP table alone, which uses only ``kernel_gradients(net, X)`` and
``ntk_sym.mlp``: the same file then times an older checkout (PYTHONPATH=old/tree) for a
before/after comparison on the same machine.
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


def cntk_row(readout: str, n: int, side: int = 8) -> str:
    """Conv(3×3) → ReLU → Conv(3×3) → ReLU → readout → Dense on n side×side×1 images."""
    from ntk_sym.layers import Conv, Dense, Flatten, GlobalAvgPool, Relu, serial

    pool = GlobalAvgPool() if readout == "gap" else Flatten()
    net = serial(Conv((3, 3), W_STD, B_STD), Relu(), Conv((3, 3), W_STD, B_STD), Relu(), pool,
                 Dense(W_STD, B_STD))  # fmt: skip
    X = np.random.default_rng(n).normal(size=(n, side, side, 1))
    kernel_gradients(net, X[:3])  # compile
    net.kernels(X[:3])
    t_kernel = best_of(lambda: net.kernels(X))
    t_tied = best_of(lambda: kernel_gradients(net, X))
    t_layer = best_of(lambda: kernel_gradients(net, X, tied=False))
    peak = peak_gib(lambda: kernel_gradients(net, X))
    return (
        f"| {readout} | {n} | {side}×{side}×1 | {t_kernel:.3f} | {t_tied:.3f} | {t_layer:.3f} "
        f"| {t_tied / t_kernel:.1f}× | {t_layer / t_kernel:.1f}× | {peak:.2f} GiB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="n = 300 (MLP), 20 (CNTK) only")
    parser.add_argument("--mlp-only", action="store_true", help="the MLP table only")
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
    if args.mlp_only:
        return
    print()
    print("| readout | n | images | kernels (s) | gradient, tied (s) | gradient, per layer (s) "
          "| tied/kernels | per layer/kernels | peak tied |")
    print("|---|---|---|---|---|---|---|---|---|")
    for readout in ("flatten", "gap"):
        for n in (20,) if args.quick else (20, 50):
            print(cntk_row(readout, n), flush=True)


if __name__ == "__main__":
    main()
