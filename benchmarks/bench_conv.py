"""Time and memory of the convolutional NTK (CNTK) engine.

Usage:  python benchmarks/bench_conv.py [--full] [--subset N] [--threads T]
        python benchmarks/bench_conv.py series [--repeats R] [--threads T]
        python benchmarks/bench_conv.py engines [--n N] [--repeats R] [--threads T]

``series``: the Hermite series dual in conv networks. Conv(3) → φ → Conv(3) → φ →
GlobalAvgPool → Dense on n = 50 random 8×8×1 images, φ = tanh, softplus, SiLU against φ = ReLU
(the baseline, closed form) in the same process, interleaved, best of --repeats; tanh also with
the 2-D rule (degree=128, once, on 4 images: the route conv networks took before); the
certified bound of ``error_bound=True`` and the largest deviation from the 2-D rule on those 4.

``engines``: "one engine or two". A ReLU MLP of depth 3 (σ_w = 1.4, σ_b = 0.2) on n inputs
in d = 32, through the MLP engine, and through the conv engine as images with one position,
(n, 1, d) with Conv(1) for Dense and Flatten before the readout; interleaved, best of
--repeats, with the largest deviation between the two.

Network (issue 12): Conv(3×3) → ReLU → Conv(3×3) → ReLU → GlobalAvgPool → Dense, SAME padding,
σ_w = 1, σ_b = 0, channels last.

1. Baseline in this process: the direct whole-array evaluation (every image pair's full
   (P, P) pixel covariance held at once, as neural-tangents does, with the arccos of the
   rounded cosine) against ntk_sym on the same n = 60 random 8×8×1 images, alternating, best
   of 2; the deviation |ntk_sym − baseline|/√(KᵢᵢKⱼⱼ) is reported off and on the diagonal.
2. n = 200 random 8×8×1 images (uniform on [0, 1)): ntk_sym's time, and its ratio to the 38 s
   that neural-tangents took on the issue author's machine (a cross-machine figure).
3. (Run first, so that the peak resident memory is its own.) All 1797 scikit-learn digits
   (8×8×1, /16): the full CNTK-GAP Gram matrix with --full (time
   and the process's peak resident memory, ru_maxrss, an upper bound: interpreter and
   libraries included); without it, a subset of --subset images is timed and the full time is
   extrapolated by the pair count, n(n+1)/2 (the per-pair work dominates: the per-image work,
   O(n), is < 1% at these sizes). tracemalloc's peak (arrays only) is measured on the subset.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc
from functools import partial

import numpy as np

import ntk_sym
from ntk_sym.layers import Conv, Dense, Flatten, GlobalAvgPool, Relu, Silu, Softplus, Tanh

NET = ntk_sym.serial(Conv((3, 3)), Relu(), Conv((3, 3)), Relu(), GlobalAvgPool(), Dense())
NEURAL_TANGENTS_N200_SECONDS = 38.0


def baseline(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of NET by whole arrays (n, n, H, W, H, W): the plain route."""
    K = np.einsum("ahwc,bijc->abhwij", X, X) / X.shape[-1]
    T = None

    def conv(A):
        padded = np.pad(A, [(0, 0), (0, 0), (1, 1), (1, 1), (1, 1), (1, 1)])
        H, W = A.shape[2], A.shape[3]
        return sum(padded[:, :, a:a + H, b:b + W, a:a + H, b:b + W]
                   for a in range(3) for b in range(3)) / 9.0

    def relu(A):
        n, H, W = A.shape[0], A.shape[2], A.shape[3]
        var = np.einsum("aahwhw->ahw", A)
        outer = np.sqrt(np.einsum("ahw,bij->abhwij", var, var))
        cos = np.clip(A / np.where(outer > 0, outer, 1.0), -1.0, 1.0)
        theta = np.arccos(cos)
        J = (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
        del n, H, W
        return outer * J, (np.pi - theta) / (2 * np.pi)

    for _ in range(2):
        K = conv(K)
        T = K + (0.0 if T is None else conv(T))
        K, dot = relu(K)
        T = dot * T
    K, T = K.mean(axis=(2, 3, 4, 5)), T.mean(axis=(2, 3, 4, 5))
    return K, K + T


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def cpu_timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads): on a loaded shared machine the CPU time is
    the steadier measure of the work; wall ≈ CPU / threads when the cores are free."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def deviation(ours: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    d = np.sqrt(np.diag(base))
    rel = np.abs(ours - base) / np.outer(d, d)
    on = float(np.diag(rel).max())
    np.fill_diagonal(rel, 0.0)
    return float(rel.max()), on


