"""The network object shared by the kernel, dynamics and finite-width sides.

A network is a composition of layers (`ntk_sym.layers`): ``ntk_sym.serial(*layers)`` builds one
and ``ntk_sym.mlp(φ, L, σ_w, σ_b)`` the fully connected network ``serial(Dense, φ, Dense, φ, …,
Dense)`` with L activations. `Network` is that object's class (`ntk_sym.layers.Serial`).

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

from __future__ import annotations

from .layers.serial import Serial, mlp, serial

#: The network class (an alias of `ntk_sym.layers.Serial`).
Network = Serial

__all__ = ["Network", "Serial", "mlp", "serial"]
