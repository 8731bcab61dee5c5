"""ntk_sym: the Neural Tangent Kernel derived in SymPy, compiled, and validated.

>>> import ntk_sym
>>> net = ntk_sym.mlp("relu", depth=3, w_std=1.5, b_std=0.1)
>>> from ntk_sym.layers import Dense, Relu, Residual, LayerNorm
>>> res = ntk_sym.serial(Dense(), Relu(), Residual(Dense(), Relu(), Dense()), LayerNorm(), Dense())
>>> ntk_sym.mlp_spec(net).depth, ntk_sym.mlp_spec(res)
(3, None)

Convention (NTK parameterization, Jacot et al. 2018, and neural-tangents' ``stax``): input
x ∈ ℝᵈ with Σ⁽⁰⁾ = x·x'/d, Θ⁽⁰⁾ = 0; for the MLP, with (u, v) ~ N(0, Σ⁽ˡ⁾ on {x, x'}),

    Σ⁽¹⁾ = σ_w² x·x'/d + σ_b²,                  Θ⁽¹⁾ = Σ⁽¹⁾,
    Σ⁽ˡ⁺¹⁾ = σ_w² 𝔼[φ(u)φ(v)] + σ_b²,           Σ̇⁽ˡ⁺¹⁾ = σ_w² 𝔼[φ'(u)φ'(v)],
    Θ⁽ˡ⁺¹⁾ = Σ⁽ˡ⁺¹⁾ + Σ̇⁽ˡ⁺¹⁾ Θ⁽ˡ⁾,

and f's NNGP and NTK are Σ⁽ᴸ⁺¹⁾ and Θ⁽ᴸ⁺¹⁾. Standard parameterization (per Dense,
``parameterization="standard"``): h = W a + b with W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²), weight
learning rates η/fan_in and bias learning rate η, so that Θ_sp⁽¹⁾ = x·x'/d + 1 and
Θ_sp⁽ˡ⁺¹⁾ = 𝔼[φ(u)φ(v)] + 1 + Σ̇⁽ˡ⁺¹⁾ Θ_sp⁽ˡ⁾; the NNGP is unchanged.
"""

from . import dynamics, errors, finite, layers
from .layers.serial import Serial, mlp, serial
from .symbolic import activations, verify
from .symbolic.mlp import MLP, mlp_spec

__all__ = [
    "MLP",
    "Serial",
    "activations",
    "dynamics",
    "errors",
    "finite",
    "layers",
    "mlp",
    "mlp_spec",
    "serial",
    "verify",
]
__version__ = "0.1.0"
