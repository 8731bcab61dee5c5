"""Finite networks: the per-layer empirical NTK against the explicit Jacobian product, the
layer-walking network against a hand-written MLP loop, and one gradient-descent step, for an
MLP, residual and LayerNorm networks, and CNNs (GlobalAvgPool and Flatten readouts).

Run: python benchmarks/bench_finite.py  (prints tables; nothing is asserted). Times are best of
3 (the explicit product and the GD steps: 1); the walker/hand-loop comparison alternates the
two 15 times and reports medians, so its ratio is meaningful on a shared machine while absolute
times are not.
"""

import time

import numpy as np

import ntk_sym
from ntk_sym.finite import gradient_descent, init
from ntk_sym.finite.layers import FiniteDense, FiniteElementwise, FiniteLayerNorm, FiniteResidual
from ntk_sym.layers import Conv, Dense, Flatten, GlobalAvgPool, Relu
from ntk_sym.symbolic.activations import get

STEPS = 10
RELU = FiniteElementwise.of(get("relu"))
ERF = FiniteElementwise.of(get("erf"))
NETS = {
    "mlp relu depth 3": ntk_sym.mlp("relu", depth=3, w_std=1.5, b_std=0.1),
    "residual": (
        FiniteDense(1.5, 0.1),
        RELU,
        FiniteResidual((FiniteDense(1.0, 0.1), ERF, FiniteDense(0.8, 0.1))),
        FiniteDense(1.2, 0.1),
    ),
    "layernorm": (
        FiniteDense(1.5, 0.1),
        RELU,
        FiniteLayerNorm(),
        FiniteDense(1.4, 0.1),
        ERF,
        FiniteDense(1.2, 0.1),
    ),
}
CNNS = {
    "cnn gap": ntk_sym.serial(Conv(3), Relu(), Conv(3), Relu(), GlobalAvgPool(), Dense()),
    "cnn flatten": ntk_sym.serial(Conv(3), Relu(), Conv(3), Relu(), Flatten(), Dense()),
}


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


def hand_mlp_ntk(fnet, x):
    """The MLP's Θ̂ written as one loop (the pre-refactor implementation's arithmetic)."""
    dense = fnet.layers[0]
    acts, pres = [x[None]], []
    for k, (w, b) in enumerate(zip(fnet.weights, fnet.biases, strict=True)):
        c = dense.w_std / np.sqrt(w.shape[-1])
        h = c * (acts[-1] @ w.transpose(0, 2, 1)) + dense.b_std * b[:, None, :]
        pres.append(h)
        if k < len(fnet.weights) - 1:
            acts.append(np.maximum(h, 0.0))
    deltas = [np.ones_like(pres[-1])]
    for k in range(len(fnet.weights) - 1, 0, -1):
        back = dense.w_std / np.sqrt(fnet.weights[k].shape[-1]) * (deltas[0] @ fnet.weights[k])
        deltas.insert(0, (pres[k - 1] > 0) * back)
    theta = 0.0
    for k, w in enumerate(fnet.weights):
        c2 = dense.w_std**2 / w.shape[-1]
        gram_d = deltas[k] @ deltas[k].transpose(0, 2, 1)
        theta = theta + gram_d * (c2 * acts[k] @ acts[k].transpose(0, 2, 1) + dense.b_std**2)
    return theta[0]


def main() -> None:
    x = np.random.default_rng(0).standard_normal((32, 8))
    y = np.sin(x[:, 0])
    header = ("network", "width", "factorised", "explicit J Jᵀ", "ratio", "max |diff|", "GD step")
    print("{:>17} {:>6} {:>11} {:>14} {:>7} {:>11} {:>9}".format(*header))
    for name, net in NETS.items():
        for width in (128, 512, 1024):
            fnet = init(net, width, seed=0)
            fast = best_of(lambda fnet=fnet: fnet.empirical_ntk(x))
            slow = best_of(lambda fnet=fnet: explicit_ntk(fnet, x), repeat=1)
            diff = np.max(np.abs(fnet.empirical_ntk(x) - explicit_ntk(fnet, x)))
            step = best_of(
                lambda fnet=fnet: gradient_descent(fnet, x, y, lr=0.01, steps=STEPS), repeat=1
            )
            print(
                f"{name:>17} {width:>6} {fast:>10.4f}s {slow:>13.4f}s {slow / fast:>6.0f}x "
                f"{diff:>11.2e} {step / STEPS:>8.4f}s"
            )
    images = np.random.default_rng(1).standard_normal((16, 8, 8, 1))
    labels = np.sin(images.sum(axis=(1, 2, 3)))
    print("\nCNNs on 16 images 8 × 8 × 1 (per-image gradient Gram against J Jᵀ from 16 vjps)")
    print("{:>17} {:>6} {:>11} {:>14} {:>7} {:>11} {:>9}".format(*header))
    for name, net in CNNS.items():
        for width in (16, 64):
            fnet = init(net, width, seed=0)
            fast = best_of(lambda fnet=fnet: fnet.empirical_ntk(images))
            slow = best_of(lambda fnet=fnet: explicit_ntk(fnet, images), repeat=1)
            diff = np.max(np.abs(fnet.empirical_ntk(images) - explicit_ntk(fnet, images)))
            step = best_of(lambda fnet=fnet: gradient_descent(fnet, images, labels, lr=0.01,
                                                              steps=STEPS), repeat=1)
            print(
                f"{name:>17} {width:>6} {fast:>10.4f}s {slow:>13.4f}s {slow / fast:>6.0f}x "
                f"{diff:>11.2e} {step / STEPS:>8.4f}s"
            )
    print("\nMLP: layer-walking network against a hand-written loop (same arithmetic),")
    print("medians of 15 alternating runs")
    columns = ("width", "walker", "hand loop", "ratio", "diff")
    print("{:>6} {:>12} {:>12} {:>7} {:>11}".format(*columns))
    for width in (512, 2048):
        fnet = init(NETS["mlp relu depth 3"], width, seed=0)
        walker, hand = [], []
        for _ in range(15):
            walker.append(best_of(lambda fnet=fnet: fnet.empirical_ntk(x), repeat=1))
            hand.append(best_of(lambda fnet=fnet: hand_mlp_ntk(fnet, x), repeat=1))
        diff = np.max(np.abs(fnet.empirical_ntk(x) - hand_mlp_ntk(fnet, x)))
        w, h = np.median(walker), np.median(hand)
        print(f"{width:>6} {w:>11.4f}s {h:>11.4f}s {w / h:>6.2f}x {diff:>11.2e}")

if __name__ == "__main__":
    main()
