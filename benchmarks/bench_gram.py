"""Time and memory of ntk_sym's Gram engine against the plain NumPy recursion (baseline.py).

Usage:  python benchmarks/bench_gram.py [--quick] [--repeats R] [--no-big]

For ReLU and erf NTKs (depth 5, σ_w = 1.5, σ_b = 0.1, d = 100, X ~ N(0, 1)) and each n, the
baseline, ``net.ntk(X)`` (the NTK alone, as a user asks for it) and ``net.kernels(X)`` (both
kernels) run interleaved in this one process, R times each; the table reports the median time
of each, the median of the per-round speed-ups (baseline time / ntk_sym time of the same round:
the machine is shared, so only ratios measured side by side mean anything), peak memory and
the largest deviation between the two results. A second table times layer networks (residual,
LayerNorm, mixed activations) against the MLP of the same depth, and checks that ``mlp(...)``
and the equal ``serial(...)`` run at the same speed.

Peak memory is measured with tracemalloc (NumPy reports its array buffers to it), in a separate
call after the timed ones so that tracing does not slow the timings; it counts the arrays a call
allocates, output included, and not the interpreter. "output" is the size of the returned
(NNGP, NTK) pair. Deviations are |ntk_sym − baseline| / √(Kᵢᵢ Kⱼⱼ), off the diagonal and on it
(the baseline's arccos of a rounded cosine errs by ~1e-8 on the diagonal; see
tests/test_kernels_accuracy.py). Unless --no-big, a last run computes n = 20000 with ntk_sym
alone (the baseline's ~10 output-sized temporaries do not fit in memory): ``net.ntk(X)``,
``net.nngp(X)``, both kernels, and both into memmaps, each in a fresh subprocess with its traced
peak and its peak resident memory (VmHWM) against the process's size before the call (VmRSS).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline  # noqa: E402

import ntk_sym  # noqa: E402
from ntk_sym.layers import Dense, Erf, LayerNorm, Relu, Residual, serial  # noqa: E402

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


def compare(activation: str, n: int, repeats: int, rng: np.random.Generator) -> dict:
    X = rng.normal(size=(n, D))
    net = ntk_sym.mlp(activation, depth=DEPTH, w_std=W_STD, b_std=B_STD)
    net.kernels(X[:8])  # compile outside the timings
    t_base, t_ntk, t_both = [], [], []
    for _ in range(repeats):  # interleaved, so that load on the machine hits all alike
        t, base = timed(baseline.ntk, X, activation, DEPTH, W_STD, B_STD)
        t_base.append(t)
        del base
        t, mine = timed(net.ntk, X)
        t_ntk.append(t)
        del mine
        t, mine = timed(net.kernels, X)
        t_both.append(t)
        del mine
    base = baseline.ntk(X, activation, DEPTH, W_STD, B_STD)
    mine = net.kernels(X)
    off_nngp, diag_nngp = deviations(mine[0], base[0])
    off_ntk, diag_ntk = deviations(mine[1], base[1])
    del base, mine
    b, o, k = (np.array(t) for t in (t_base, t_ntk, t_both))
    return {
        "baseline_s": float(np.median(b)),
        "ntk_s": float(np.median(o)),
        "both_s": float(np.median(k)),
        "ratio_ntk": float(np.median(b / o)),
        "ratio_ntk_range": (float((b / o).min()), float((b / o).max())),
        "ratio_both": float(np.median(b / k)),
        "baseline_peak": peak_bytes(baseline.ntk, X, activation, DEPTH, W_STD, B_STD),
        "ntk_peak": peak_bytes(net.ntk, X),
        "output": n * n * 8,
        "dev_off": max(off_nngp, off_ntk),
        "dev_diag": max(diag_nngp, diag_ntk),
    }


def variants(n: int, repeats: int, rng: np.random.Generator) -> list[tuple[str, float, str]]:
    """ReLU NTK at n with other engine options: threads, tile, float32 (time, accuracy)."""
    X = rng.normal(size=(n, D))
    net = ntk_sym.mlp("relu", depth=DEPTH, w_std=W_STD, b_std=B_STD)
    ref = net.ntk(X)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    rows = []
    for label, options in [
        ("default (all cores, tile 192)", {}),
        ("threads=1", {"threads": 1}),
        ("tile=128", {"tile": 128}),
        ("tile=256", {"tile": 256}),
        ("tile=512", {"tile": 512}),
        ("dtype=float32", {"dtype": np.float32}),
    ]:
        times = [timed(net.ntk, X, **options)[0] for _ in range(repeats)]
        T = net.ntk(X, **options)
        err = float((np.abs(T - ref) / scale).max())
        rows.append((label, float(np.median(times)), f"{err:.1e}" if err else "0 (identical)"))
    return rows


def layer_networks() -> dict:
    """Layer networks of five hidden layers at d = 100, timed against the ReLU MLP of that depth."""
    w, b = W_STD, B_STD
    return {
        "mlp('relu', 5)": ntk_sym.mlp("relu", depth=DEPTH, w_std=w, b_std=b),
        "serial(Dense, Relu, …, Dense), the same": serial(
            *([Dense(w, b), Relu()] * DEPTH), Dense(w, b)
        ),
        "residual: Dense, Relu, Dense, Relu, 2 × Residual(Dense, Relu, Dense), Dense": serial(
            Dense(w, b),
            Relu(),
            Dense(w, b),
            Relu(),
            Residual(Dense(1.0, b), Relu(), Dense(1.0, b)),
            Residual(Dense(1.0, b), Relu(), Dense(1.0, b)),
            Dense(w, b),
        ),
        "LayerNorm after every Dense": serial(
            *([Dense(w, b), LayerNorm(), Relu()] * DEPTH), Dense(w, b)
        ),
        "mixed: relu, relu, relu, relu, erf": serial(
            *([Dense(w, b), Relu()] * (DEPTH - 1)), Dense(w, b), Erf(), Dense(w, b)
        ),
    }


def layers_table(n: int, repeats: int, rng: np.random.Generator) -> list[tuple[str, float, float]]:
    """(name, median NTK time, median ratio to the MLP of the same round)."""
    X = rng.normal(size=(n, D))
    nets = layer_networks()
    for net in nets.values():
        net.ntk(X[:8])
    times = {name: [] for name in nets}
    for _ in range(repeats):
        for name, net in nets.items():
            times[name].append(timed(net.ntk, X)[0])
    mlp_times = np.array(times["mlp('relu', 5)"])
    return [
        (name, float(np.median(t)), float(np.median(np.array(t) / mlp_times)))
        for name, t in times.items()
    ]


BIG_CASES = {
    "NTK only, net.ntk(X)": ("ntk", 1),
    "NNGP only, net.nngp(X)": ("nngp", 1),
    "(NNGP, NTK), net.kernels(X)": ("kernels", 2),
    "(NNGP, NTK) into .npy memmaps": ("memmap", 2),
}


def big_case(kind: str, n: int, tmp: str) -> tuple[float, int]:
    """Run one n = `n` case in this process: (seconds, traced peak bytes)."""
    X = np.random.default_rng(1).normal(size=(n, D))
    net = ntk_sym.mlp("relu", depth=DEPTH, w_std=W_STD, b_std=B_STD)
    net.ntk(X[:8])
    tracemalloc.start()
    start = time.perf_counter()
    if kind == "memmap":
        out = tuple(
            np.lib.format.open_memmap(
                os.path.join(tmp, f"{k}.npy"), mode="w+", dtype=np.float64, shape=(n, n)
            )
            for k in ("nngp", "ntk")
        )
        result = net.kernels(X, out=out)
    else:
        result = getattr(net, kind)(X)
    seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return seconds, peak


def rss_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process in KiB, from /proc/self/status (Linux). Not
    ru_maxrss, which a child inherits from its parent across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def big(n: int) -> list[tuple[str, float, float, float, float, float]]:
    """Each case in a fresh subprocess: (label, seconds, traced peak, peak RSS, RSS before the
    call, output bytes). Tracing runs in the subprocess too, so the times include its cost."""
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for label, (kind, count) in BIG_CASES.items():
            code = (
                "import sys; sys.path.insert(0, sys.argv[1]); import bench_gram as b; "
                "before = b.rss_kib('VmRSS'); "
                "t, p = b.big_case(sys.argv[2], int(sys.argv[3]), sys.argv[4]); "
                "print(t, p, b.rss_kib('VmHWM'), before)"
            )
            here = os.path.dirname(os.path.abspath(__file__))
            done = subprocess.run(
                [sys.executable, "-c", code, here, kind, str(n), tmp],
                capture_output=True,
                text=True,
                check=True,
            )
            t, peak, rss, before = done.stdout.split()
            rows.append(
                (
                    label,
                    float(t),
                    float(peak),
                    float(rss) * 1024,
                    float(before) * 1024,
                    count * n * n * 8.0,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n only (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds of each")
    parser.add_argument("--no-big", action="store_true", help="skip the n = 20000 run")
    parser.add_argument("--sizes", type=int, nargs="+", help="n of the first table")
    args = parser.parse_args()
    sizes = args.sizes or ([300, 1000] if args.quick else [1000, 4000, 10000])
    repeats = args.repeats or (3 if args.quick else 5)
    rng = np.random.default_rng(0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"NumPy {np.__version__}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"depth {DEPTH}, σ_w {W_STD}, σ_b {B_STD}, d {D}, float64, medians of {repeats}\n")
    print(
        "| φ | n | plain NumPy (s) | net.ntk (s) | speed-up (median, range) | net.kernels (s) "
        "| speed-up | peak plain | peak net.ntk | NTK size | max dev off-diag | max dev diag |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    gib = 2.0**30
    for activation in ("relu", "erf"):
        for n in sizes:
            r = compare(activation, n, repeats if n < 10000 else min(repeats, 3), rng)
            lo, hi = r["ratio_ntk_range"]
            print(
                f"| {activation} | {n} | {r['baseline_s']:.2f} | {r['ntk_s']:.2f} | "
                f"{r['ratio_ntk']:.1f}× ({lo:.1f}–{hi:.1f}) | {r['both_s']:.2f} | "
                f"{r['ratio_both']:.1f}× | {r['baseline_peak'] / gib:.2f} GiB | "
                f"{r['ntk_peak'] / gib:.2f} GiB | {r['output'] / gib:.2f} GiB | "
                f"{r['dev_off']:.1e} | {r['dev_diag']:.1e} |",
                flush=True,
            )
    n_var = 1000 if args.quick else 4000
    print(f"\nReLU NTK, n = {n_var}: engine options (max error vs the float64 default)\n")
    print("| option | time (s) | max error |\n|---|---|---|")
    for label, t, err in variants(n_var, repeats, rng):
        print(f"| {label} | {t:.2f} | {err} |", flush=True)
    print(f"\nLayer networks, NTK at n = {n_var}, d = {D} (ratio: time / the MLP's, same round)\n")
    print("| network | time (s) | × MLP |\n|---|---|---|")
    for label, t, ratio in layers_table(n_var, repeats, rng):
        print(f"| {label} | {t:.2f} | {ratio:.2f} |", flush=True)
    if not args.no_big:
        n_big = 2000 if args.quick else 20000
        print(f"\nReLU, n = {n_big}, ntk_sym only, each case in a fresh process\n")
        print(
            "| what is kept | time (s) | traced peak | peak RSS | RSS before | output "
            "| traced / output | (peak RSS − before) / output |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for label, t, peak, rss, before, output in big(n_big):
            print(
                f"| {label} | {t:.1f} | {peak / gib:.2f} GiB | {rss / gib:.2f} GiB | "
                f"{before / gib:.2f} GiB | {output / gib:.2f} GiB | {peak / output:.3f} | "
                f"{(rss - before) / output:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
