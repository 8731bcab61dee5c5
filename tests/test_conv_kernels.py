"""Convolutional NNGP/NTK: the engine against a direct mpmath evaluation of the conventions.

The reference (`conv_reference.py`) keeps every image pair and pixel pair at once at 30 digits
and applies each layer by explicit index lists, so it shares no code with the engine (tiles,
shifted slices, gaps). Tolerance 1e-12 relative to √(Kᵢᵢ Kⱼⱼ): the engine's float64 rounding is
~1e-15 per layer (measured: ≤ 2e-15 on these cases); the naive arccos route, which loses
~1e-8 at identical receptive fields, fails it (`test_naive_angles_fail_at_identical_fields`).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_entry_error
from conv_reference import reference_kernels

import ntk_sym
from ntk_sym.errors import InputError, NTKSymError
from ntk_sym.layers import AvgPool, Conv, Dense, Erf, Flatten, GlobalAvgPool, Relu, Residual
from ntk_sym.numeric.conv import steps
from ntk_sym.symbolic import conv_maps, recursion

TOL = 1e-12


def images(shape=(4, 4, 2), seed=12):
    """X1: a random image, its duplicate, a shifted copy (edges differ under SAME padding),
    a negated copy (θ = π at the first layer), and another random image; X2: two more, one a
    duplicate of X1[0] (cross-set identity)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((2, *shape))
    X1 = np.stack([base[0], base[0], np.roll(base[0], 1, axis=1), -base[0], base[1]])
    X2 = np.stack([rng.standard_normal(shape), base[0]])
    return X1, X2


CASES = {
    "gap, SAME, biases": (
        (Conv((3, 3), 1.3, 0.2), Relu(), Conv((3, 3), 1.1), Relu(), GlobalAvgPool(),
         Dense(1.0, 0.1)),
        [("conv", (3, 3), (1, 1), "SAME", 1.3, 0.2), ("relu",),
         ("conv", (3, 3), (1, 1), "SAME", 1.1, 0.0), ("relu",), ("gap",), ("dense", 1.0, 0.1)],
    ),
    "flatten (diagonal), VALID": (
        (Conv(3, 1.3), Relu(), Conv((2, 2), 1.1, 0.3, padding="VALID"), Relu(), Flatten(), Dense()),
        [("conv", (3, 3), (1, 1), "SAME", 1.3, 0.0), ("relu",),
         ("conv", (2, 2), (1, 1), "VALID", 1.1, 0.3), ("relu",), ("flatten",), ("dense", 1.0, 0.0)],
    ),
    "circular, strides, erf, avgpool": (
        (Conv((3, 2), 1.0, 0.5, padding="CIRCULAR", strides=(2, 1)), Erf(), AvgPool((2, 2), 1),
         Relu(), Flatten(), Dense(1.2)),
        [("conv", (3, 2), (2, 1), "CIRCULAR", 1.0, 0.5), ("erf",), ("avgpool", (2, 2), (1, 1)),
         ("relu",), ("flatten",), ("dense", 1.2, 0.0)],
    ),
    "activation after the readout": (
        (Conv(2, 1.2, 0.1), Relu(), GlobalAvgPool(), Dense(1.5, 0.3), Relu(), Dense()),
        [("conv", (2, 2), (1, 1), "SAME", 1.2, 0.1), ("relu",), ("gap",), ("dense", 1.5, 0.3),
         ("relu",), ("dense", 1.0, 0.0)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_direct_reference(case):
    layers, desc = CASES[case]
    net = ntk_sym.serial(*layers)
    X1, X2 = images()
    X = np.concatenate([X1, X2])
    ref = reference_kernels(desc, X)
    n = len(X1)
    for got, exact in zip(net.kernels(X, tile=2), ref, strict=True):
        diag = np.diag(exact)
        assert relative_entry_error(got, exact, diag, diag).max() < TOL
    for got, exact in zip(net.kernels(X1, X2, tile=3), ref, strict=True):
        diag = np.diag(exact)
        assert relative_entry_error(got, exact[:n, n:], diag[:n], diag[n:]).max() < TOL


def test_one_dimensional_against_reference():
    X1, X2 = images(shape=(7, 2), seed=3)
    layers = (Conv(3, strides=2), Relu(), Conv(2, 1.4, padding="VALID"), Relu(), GlobalAvgPool(),
              Dense())
    desc = [("conv", (3,), (2,), "SAME", 1.0, 0.0), ("relu",),
            ("conv", (2,), (1,), "VALID", 1.4, 0.0), ("relu",), ("gap",), ("dense", 1.0, 0.0)]
    K, T = ntk_sym.serial(*layers).kernels(X1)
    for got, exact in zip((K, T), reference_kernels(desc, X1), strict=True):
        assert relative_entry_error(got, exact, np.diag(exact), np.diag(exact)).max() < TOL


def test_one_layer_by_hand():
    """x = (1, 2, 3), x' = (1, 0, −1), one channel, Conv(2, VALID): Σ¹[o, o] = (x_o x'_o +
    x_{o+1} x'_{o+1})/2 = 1/2, −3/2; Flatten: −1/2; Dense: NNGP −1/2, NTK = Σ + Θ = −1. With
    itself: x gives (5/2 + 13/2)/2 = 9/2 and NTK 9, x' gives 1/2 and 1."""
    X = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])[..., None]
    K, T = ntk_sym.serial(Conv(2, padding="VALID"), Flatten(), Dense()).kernels(X)
    np.testing.assert_allclose(K, [[4.5, -0.5], [-0.5, 0.5]], rtol=1e-15)
    np.testing.assert_allclose(T, [[9.0, -1.0], [-1.0, 1.0]], rtol=1e-15)


def _circular_shift_case():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 5, 1))
    X = np.stack([x, np.roll(x, (1, 2), axis=(0, 1)), rng.standard_normal((5, 5, 1))])
    net = ntk_sym.serial(Conv(3, padding="CIRCULAR"), Relu(), Conv(3, padding="CIRCULAR"),
                         Relu(), GlobalAvgPool(), Dense())
    desc = [("conv", (3, 3), (1, 1), "CIRCULAR", 1.0, 0.0), ("relu",)] * 2
    desc += [("gap",), ("dense", 1.0, 0.0)]
    return net, X, reference_kernels(desc, X)


