"""Derivatives of the NNGP and NTK Gram matrices with respect to log σ_w and log σ_b.

The tangent recursion of `ntk_sym.tangent` is compiled once per activation (cached) and run
alongside the layer recursion on whole (n1, n2) arrays of pairs, for both directions at once:

    Σ⁽¹⁾ = σ_w² x·x'/d + σ_b²,   ∂Σ⁽¹⁾/∂log σ_w = 2σ_w² x·x'/d,   ∂Σ⁽¹⁾/∂log σ_b = 2σ_b²,

then layer by layer (Σ, Σ̇, Θ) and their tangents. Only the NTK parameterization is covered.

Zero tangents: a coefficient can be infinite where its tangent is exactly zero, e.g. ReLU's
∂Ṫ/∂c = 1/(2π sin θ) at θ = 0 (identical inputs, dc = 0) or ∂T/∂q11 at a zero variance (a zero
input with σ_b = 0, where q11 ≡ 0). Such terms contribute nothing and are dropped. Identical
rows of X1 and X2 (and the diagonal) are tracked exactly, so their angle is 0 and dc = 0 at
every layer, rather than a rounded angle of ~1e-8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .compile import lambdify
from .errors import NTKSymError
from .inputs import as_input_pair, as_inputs
from .network import Network
from .tangent import dual_tangent, layer_tangent

#: Order of the derivative axis: ∂/∂log σ_w, then ∂/∂log σ_b.
PARAMETERS = ("w_std", "b_std")


@dataclass(frozen=True)
class CompiledTangent:
    """An activation's duals and jvp coefficients as one array function (see `tangent`).

    ``values(*primal) -> (T, Ṫ, dT coefficients..., dṪ coefficients...)``; the primal arguments
    are (q11, q12, q22) for form "covariance", (θ, cos θ, sin θ, q11, q22) for "angle".
    """

    form: str
    values: Callable
    n_tangents: int
    #: degree-0 angle forms (step, sign) have an angle map θ ↦ θ' ∝ √θ near 0
    non_lipschitz_angle: bool = False


_CACHE: dict[tuple, CompiledTangent] = {}


def compile_tangent(act: Activation) -> CompiledTangent:
    """The `CompiledTangent` of `act` (NumPy), derived and compiled once per activation."""
    key = act.key()
    if key not in _CACHE:
        tangent = dual_tangent(act)
        outputs = (
            tangent.T,
            tangent.Tdot,
            *(tangent.dT[t] for t in tangent.tangents),
            *(tangent.dTdot[t] for t in tangent.tangents),
        )
        fn = lambdify(tangent.primal, outputs, "numpy", cse=True)
        _CACHE[key] = CompiledTangent(
            tangent.form, fn, len(tangent.tangents), act.angle_dual is not None and act.degree == 0
        )
    return _CACHE[key]


def _compile_layer() -> Callable:
    maps, tangents = layer_tangent()
    symbols = sorted(set().union(*(e.free_symbols for e in maps + tangents)), key=str)
    fn = lambdify(tuple(symbols), maps + tangents, "numpy")
    names = [str(s) for s in symbols]
    return lambda **values: fn(*(values[n] for n in names))


_LAYER: list[Callable] = []


def _layer() -> Callable:
    """The compiled layer map and its jvp, keyword arguments named by `tangent`'s symbols."""
    if not _LAYER:
        _LAYER.append(_compile_layer())
    return _LAYER[0]


@dataclass(frozen=True)
class _State:
    """One layer's covariance of a set of pairs and its tangents (leading axis: parameter)."""

    q11: np.ndarray
    q12: np.ndarray
    q22: np.ndarray
    d11: np.ndarray
    d12: np.ndarray
    d22: np.ndarray
    identical: np.ndarray


