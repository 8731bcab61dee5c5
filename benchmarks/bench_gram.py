"""Time and memory of ntk_sym's Gram engine against the plain NumPy recursion (baseline.py).

Usage:  python benchmarks/bench_gram.py [--quick] [--repeats R] [--no-big]

For ReLU and erf NTKs (depth 5, σ_w = 1.5, σ_b = 0.1, d = 100, X ~ N(0, 1)) and each n, the two
implementations run alternately in this one process, R times each; the table reports the best
time of each, the speed-up, peak memory and the largest deviation between the two results.

Peak memory is measured with tracemalloc (NumPy reports its array buffers to it), in a separate
call after the timed ones so that tracing does not slow the timings; it counts the arrays a call
allocates, output included, and not the interpreter. "output" is the size of the returned
(NNGP, NTK) pair. Deviations are |ntk_sym − baseline| / √(Kᵢᵢ Kⱼⱼ), off the diagonal and on it
(the baseline's arccos of a rounded cosine errs by ~1e-8 on the diagonal; see
tests/test_kernels_accuracy.py). Unless --no-big, a last run computes n = 20000 with ntk_sym
alone (the baseline's ~10 output-sized temporaries do not fit in memory) and into memmaps.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline  # noqa: E402

import ntk_sym  # noqa: E402

DEPTH, W_STD, B_STD, D = 5, 1.5, 0.1, 100


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def peak_bytes(fn, *args, **kwargs) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def deviations(ours: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    """(max off-diagonal, max diagonal) of |ours − base| / √(Kᵢᵢ Kⱼⱼ)."""
    d = np.sqrt(np.abs(np.diag(base)))
    rel = np.abs(ours - base)
    rel /= np.outer(d, d)
    diag = float(np.diag(rel).max())
    np.fill_diagonal(rel, 0.0)
    return float(rel.max()), diag


def ours(net, X, **options):
    return net.kernels(X, **options)


def compare(activation: str, n: int, repeats: int, rng: np.random.Generator) -> dict:
    X = rng.normal(size=(n, D))
    net = ntk_sym.mlp(activation, depth=DEPTH, w_std=W_STD, b_std=B_STD)
    ours(net, X[:8])  # compile the dual maps outside the timings
    t_ours, t_base = [], []
    for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
        t, base = timed(baseline.ntk, X, activation, DEPTH, W_STD, B_STD)
        t_base.append(t)
        del base
        t, mine = timed(ours, net, X)
        t_ours.append(t)
        del mine
    base = baseline.ntk(X, activation, DEPTH, W_STD, B_STD)
    mine = ours(net, X)
    off_nngp, diag_nngp = deviations(mine[0], base[0])
    off_ntk, diag_ntk = deviations(mine[1], base[1])
    del base, mine
    return {
        "activation": activation,
        "n": n,
        "baseline_s": min(t_base),
        "ntk_sym_s": min(t_ours),
        "baseline_peak": peak_bytes(baseline.ntk, X, activation, DEPTH, W_STD, B_STD),
        "ntk_sym_peak": peak_bytes(ours, net, X),
        "output": 2 * n * n * 8,
        "dev_off": max(off_nngp, off_ntk),
        "dev_diag": max(diag_nngp, diag_ntk),
    }


def variants(n: int, repeats: int, rng: np.random.Generator) -> list[tuple[str, float, str]]:
    """ReLU NTK at n with other engine options: threads, tile, float32 (time, accuracy)."""
    X = rng.normal(size=(n, D))
    net = ntk_sym.mlp("relu", depth=DEPTH, w_std=W_STD, b_std=B_STD)
    ref = ours(net, X)[1]
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    rows = []
    for label, options in [
        ("default (2 threads, tile 256)", {}),
        ("threads=1", {"threads": 1}),
        ("tile=128", {"tile": 128}),
        ("tile=512", {"tile": 512}),
        ("dtype=float32", {"dtype": np.float32}),
    ]:
        best = min(timed(ours, net, X, **options)[0] for _ in range(repeats))
        T = ours(net, X, **options)[1]
        err = float((np.abs(T - ref) / scale).max())
        rows.append((label, best, f"{err:.1e}" if err else "0 (identical)"))
    return rows


def big(n: int, rng: np.random.Generator) -> list[tuple[str, float, float, float]]:
    """ntk_sym alone at n: (label, seconds, traced peak, output bytes) for both kernels in
    memory, the NTK alone in memory, and both into .npy memmaps on disk."""
    X = rng.normal(size=(n, D))
    net = ntk_sym.mlp("relu", depth=DEPTH, w_std=W_STD, b_std=B_STD)
    matrix = n * n * 8
    rows = []

    def measure(label, output, make_out=lambda: None):
        tracemalloc.start()
        start = time.perf_counter()
        result = ours(net, X, out=make_out())  # the output arrays are allocated while traced
        seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append((label, seconds, peak, output))
        del result

    measure("(NNGP, NTK) in memory", 2 * matrix)
    measure("NTK only, out=(None, array)", matrix, lambda: (None, np.empty((n, n))))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        paths = [os.path.join(tmp, f"{name}.npy") for name in ("nngp", "ntk")]
        measure(
            "(NNGP, NTK) into .npy memmaps",
            2 * matrix,
            lambda: tuple(
                np.lib.format.open_memmap(p, mode="w+", dtype=np.float64, shape=(n, n))
                for p in paths
            ),
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n only (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each")
    parser.add_argument("--no-big", action="store_true", help="skip the n = 20000 run")
    args = parser.parse_args()
    sizes = [300, 1000] if args.quick else [1000, 4000, 10000]
    repeats = args.repeats or (2 if args.quick else 3)
    rng = np.random.default_rng(0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"NumPy {np.__version__}, Python {platform.python_version()}"
    )
    print(f"depth {DEPTH}, σ_w {W_STD}, σ_b {B_STD}, d {D}, float64, best of {repeats}\n")
    print(
        "| φ | n | plain NumPy (s) | ntk_sym (s) | speed-up | peak plain | peak ntk_sym "
        "| output | max dev off-diag | max dev diag |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    gib = 2.0**30
    for activation in ("relu", "erf"):
        for n in sizes:
            r = compare(activation, n, repeats if n < 10000 else min(repeats, 2), rng)
            print(
                f"| {activation} | {n} | {r['baseline_s']:.2f} | {r['ntk_sym_s']:.2f} | "
                f"{r['baseline_s'] / r['ntk_sym_s']:.1f}× | {r['baseline_peak'] / gib:.2f} GiB | "
                f"{r['ntk_sym_peak'] / gib:.2f} GiB | {r['output'] / gib:.2f} GiB | "
                f"{r['dev_off']:.1e} | {r['dev_diag']:.1e} |",
                flush=True,
            )
    n_var = 1000 if args.quick else 4000
    print(f"\nReLU NTK, n = {n_var}: engine options (max error vs the float64 default)\n")
    print("| option | time (s) | max error |\n|---|---|---|")
    for label, t, err in variants(n_var, repeats, rng):
        print(f"| {label} | {t:.2f} | {err} |", flush=True)
    if not args.no_big:
        n_big = 2000 if args.quick else 20000
        print(f"\nReLU NTK, n = {n_big}, ntk_sym only\n")
        print("| what is kept | time (s) | traced peak | output | peak / output |")
        print("|---|---|---|---|---|")
        for label, t, peak, output in big(n_big, rng):
            print(
                f"| {label} | {t:.1f} | {peak / gib:.2f} GiB | {output / gib:.2f} GiB | "
                f"{peak / output:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
