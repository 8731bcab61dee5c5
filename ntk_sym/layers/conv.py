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
"""

from __future__ import annotations

import numpy as np

from ..errors import NTKSymError
from ..finite import conv as cnn
from ..symbolic.conv_maps import AvgPoolMap, ConvMap, FlattenMap, GlobalAvgPoolMap


class _ImageLayer:
    """The finite twins of image layers need the images' rank: the whole network builds them."""

    def finite(self):
        raise NTKSymError(
            f"{type(self).__name__}: a convolutional network has no layer-by-layer twins; its "
            "finite network is ntk_sym.finite.init(net, width, seed) (a FiniteCNN)"
        )


class Conv(_ImageLayer, ConvMap):
    """A convolution with NTK parameterization: h'[p] = (σ_w/√(kC)) Σ_δ W_δ h[p+δ] + σ_b b, W,
    b ~ N(0, 1) (k window offsets, C input channels); filter_shape (k₁,) or (k₁, k₂), or one
    integer for every spatial axis."""


class AvgPool(_ImageLayer, AvgPoolMap):
    """The mean over blocks of `window` positions, moved by `strides` (default: the window)."""


class GlobalAvgPool(_ImageLayer, GlobalAvgPoolMap):
    """The mean over all positions; a Dense after it is the readout."""


class Flatten(_ImageLayer, FlattenMap):
    """All positions and channels as one feature vector; a Dense after it is the readout."""


def finite_cnn(net, X, width: int, seed: int = 0, outputs: int = 1):
    """The finite twin (`ntk_sym.finite.conv.FiniteCNN`) of the network `net` (``serial``
    of Conv, activations, AvgPool, GlobalAvgPool/Flatten and Dense) for images shaped like X,
    with `width` channels per Conv and units per hidden Dense, `outputs` outputs, weights from
    `seed` (``ntk_sym.finite.init(net, width, seed)`` is the same network with one output)."""
    return cnn.init_cnn(net.layers, width, seed, outputs, input_shape=np.asarray(X).shape[1:])


__all__ = ["AvgPool", "Conv", "Flatten", "GlobalAvgPool", "finite_cnn"]
