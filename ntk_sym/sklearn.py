"""scikit-learn integration: the infinite network's kernels and the trained network as estimators.

Imported on request only (``import ntk_sym.sklearn``; needs ``pip install 'ntk_sym[sklearn]'``).

* `NTK`, `NNGP`: `sklearn.gaussian_process.kernels.Kernel`s of any network. With
  ``network=net`` (``ntk_sym.serial(...)``) every Dense and Conv layer of `net` takes
  σ_w = w_std and σ_b = b_std (its own values are replaced), and ``input_shape=(H, W, C)``
  (or (L, C)) reshapes scikit-learn's rows of H·W·C features into images for convolutional
  networks. Without `network` the kernel is that of ``ntk_sym.mlp(activation, depth, w_std,
  b_std)``. The value is the network's ``.ntk(X, Y)`` (``.nngp`` for `NNGP`). The
  hyperparameters are w_std and b_std, optimised in log space (theta = log σ in
  scikit-learn's order, b_std first); the network's shape is fixed. The gradient with respect
  to theta is analytic: the tied derivatives of `ntk_sym.gradients.kernel_gradients` (the sum
  over the Dense and Conv layers).
* `NTKRegressor`: the infinite-width MLP trained by gradient flow on ½‖f(X) − y‖² for time t
  (`ntk_sym.dynamics.predict_from_kernels`); ``predict(X, return_std=True)`` gives the mean and
  standard deviation over random initialisations.
* `NTKClassifier`: the same, one-vs-rest on ±1 targets.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .compile.conv import compile_conv
from .compile.layers import compile_network
from .dynamics import predict_from_kernels
from .dynamics.ensemble import Prediction
from .gradients import PARAMETERS, kernel_gradients
from .layers.serial import Serial, mlp, serial
from .numeric.conv.engine import point_data as conv_point_data
from .numeric.engine import point_data
from .symbolic.activations import Activation
from .symbolic.conv_maps import is_convolutional
from .symbolic.maps import Layer
from .symbolic.tangent import has_sigmas

#: Default search boxes of σ_w and σ_b (log-space optimisation needs positive bounds).
W_STD_BOUNDS = (1e-2, 1e2)
B_STD_BOUNDS = (1e-5, 1e2)


def _check_bounds(name: str, bounds: object) -> object:
    """'fixed' or a pair 0 < low ≤ high (the optimiser works in log σ)."""
    if isinstance(bounds, str):
        if bounds != "fixed":
            raise ValueError(f"{name} must be 'fixed' or a pair (low, high), got {bounds!r}")
        return bounds
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 'fixed' or a pair (low, high), got {bounds!r}") from None
    if not (0 < low <= high):
        raise ValueError(
            f"{name} must satisfy 0 < low <= high (σ is optimised as log σ), got {bounds!r}"
        )
    return (low, high)


def with_sigmas(net: Serial, w_std: float, b_std: float) -> Serial:
    """`net` with every Dense and Conv layer (inside residual blocks too) at σ_w = w_std,
    σ_b = b_std."""

    def rebuilt(layers: tuple[Layer, ...]) -> list[Layer]:
        out = []
        for m in layers:
            if getattr(m, "kind", None) == "residual":
                out.append(type(m)(*rebuilt(m.block)))
            elif has_sigmas(m):
                out.append(dataclasses.replace(m, w_std=w_std, b_std=b_std))
            else:
                out.append(m)
        return out

    return serial(*rebuilt(net.layers))


class _NetworkKernel(Kernel):
    """A kernel of an infinite-width network (module docstring).

    σ_b = 0 (no bias, the default) makes b_std a fixed hyperparameter, since log 0 = −∞; pass
    b_std > 0 to let an optimiser learn it.
    """

    _kind = ""  # "ntk" or "nngp", set by the subclasses

    def __init__(
        self,
        depth: int = 1,
        w_std: float = 1.0,
        b_std: float = 0.0,
        activation: str | Activation = "relu",
        w_std_bounds: tuple[float, float] | str = W_STD_BOUNDS,
        b_std_bounds: tuple[float, float] | str = B_STD_BOUNDS,
        network: Serial | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.activation = activation
        self.w_std_bounds = w_std_bounds
        self.b_std_bounds = b_std_bounds
        self.network = network
        self.input_shape = input_shape
        _check_bounds("w_std_bounds", w_std_bounds)
        _check_bounds("b_std_bounds", b_std_bounds)

    @property
    def hyperparameter_w_std(self) -> Hyperparameter:
        return Hyperparameter("w_std", "numeric", _check_bounds("w_std_bounds", self.w_std_bounds))

    @property
    def hyperparameter_b_std(self) -> Hyperparameter:
        bounds = _check_bounds("b_std_bounds", self.b_std_bounds)
        return Hyperparameter("b_std", "numeric", "fixed" if self.b_std == 0 else bounds)

    def kernel_network(self) -> Serial:
        """The `ntk_sym.Serial` whose kernel this is: `network` with its Dense and Conv layers
        at (w_std, b_std), or the MLP of depth and activation."""
        if self.network is None:
            return mlp(self.activation, self.depth, self.w_std, self.b_std)
        if not isinstance(self.network, Serial):
            raise ValueError(
                f"network must be an ntk_sym network (ntk_sym.serial(...)), got {self.network!r}"
            )
        return with_sigmas(self.network, self.w_std, self.b_std)

    def _inputs(self, X: object, name: str) -> np.ndarray:
        """scikit-learn's rows, as images of `input_shape` when one is given."""
        X = check_array(X, dtype=np.float64)
        if self.input_shape is None:
            if self.network is not None and is_convolutional(self.network.layers):
                raise ValueError(
                    "a convolutional network needs input_shape=(H, W, C) (or (L, C)) to read "
                    "scikit-learn's 2-D rows as images"
                )
            return X
        shape = tuple(int(s) for s in self.input_shape)
        if X.shape[1] != math.prod(shape):
            raise ValueError(
                f"{name} has {X.shape[1]} features per row, but input_shape={shape} needs "
                f"{math.prod(shape)}"
            )
        return X.reshape(len(X), *shape)

    def __call__(
        self, X: object, Y: object | None = None, eval_gradient: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """K(X, Y) (n_X, n_Y); with eval_gradient also ∂K/∂theta (n_X, n_X, n_free).

        theta = log σ of the free hyperparameters in `hyperparameters` order (b_std, w_std).
        """
        X = self._inputs(X, "X")
        if Y is not None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            Y = self._inputs(Y, "Y")
            if Y.shape[1:] != X.shape[1:]:
                raise ValueError(
                    f"X and Y must have the same number of features, got {X.shape[1]} and "
                    f"{Y.shape[1]}"
                )
        net = self.kernel_network()
        if not eval_gradient:
            return getattr(net, self._kind)(X, Y)
        grads = kernel_gradients(net, X)
        K = grads.ntk if self._kind == "ntk" else grads.nngp
        d_all = grads.d_ntk if self._kind == "ntk" else grads.d_nngp
        free = [h.name for h in self.hyperparameters if not h.fixed]
        columns = [PARAMETERS.index(name) for name in free]
        return K, d_all[:, :, columns]

    def diag(self, X: object) -> np.ndarray:
        """K(x, x) for every row, shape (n,), by the per-point pass (O(n))."""
        X = self._inputs(X, "X")
        layers = self.kernel_network().layers
        if is_convolutional(layers):
            points = conv_point_data(compile_conv(layers, X.shape[1:]), X)
            values = points.ntk if self._kind == "ntk" else points.nngp
        else:
            diagonal = point_data(compile_network(layers), X).output
            values = diagonal.ntk if self._kind == "ntk" else diagonal.var
        return np.asarray(values, dtype=np.float64)

    def is_stationary(self) -> bool:
        """False: the kernel depends on the norms and the angle of x and x', not on x − x'."""
        return False

    def __repr__(self) -> str:
        sigmas = f"w_std={self.w_std:.3g}, b_std={self.b_std:.3g}"
        if self.network is not None:
            shape = "" if self.input_shape is None else f", input_shape={self.input_shape!r}"
            return f"{type(self).__name__}(network={self.network!r}, {sigmas}{shape})"
        return (
            f"{type(self).__name__}(depth={self.depth}, {sigmas}, "
            f"activation={self.activation!r})"
        )


class NTK(_NetworkKernel):
    """The neural tangent kernel of `network` (or of ``ntk_sym.mlp(activation, depth, w_std,
    b_std)``) with its Dense and Conv layers at (w_std, b_std).

    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn.gaussian_process.kernels import WhiteKernel
    >>> from ntk_sym.layers import Conv, Dense, Flatten, Relu, serial
    >>> gp = GaussianProcessRegressor(NTK(depth=2, b_std=0.1) + WhiteKernel())
    >>> cntk = serial(Conv((3, 3)), Relu(), Conv((3, 3)), Relu(), Flatten(), Dense())
    >>> gp = GaussianProcessRegressor(NTK(network=cntk, b_std=0.1, input_shape=(8, 8, 1)))
    """

    _kind = "ntk"


class NNGP(_NetworkKernel):
    """The NNGP kernel (the network's prior covariance at initialisation), with the parameters
    of `NTK`."""

    _kind = "nngp"


class _TrainedNetwork(BaseEstimator):
    """Shared fit/predict of the infinite-width network trained by gradient flow.

    The outputs at time t are Gaussian over initialisations (Lee et al. 2019):
    μ_t(x) = Θ(x, X) Θ⁻¹ (I − e^{−ηΘt}) y and the covariance of `ntk_sym.dynamics.flow`.
    diag_reg δ is added to the training kernels (a ridge; with kernel="nngp" and t = ∞ the
    prediction is the GP posterior with noise variance δ).
    """

    def __init__(
        self,
        depth: int = 1,
        w_std: float = 1.0,
        b_std: float = 0.0,
        activation: str | Activation = "relu",
        t: float = np.inf,
        lr: float = 1.0,
        diag_reg: float = 1e-6,
        kernel: str = "ntk",
    ) -> None:
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.activation = activation
        self.t = t
        self.lr = lr
        self.diag_reg = diag_reg
        self.kernel = kernel

    def network(self) -> Serial:
        return mlp(self.activation, self.depth, self.w_std, self.b_std)

    def _fit_targets(self, X: np.ndarray, targets: np.ndarray) -> None:
        net = self.network()
        self.X_train_ = X
        self.targets_ = targets
        self.nngp_train_, self.ntk_train_ = net.kernels(X)

    def _prediction(self, X: object) -> Prediction:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        net = self.network()
        nngp_test_train, ntk_test_train = net.kernels(X, self.X_train_)
        nngp_test = net.nngp(X)
        return predict_from_kernels(
            self.ntk_train_,
            ntk_test_train,
            self.nngp_train_,
            nngp_test_train,
            nngp_test,
            self.targets_,
            times=self.t,
            lr=self.lr,
            diag_reg=self.diag_reg,
            kernel=self.kernel,
        )


class NTKRegressor(RegressorMixin, _TrainedNetwork):
    """The infinite-width MLP trained by gradient flow for time t (t = ∞: NTK regression).

    Parameters: the network (depth, w_std, b_std, activation), the training time t ∈ [0, ∞],
    the learning rate lr of the flow df/dt = −lr·Θ(f − y), diag_reg (a ridge δ on the training
    kernels) and kernel ("ntk": all layers trained; "nngp": the readout alone, i.e. Bayesian).
    Multi-output y (n, k) gives k independent networks' outputs sharing one covariance.
    """

    def fit(self, X: object, y: object) -> NTKRegressor:
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._fit_targets(X, np.asarray(y, dtype=np.float64))
        return self

    def predict(
        self, X: object, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Mean 𝔼[f_t(x)] (n,) or (n, k); with return_std also the standard deviation (n,)."""
        prediction = self._prediction(X)
        mean = prediction.mean[0]
        return (mean, prediction.std[0]) if return_std else mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class NTKClassifier(ClassifierMixin, _TrainedNetwork):
    """One-vs-rest: the regressor on ±1 targets (one output per class; one for two classes),
    predicting the class of the largest mean output."""

    def fit(self, X: object, y: object) -> NTKClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        columns = [1] if len(self.classes_) == 2 else range(len(self.classes_))
        targets = np.stack([np.where(codes == c, 1.0, -1.0) for c in columns], axis=1)
        self._fit_targets(X, targets)
        return self

    def decision_function(self, X: object) -> np.ndarray:
        """Mean outputs (n, n_classes); for two classes (n,), positive for classes_[1]."""
        mean = self._prediction(X).mean[0]
        return mean[:, 0] if len(self.classes_) == 2 else mean

    def predict(self, X: object) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


__all__ = ["NNGP", "NTK", "NTKClassifier", "NTKRegressor"]