def test_circular_gap_is_shift_invariant_exactly():
    """CIRCULAR padding and GlobalAvgPool make the kernel invariant to circular shifts:
    K(x, roll(x)) = K(x, x). Every pixel pair (p, p + shift) has identical receptive fields,
    so its angle must be exactly 0 at every layer."""
    net, X, (_, T_ref) = _circular_shift_case()
    K, T = net.kernels(X)
    assert abs(K[0, 1] - K[0, 0]) < 1e-14 * K[0, 0]
    assert abs(T[0, 1] - T[0, 0]) < 1e-14 * T[0, 0]
    assert relative_entry_error(T, T_ref, np.diag(T_ref), np.diag(T_ref)).max() < TOL


def test_naive_angles_fail_at_identical_fields(monkeypatch):
    """The same network with the gaps switched off where the rounded cosine stays ≤ 1 (arccos
    of it): θ ≈ √(2ε) ≈ 1e-8 instead of 0 at identical receptive fields, and the NTK misses
    the reference by far more than the tolerance, so the tests above can fail."""
    monkeypatch.setattr(steps, "NEAR_COS", 1.0)
    net, X, (_, T_ref) = _circular_shift_case()
    T = net.ntk(X)
    assert relative_entry_error(T, T_ref, np.diag(T_ref), np.diag(T_ref)).max() > 1e-10


def test_identical_images_copy_the_diagonal():
    X1, X2 = images()
    net = ntk_sym.serial(*CASES["gap, SAME, biases"][0])
    K = net.ntk(X1, X2)
    own = net.ntk(X1)
    assert K[0, 1] == own[0, 0] and K[1, 1] == own[1, 1]
    assert own[0, 1] == own[0, 0]


@pytest.mark.parametrize("case", ["gap, SAME, biases", "flatten (diagonal), VALID"])
def test_tiles_threads_and_outputs(case, tmp_path):
    X1, _ = images()
    net = ntk_sym.serial(*CASES[case][0])
    K, T = net.kernels(X1, tile=1, threads=1)
    K2, T2 = net.kernels(X1, tile=3, threads=2)
    np.testing.assert_allclose(K2, K, rtol=1e-14, atol=0)
    np.testing.assert_allclose(T2, T, rtol=1e-14, atol=0)
    out = np.lib.format.open_memmap(tmp_path / "ntk.npy", mode="w+", shape=T.shape)
    got = net.ntk(X1, out=out)
    assert got is out
    np.testing.assert_allclose(out, T, rtol=1e-14)
    assert net.nngp(X1).shape == K.shape
    K32, T32 = net.kernels(X1, dtype=np.float32)
    assert K32.dtype == np.float32
    # float32 tiles: ~1e-7 rounding per operation, a few dozen operations per entry
    np.testing.assert_allclose(T32, T, rtol=2e-5)
    np.testing.assert_allclose(K32, K, rtol=2e-5)