def _dual_jvp(ct: CompiledTangent, s: _State) -> tuple[np.ndarray, ...]:
    """(T, Ṫ, dT, dṪ) of a layer; the tangents carry a leading parameter axis."""
    if ct.form == "covariance":
        primal = (s.q11, s.q12, s.q22)
        tangents = (s.d11, s.d12, s.d22)
    else:
        root = np.sqrt(s.q11 * s.q22)
        positive = root > 0
        safe = np.where(positive, root, 1.0)
        cos = np.where(s.identical | ~positive, 1.0, np.clip(s.q12 / safe, -1.0, 1.0))
        sin = np.sqrt(np.maximum(1.0 - cos * cos, 0.0))
        th = np.arctan2(sin, cos)
        log_rate = _ratio(s.d11, s.q11) + _ratio(s.d22, s.q22)
        # cos θ = ±1 is an extremum of c, so dc = 0 there (rounded angles of near-identical
        # pairs, θ ≲ 1e-8, land here too: their dc-term is O(θ))
        at_pole = s.identical | ~positive | (sin == 0)
        dcos = np.where(at_pole, 0.0, s.d12 / safe - 0.5 * cos * log_rate)
        if ct.non_lipschitz_angle and np.any(at_pole & ~s.identical & positive):
            # there the next angle grows like √θ and its tangent is not O(θ)
            raise NTKSymError(
                "kernel gradients of a degree-0 activation (step, sign) are ill-conditioned for "
                "distinct inputs whose angle rounds to 0 or π (closer than ~1e-8); remove the "
                "near-duplicates"
            )
        primal = (th, cos, sin, s.q11, s.q22)
        tangents = (s.d11, s.d22, dcos)
    T, Tdot, *coefficients = ct.values(*primal)
    n = ct.n_tangents
    return T, Tdot, _apply(coefficients[:n], tangents), _apply(coefficients[n:], tangents)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den, 0 where num is exactly 0 (a variance identically zero has zero tangent)."""
    return np.where(num == 0, 0.0, num / np.where(den == 0, 1.0, den))


def _apply(coefficients: list, tangents: tuple[np.ndarray, ...]) -> np.ndarray:
    """Σ coefficient · tangent, dropping terms whose tangent is exactly zero."""
    total = 0.0
    for coef, tan in zip(coefficients, tangents, strict=True):
        if isinstance(coef, int | float) and coef == 0:
            continue
        total = total + np.where(tan == 0, 0.0, coef * tan)
    return total + np.zeros_like(tangents[0])


def _run(
    net: Network, dots: np.ndarray, diag1: np.ndarray, diag2: np.ndarray, identical: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(Σ, Θ, dΣ, dΘ) of the readout for pairs with input products `dots` (any shape).

    diag1, diag2: the inputs' squared norms / d, broadcasting against `dots`; the tangents come
    back with a leading axis of length 2 (`PARAMETERS`).
    """
    w2, b2 = net.w_std**2, net.b_std**2
    rates = np.array([[2 * w2, 0.0], [0.0, 2 * b2]])  # d(σ_w², σ_b²)/d(log σ_w, log σ_b)
    dw2 = rates[:, 0].reshape((2,) + (1,) * dots.ndim)
    db2 = rates[:, 1].reshape(dw2.shape)

    def first(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return w2 * x + b2, dw2 * x + db2

    q12, d12 = first(dots)
    q11, d11 = first(diag1)
    q22, d22 = first(diag2)
    theta, dtheta = q12, d12
    layer = _layer()
    ct = compile_tangent(net.activation) if net.depth else None
    if (
        ct is not None
        and net.activation.degree == 0
        and net.b_std == 0
        and (np.any(diag1 == 0) or np.any(diag2 == 0))
    ):
        # u ≡ 0 there, so T = φ(0)² is not the angle form's J(0) (homogeneity fails at 0)
        raise NTKSymError(
            f"kernel gradients of {net.activation.name!r} (degree 0) at a zero input need b_std > 0"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(net.depth):
            pair = _dual_jvp(ct, _State(q11, q12, q22, d11, d12, d22, identical))
            left = _dual_jvp(ct, _State(q11, q11, q11, d11, d11, d11, np.True_))
            right = _dual_jvp(ct, _State(q22, q22, q22, d22, d22, d22, np.True_))
            q12, _, theta, d12, _, dtheta = _step(layer, pair, theta, dtheta, w2, b2, dw2, db2)
            q11, d11 = _variance(left, w2, b2, dw2, db2)
            q22, d22 = _variance(right, w2, b2, dw2, db2)
    return q12, theta, d12, dtheta


def _step(layer, dual, theta, dtheta, w2, b2, dw2, db2):
    T, Tdot, dT, dTdot = dual
    values = {
        "sigma_w^2": w2, "sigma_b^2": b2, "dsigma_w^2": dw2, "dsigma_b^2": db2,
        "T": T, r"\dot{T}": Tdot, "dT": dT, r"d\dot{T}": dTdot,
        r"\Theta": theta, r"d\Theta": dtheta,
    }  # fmt: skip
    return layer(**values)


def _variance(dual, w2, b2, dw2, db2) -> tuple[np.ndarray, np.ndarray]:
    T, _, dT, _ = dual
    return w2 * T + b2, dw2 * T + w2 * dT + db2


@dataclass(frozen=True)
class KernelGradients:
    """Gram matrices (n1, n2) and their derivatives (n1, n2, 2) along (log σ_w, log σ_b)."""

    nngp: np.ndarray
    ntk: np.ndarray
    d_nngp: np.ndarray
    d_ntk: np.ndarray


def _check(net: Network) -> None:
    if net.parameterization != "ntk":
        raise NTKSymError("kernel gradients cover the NTK parameterization only")


def kernel_gradients(net: Network, X1: object, X2: object | None = None) -> KernelGradients:
    """NNGP, NTK and their derivatives in log σ_w, log σ_b between the rows of X1 and X2.

    Analytic (the compiled tangent recursion), float64; needs a closed-form dual.
    """
    _check(net)
    A, B = as_input_pair(X1, X2)
    B = A if B is None else B
    d = A.shape[1]
    dots = (A @ B.T) / d
    identical = _identical_rows(A, B)
    norms1 = np.einsum("ij,ij->i", A, A)[:, None] / d
    norms2 = np.einsum("ij,ij->i", B, B)[None, :] / d
    nngp, ntk, d_nngp, d_ntk = _run(net, dots, norms1, norms2, identical)
    return KernelGradients(nngp, ntk, np.moveaxis(d_nngp, 0, -1), np.moveaxis(d_ntk, 0, -1))


def _identical_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(n1, n2) mask of exactly equal rows, through row ids (no (n1, n2, d) temporary)."""
    _, ids = np.unique(np.vstack([A, B]), axis=0, return_inverse=True)
    ids = ids.ravel()
    return ids[: len(A), None] == ids[None, len(A) :]


def diagonal_gradients(net: Network, X: object) -> KernelGradients:
    """The same on the diagonal x = x' only: arrays (n,) and (n, 2), O(n) work."""
    _check(net)
    A = as_inputs(X, "X")
    norms = np.einsum("ij,ij->i", A, A) / A.shape[1]
    identical = np.ones(len(A), dtype=bool)
    nngp, ntk, d_nngp, d_ntk = _run(net, norms, norms, norms, identical)
    return KernelGradients(nngp, ntk, np.moveaxis(d_nngp, 0, -1), np.moveaxis(d_ntk, 0, -1))


__all__ = [
    "PARAMETERS",
    "CompiledTangent",
    "KernelGradients",
    "compile_tangent",
    "diagonal_gradients",
    "kernel_gradients",
]
