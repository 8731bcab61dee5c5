"""The convolutional layers: Conv, AvgPool, GlobalAvgPool and Flatten (channels last).

Inputs are images (n, H, W, C) or sequences (n, L, C). Kernels are indexed by pixel pairs and
follow neural-tangents' ``stax`` (maps and equations in `ntk_sym.symbolic.conv_maps`):

* ``Conv(filter_shape, w_std=1.0, b_std=0.0, padding="SAME" | "VALID" | "CIRCULAR",
  strides=1)``: Σ'[p, p'] = σ_w²·(mean over the k window offsets δ of Σ[p+δ, p'+δ]) + σ_b²,
  Θ' = Σ' + σ_w²·(the same mean of Θ); SAME's zero padding counts in the mean;
* ``AvgPool(window, strides=window)``: block means (padding VALID);
* ``GlobalAvgPool()``: the mean over all pixel pairs; ``Flatten()``: over the diagonal p = p'.

Activations act on every pixel pair; a ``Dense`` after GlobalAvgPool or Flatten is the readout::

    net = serial(Conv((3, 3)), Relu(), Conv((3, 3)), Relu(), GlobalAvgPool(), Dense())
    K = net.ntk(images)                         # (n, n)

Each layer's ``finite()`` is its finite-width twin (`ntk_sym.finite.conv`), so
``ntk_sym.finite.init(net, width, seed)`` is the finite CNN of the same description.
"""

from __future__ import annotations

from ..finite.conv import FiniteAvgPool, FiniteConv, FiniteFlatten, FiniteGlobalAvgPool
from ..symbolic.conv_maps import AvgPoolMap, ConvMap, FlattenMap, GlobalAvgPoolMap


class Conv(ConvMap):
    """A convolution with NTK parameterization: h'[p] = (σ_w/√(kC)) Σ_δ W_δ h[p+δ] + σ_b b, W,
    b ~ N(0, 1) (k window offsets, C input channels); filter_shape (k₁,) or (k₁, k₂), or one
    integer for every spatial axis."""

    def finite(self) -> FiniteConv:
        return FiniteConv(self.filter_shape, self.strides, self.padding, self.w_std, self.b_std)


class AvgPool(AvgPoolMap):
    """The mean over blocks of `window` positions, moved by `strides` (default: the window)."""

    def finite(self) -> FiniteAvgPool:
        return FiniteAvgPool(self.window, self.strides)


class GlobalAvgPool(GlobalAvgPoolMap):
    """The mean over all positions; a Dense after it is the readout."""

    def finite(self) -> FiniteGlobalAvgPool:
        return FiniteGlobalAvgPool()


class Flatten(FlattenMap):
    """All positions and channels as one feature vector; a Dense after it is the readout."""

    def finite(self) -> FiniteFlatten:
        return FiniteFlatten()


__all__ = ["AvgPool", "Conv", "Flatten", "GlobalAvgPool"]