def test_bad_inputs_name_the_layer():
    net = ntk_sym.serial(Conv(3), Relu(), GlobalAvgPool(), Dense())
    X = np.ones((2, 4, 4, 1))
    with pytest.raises(InputError, match=r"layer 1 \(Conv\).*\(n, H, W, C\)"):
        net.ntk(np.ones((2, 16)))
    with pytest.raises(InputError, match=r"layer 1 \(Conv\): X1 has 1 channels and X2 has 3"):
        net.ntk(X, np.ones((2, 4, 4, 3)))
    with pytest.raises(InputError, match=r"layer 1 \(Conv\): the window \(5, 5\) is larger"):
        ntk_sym.serial(Conv(5, padding="VALID"), Flatten(), Dense()).ntk(X)
    with pytest.raises(InputError, match=r"layer 1 \(Conv\): a 2-D window on 1-D images"):
        ntk_sym.serial(Conv((3, 3)), Flatten(), Dense()).ntk(np.ones((2, 4, 1)))
    with pytest.raises(InputError, match=r"layer 3 \(Conv\): comes after the readout"):
        ntk_sym.serial(Conv(3), GlobalAvgPool(), Conv(3), Dense()).ntk(X)
    with pytest.raises(InputError, match="no GlobalAvgPool or Flatten"):
        ntk_sym.serial(Conv(3), Relu(), Dense()).ntk(X)
    with pytest.raises(InputError, match="non-finite"):
        net.ntk(np.full((2, 4, 4, 1), np.nan))
    with pytest.raises(NTKSymError, match="padding must be one of"):
        Conv(3, padding="same")
    with pytest.raises(NTKSymError, match="filter_shape must be"):
        Conv((3, 3, 3))
    with pytest.raises(NTKSymError, match="backend"):
        net.ntk(X, backend="mpmath")


def test_residual_in_a_convolutional_network_is_refused_at_construction():
    block = Residual(Dense(), Relu(), Dense())
    with pytest.raises(NTKSymError, match=r"layer 3 \(Residual\): residual blocks are not "):
        ntk_sym.serial(Conv(3), Relu(), block, GlobalAvgPool(), Dense())
    # the symbolic chain refuses it on its own too (it is reached without serial's check)
    with pytest.raises(NTKSymError, match=r"layer 2 .*Residual is not supported"):
        conv_maps.chain((Conv(3), block, GlobalAvgPool(), Dense()), None, recursion.stage)


def test_latex_and_recursion():
    net = ntk_sym.serial(Conv((3, 3), 1.5), Relu(), AvgPool(2), GlobalAvgPool(), Dense())
    tex = net.latex()
    assert r"\mathrm{Conv}(3\times3" in tex and r"\sum_{\delta=1}^{9}" in tex
    assert r"\mathrm{GlobalAvgPool}" in tex and r"\mathrm{AvgPool}(2)" in tex
    assert len(net.recursion()) == 2 + 2 * len(net.layers)
    with pytest.raises(NTKSymError, match="not unrolled"):
        net.unrolled()


def test_out_memmaps_filled_against_reference(tmp_path):
    """``out=(None, memmap)`` and ``out=(memmap, None)``: only the kernel with a target is
    filled, in place in the .npy file, symmetric (several tiles) and cross (non-square)."""
    layers, desc = CASES["flatten (diagonal), VALID"]
    net = ntk_sym.serial(*layers)
    X1, X2 = images()
    n = len(X1)
    K_ref, T_ref = reference_kernels(desc, np.concatenate([X1, X2]))
    d_K, d_T = np.diag(K_ref), np.diag(T_ref)
    path = tmp_path / "ntk.npy"
    ntk_file = np.lib.format.open_memmap(path, mode="w+", shape=(n, n))
    K, T = net.kernels(X1, out=(None, ntk_file), tile=2)
    assert K is None and T is ntk_file
    ntk_file.flush()
    on_disk = np.load(path)
    assert relative_entry_error(on_disk, T_ref[:n, :n], d_T[:n], d_T[:n]).max() < TOL
    assert np.array_equal(on_disk, on_disk.T)
    nngp_file = np.lib.format.open_memmap(tmp_path / "nngp.npy", mode="w+",
                                          shape=(n, len(X2)), dtype=np.float32)
    K, T = net.kernels(X1, X2, out=(nngp_file, None), dtype=np.float32, tile=2)
    assert T is None and K is nngp_file
    # float32 tiles: ~1e-7 rounding per operation, a few dozen operations per entry
    assert relative_entry_error(K, K_ref[:n, n:], d_K[:n], d_K[n:]).max() < 2e-5
