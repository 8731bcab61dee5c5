"""The Hermite series dual: accuracy against the mpmath reference, speed against ReLU and the
2-D rule.

    python benchmarks/bench_series.py accuracy     # ~1 h of CPU at 25 digits (2 processes)
    python benchmarks/bench_series.py speed        # a few minutes
    python benchmarks/bench_series.py speed --quick

Accuracy: depth 3, σ_w = 1.4, σ_b = 0.2, default settings, on six inputs in d = 5: two random
points x₀, x₁, an exact duplicate of x₀, x₀ + 1e-6·noise, −x₁ and 3x₁ (first-layer variance
≈ 7 against ≈ 1). The reference is the package's backend="mpmath" (the plain recursion with
nested mpmath Gauss–Legendre integration split at u = 0 and v = 0, `dps` digits), which never
uses Hermite coefficients. It is run pair by pair (each call on the two points of one pair, which
is what the plain recursion does anyway) in a process pool; duplicate rows are copied. Reported:
max |K − K_ref|/√(K_ref,ii K_ref,jj) over all entries, for NNGP and NTK, and the bound the
package reports (``error_bound=True``).

Speed: medians over interleaved repetitions in one process (the machine is shared); see
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import mpmath as mp
import numpy as np

import ntk_sym
from ntk_sym.symbolic.reference import kernels_mpmath

ACTIVATIONS = ("tanh", "softplus", "silu", "sigmoid", "elu")
DEPTH, W_STD, B_STD = 3, 1.4, 0.2


def accuracy_inputs(d: int = 5, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """The six inputs of the module docstring, and for each row the row it duplicates."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=(2, d))
    X = np.stack([x0, x1, x0, x0 + 1e-6 * rng.normal(size=d), -x1, 3 * x1])
    return X, [0, 1, 0, 3, 4, 5]


def _reference_pair(args: tuple) -> tuple:
    name, i, j, X, dps = args
    net = ntk_sym.mlp(name, depth=DEPTH, w_std=W_STD, b_std=B_STD)
    A = X[[i]] if i == j else X[[i, j]]
    nngp, ntk = kernels_mpmath(net.layers, A, None, dps)
    k = 0 if i == j else 1
    return name, i, j, mp.nstr(nngp[0, k], dps), mp.nstr(ntk[0, k], dps)


def accuracy(dps: int = 25, workers: int = 2) -> None:
    cache = f"bench_series_reference_{dps}.json"
    X, source = accuracy_inputs()
    distinct = sorted(set(source))
    done = {}
    if os.path.exists(cache):
        with open(cache) as fh:
            done = {tuple(k.split(",")): v for k, v in json.load(fh).items()}
    jobs = [
        (name, i, j, X, dps)
        for name in ACTIVATIONS
        for a, i in enumerate(distinct)
        for j in distinct[a:]
        if (name, str(i), str(j)) not in done
    ]
    print(f"{len(jobs)} reference pairs to compute at {dps} digits", flush=True)
    with ProcessPoolExecutor(workers) as pool:
        for name, i, j, k1, k2 in pool.map(_reference_pair, jobs):
            done[(name, str(i), str(j))] = (k1, k2)
            with open(cache, "w") as fh:
                json.dump({",".join(k): v for k, v in done.items()}, fh)
    print(
        "| φ | NNGP error | NTK error | reported bound (NNGP, NTK) | pair-layers by the 2-D rule |"
    )
    print("|---|---|---|---|---|")
    for name in ACTIVATIONS:
        refs = []
        for which in (0, 1):
            R = np.empty((len(X), len(X)))
            for a in range(len(X)):
                for b in range(len(X)):
                    i, j = sorted((source[a], source[b]))
                    R[a, b] = float(done[(name, str(i), str(j))][which])
            refs.append(R)
        net = ntk_sym.mlp(name, depth=DEPTH, w_std=W_STD, b_std=B_STD)
        nngp, ntk, bound = net.kernels(X, error_bound=True)
        errors = [normalised_error(K, R) for K, R in zip((nngp, ntk), refs, strict=True)]
        print(
            f"| {name} | {errors[0]:.1e} | {errors[1]:.1e} | {bound.nngp:.1e}, {bound.ntk:.1e} "
            f"| {bound.quadrature_pairs} |"
        )


def normalised_error(K: np.ndarray, R: np.ndarray) -> float:
    scale = np.sqrt(np.outer(np.diag(R), np.diag(R)))
    return float(np.max(np.abs(K - R) / scale))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict, repeats: int) -> dict:
    """Median time of each callable, run in turns (a, b, a, b, ...)."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def speed(quick: bool = False) -> None:
    rng = np.random.default_rng(1)
    print(
        f"machine: {os.cpu_count()} cores, NumPy {np.__version__}, Python {sys.version.split()[0]}"
    )
    # 1. tanh NTK against ReLU NTK, n = 4000, d = 100, depth 5, σ_w = 1.5, σ_b = 0.1
    n = 1000 if quick else 4000
    X = rng.normal(size=(n, 100))
    tanh5 = ntk_sym.mlp("tanh", depth=5, w_std=1.5, b_std=0.1)
    relu5 = ntk_sym.mlp("relu", depth=5, w_std=1.5, b_std=0.1)
    for net in (tanh5, relu5):
        net.ntk(X[:50])  # compile outside the timing
    t = interleaved({"relu": lambda: relu5.ntk(X), "tanh": lambda: tanh5.ntk(X)}, 3)
    print(
        f"tanh/ReLU NTK n={n}: relu {t['relu']:.2f} s, tanh {t['tanh']:.2f} s, "
        f"ratio {t['tanh'] / t['relu']:.1f}"
    )
    # 2. against the 2-D rule, tanh depth 3, σ_w = 1.5, σ_b = 0.1, d = 20
    tanh3 = ntk_sym.mlp("tanh", depth=3, w_std=1.5, b_std=0.1)
    X20 = rng.normal(size=(200, 20))
    small = 20 if quick else 40
    tanh3.ntk(X20[:5])
    tanh3.ntk(X20[:5], degree=128)
    t = interleaved(
        {
            "old": lambda: tanh3.ntk(X20[:small], degree=128),
            "new": lambda: tanh3.ntk(X20),
        },
        3,
    )
    pairs_small, pairs_full = small * (small + 1) / 2, 200 * 201 / 2
    old_full = t["old"] * pairs_full / pairs_small
    print(
        f"2-D rule n={small}: {t['old']:.2f} s -> n=200 scaled by pairs {old_full:.1f} s; "
        f"series n=200: {t['new']:.3f} s; speed-up {old_full / t['new']:.0f}x"
    )
    # 3. growth with n and with tol
    for m in (500, 1000, 2000) if not quick else (250, 500):
        tm = interleaved({"t": lambda m=m: tanh5.ntk(X[:m])}, 3)["t"]
        print(f"tanh depth 5 n={m}: {tm:.2f} s")
    for tol in (1e-6, 1e-10, 1e-14):
        tt = interleaved({"t": lambda tol=tol: tanh5.ntk(X[:1000], tol=tol)}, 3)["t"]
        _, _, bound = tanh5.kernels(X[:300], tol=tol, error_bound=True)
        print(f"tanh depth 5 n=1000 tol={tol:.0e}: {tt:.2f} s, reported bound NTK {bound.ntk:.1e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("accuracy", "speed"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dps", type=int, default=25)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    if options.what == "accuracy":
        accuracy(options.dps, options.workers)
    else:
        speed(options.quick)
