"""Time and memory of the convolutional NTK (CNTK) engine.

Usage:  python benchmarks/bench_conv.py [--full] [--subset N] [--threads T]

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

import numpy as np

import ntk_sym
from ntk_sym.layers import Conv, Dense, GlobalAvgPool, Relu

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="all 1797 digits")
    parser.add_argument("--subset", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
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