def _best(fns: dict, repeats: int) -> dict:
    """Best wall time of each callable over interleaved repetitions (a shared machine)."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn)[0])
    return {k: min(v) for k, v in times.items()}


def _header(threads: int) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, NumPy {np.__version__}, "
          f"Python {platform.python_version()}, threads {threads}, load average "
          f"{os.getloadavg()[0]:.1f}")


def series(repeats: int, threads: int) -> None:
    """The series section of the module docstring."""
    _header(threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8, 8, 1))
    nets = {a.__name__: ntk_sym.serial(Conv(3), a(), Conv(3), a(), GlobalAvgPool(), Dense())
            for a in (Relu, Tanh, Softplus, Silu)}
    for net in nets.values():  # compile: duals, and the series loop (numba, cached on disk)
        net.kernels(X[:3], threads=threads)
    best = _best({k: partial(net.kernels, X, threads=threads) for k, net in nets.items()},
                 repeats)
    print("| network (n = 50, 8×8×1, 2 conv layers, GAP) | wall (best) | ratio to ReLU |")
    print("|---|---|---|")
    for k, t in best.items():
        print(f"| {k} | {t:.2f} s | {t / best['Relu']:.1f}× |")
    small = X[:4]
    t_rule, rule = timed(nets["Tanh"].kernels, small, degree=128, threads=threads)
    t_series, (*ours, bound) = timed(nets["Tanh"].kernels, small, error_bound=True,
                                     threads=threads)
    print(f"tanh on 4 images: 2-D rule (degree=128) {t_rule:.1f} s, series {t_series:.3f} s "
          f"({t_rule / t_series:.0f}×); deviation NNGP {deviation(ours[0], rule[0])[0]:.1e}, "
          f"NTK {deviation(ours[1], rule[1])[0]:.1e}; bound: {bound}")
    *_, bound = nets["Tanh"].kernels(X, error_bound=True, threads=threads)
    print(f"tanh n = 50: {bound}")


def engines(n: int, repeats: int, threads: int) -> None:
    """The engines section of the module docstring."""
    _header(threads)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 32))
    w, b = 1.4, 0.2
    mlp = ntk_sym.serial(*[layer for _ in range(3) for layer in (Dense(w, b), Relu())],
                         Dense(w, b))
    as_images = ntk_sym.serial(*[layer for _ in range(3) for layer in (Conv(1, w, b), Relu())],
                               Flatten(), Dense(w, b))
    images = X[:, None, :]
    vec, img = mlp.kernels(X[:50]), as_images.kernels(images[:50])
    off = max(deviation(a, c)[0] for a, c in zip(img, vec, strict=True))
    best = _best({"MLP engine": partial(mlp.kernels, X, threads=threads),
                  "conv engine, (n, 1, d)": partial(as_images.kernels, images, threads=threads)},
                 repeats)
    print(f"| ReLU depth 3, n = {n}, d = 32 | wall (best of {repeats}) | ratio |")
    print("|---|---|---|")
    base = best["MLP engine"]
    for k, t in best.items():
        print(f"| {k} | {t:.2f} s | {t / base:.1f}× |")
    print(f"deviation conv engine vs MLP engine (n = 50): {off:.1e} relative to √(KᵢᵢKⱼⱼ)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("section", nargs="?", choices=("digits", "series", "engines"),
                        default="digits")
    parser.add_argument("--full", action="store_true", help="all 1797 digits")
    parser.add_argument("--subset", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    if args.section == "series":
        return series(args.repeats, args.threads or os.cpu_count())
    if args.section == "engines":
        return engines(args.n, args.repeats, args.threads or os.cpu_count())
    from sklearn.datasets import load_digits  # the optional extra: only the benchmark needs it

    threads = args.threads or os.cpu_count()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, NumPy {np.__version__}, "
          f"Python {platform.python_version()}, threads {threads}, load average "
          f"{os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    NET.ntk(rng.random((2, 8, 8, 1)))  # compile the dual once

    digits = load_digits().images[:, :, :, None] / 16.0
    n = len(digits) if args.full else min(args.subset, len(digits))
    tracemalloc.start()
    NET.kernels(digits[:min(n, 100)], threads=threads)
    peak_small = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    cpu = time.process_time()
    t, (K, T) = timed(NET.kernels, digits[:n], threads=threads)
    cpu = time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    full_pairs = len(digits) * (len(digits) + 1) / 2
    estimate = t * full_pairs / (n * (n + 1) / 2)
    scale = full_pairs / (n * (n + 1) / 2)
    print(f"digits n = {n}: {t:.1f} s wall ({t / 60:.2f} min), {cpu:.1f} s CPU, peak RSS "
          f"{rss / 2**30:.2f} GiB, tracemalloc peak at n = 100: {peak_small / 2**20:.0f} MiB; "
          f"full 1797 {'measured' if args.full else 'extrapolated'}: {estimate / 60:.1f} min "
          f"wall, {cpu * scale / threads / 60:.1f} min of CPU per thread")
    offdiag = K[~np.eye(n, dtype=bool)]
    print(f"NNGP diagonal mean {np.diag(K).mean():.4f}, off-diagonal mean {offdiag.mean():.4f}; "
          f"NTK diagonal mean {np.diag(T).mean():.4f}")

    X = rng.random((60, 8, 8, 1))
    base_t, ours_t = [], []
    for _ in range(2):
        t, base = timed(baseline, X)
        base_t.append(t)
        t, ours = timed(NET.kernels, X, threads=threads)
        ours_t.append(t)
    off, on = deviation(ours[1], base[1])
    print(f"| n = 60 random | {min(base_t):.2f} | {min(ours_t):.2f} | "
          f"{min(base_t) / min(ours_t):.1f}x | {off:.1e} | {on:.1e} |")

    X = rng.random((200, 8, 8, 1))
    for dtype in (np.float64, np.float32):
        wall, cpu = min(cpu_timed(NET.kernels, X, threads=threads, dtype=dtype)
                        for _ in range(2))
        print(f"n = 200 random, {np.dtype(dtype).name}: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"({cpu / threads:.1f} s per thread); neural-tangents 38 s on the issue author's "
              f"machine (cross-machine): ratio {NEURAL_TANGENTS_N200_SECONDS / wall:.1f}x wall, "
              f"{NEURAL_TANGENTS_N200_SECONDS * threads / cpu:.1f}x per-thread CPU")


if __name__ == "__main__":
    main()
