"""First-compile and run times of compiled kernels, this tree against another checkout.

Usage:  python benchmarks/bench_printing.py [--against TREE] [--rounds R] [--n N]

Each measurement runs in a fresh process with a fresh numba cache directory (``NTK_SYM_CACHE``),
twice: the first process compiles the fused loop (cold), the second reads numba's disk cache
(warm), as a user's first and later sessions do. A process times

* import: ``import ntk_sym``;
* first call: ``net.kernels(X)`` on 8 inputs for a ReLU and an erf network (depth 5, σ_w = 1.5,
  σ_b = 0.1, d = 100), i.e. deriving, printing and compiling every map of the network;
* run: the median of 3 ``net.kernels(X)`` at n = N (default 1500) once compiled;
* fused loop: the median of 50 calls of the ReLU angle form's fused loop on one 192² tile, in
  ns per pair.

With ``--against TREE`` (a checkout of another version of the package, e.g. ``git archive`` of
main), the two trees' processes alternate for R rounds and the table gives each figure's median
over the rounds: the machine is shared, so only side-by-side runs compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_MEASURE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import numpy as np
import ntk_sym
from ntk_sym.compile import compile_dual
from ntk_sym.layers import Dense, Erf, Relu, serial
from ntk_sym.symbolic.activations import get
out = {"import": time.perf_counter() - t0}
n = int(sys.argv[1])
rng = np.random.default_rng(0)
small, big = rng.standard_normal((8, 100)), rng.standard_normal((n, 100))
for name, phi in (("relu", Relu), ("erf", Erf)):
    layers = [Dense(1.5, 0.1)]
    for _ in range(5):
        layers += [phi(), Dense(1.5, 0.1)]
    net = serial(*layers)
    t = time.perf_counter()
    net.kernels(small)
    out[f"first {name}"] = time.perf_counter() - t
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        net.kernels(big)
        runs.append(time.perf_counter() - t)
    out[f"run {name}"] = sorted(runs)[1]
fused = compile_dual(get("relu")).angle_form.fused
th = rng.uniform(0.1, 3.0, (192, 192))
cos, sin = np.cos(th), np.sin(th)
vec = rng.uniform(0.5, 2.0, 192)
outs = [np.empty((192, 192)) for _ in range(4)]
calls = []
for _ in range(50):
    t = time.perf_counter()
    fused(th, cos, sin, cos, vec, vec, vec, vec, vec, vec, 0.01, 2.25, False, 1e-6, *outs)
    calls.append(time.perf_counter() - t)
out["fused ns/pair"] = statistics.median(calls) / 192**2 * 1e9
print(json.dumps(out))
"""


def measure(tree: str, n: int) -> dict[str, float]:
    """Cold and warm processes of `tree`'s package with a new numba cache directory."""
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": tree, "NTK_SYM_CACHE": cache}
        for label in ("cold", "warm"):
            run = subprocess.run(
                [sys.executable, "-c", _MEASURE, str(n)],
                env=env, capture_output=True, text=True, check=True, cwd=tree,
            )
            for key, value in json.loads(run.stdout).items():
                result[f"{key} ({label})"] = value
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another checkout of the package to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1500)
    args = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this tree": here}
    if args.against:
        trees["against"] = os.path.abspath(args.against)
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for _ in range(args.rounds):
        for label, tree in trees.items():
            rounds[label].append(measure(tree, args.n))
    keys = list(rounds["this tree"][0])
    print(f"| measure (n = {args.n}, medians of {args.rounds}) | " + " | ".join(trees) + " |")
    print("|---" * (len(trees) + 1) + "|")
    for key in keys:
        cells = [f"{statistics.median(r[key] for r in rounds[t]):.3g}" for t in trees]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
