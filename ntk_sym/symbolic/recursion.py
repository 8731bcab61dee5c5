"""The layer recursion as SymPy objects: equations for display, and depth-L kernels unrolled.

With (u, v) ~ N(0, Σ⁽ˡ⁾ restricted to {x, x'}) and T, Ṫ the activation's dual maps:

    Σ⁽ˡ⁺¹⁾(x, x') = σ_w² T(Σ⁽ˡ⁾(x, x), Σ⁽ˡ⁾(x, x'), Σ⁽ˡ⁾(x', x')) + σ_b²
    Σ̇⁽ˡ⁺¹⁾(x, x') = σ_w² Ṫ(Σ⁽ˡ⁾(x, x), Σ⁽ˡ⁾(x, x'), Σ⁽ˡ⁾(x', x'))
    Θ⁽ˡ⁺¹⁾(x, x') = Σ⁽ˡ⁺¹⁾(x, x') + Σ̇⁽ˡ⁺¹⁾(x, x') Θ⁽ˡ⁾(x, x')

starting from Σ⁽¹⁾ = Θ⁽¹⁾ = σ_w² x·x'/d + σ_b² (NTK parameterization; the standard one replaces
the Σ⁽ˡ⁺¹⁾ term of Θ by T + 1 and Θ⁽¹⁾ by x·x'/d + 1).
"""

from __future__ import annotations

from typing import Protocol

import sympy as sp

from ..errors import NTKSymError
from .activations import Activation
from .symbols import q11, q12, q22


class Network(Protocol):
    """What the recursion reads of a network description (`ntk_sym.network.Network`)."""

    activation: Activation
    depth: int
    w_std: float
    b_std: float
    parameterization: str

#: Input Gram entries of the unrolled kernels: x·x', ‖x‖², ‖x'‖², and the input dimension d.
xy = sp.Symbol("x·x'", real=True)
xx, yy = sp.Symbol("‖x‖²", positive=True), sp.Symbol("‖x'‖²", positive=True)
d = sp.Symbol("d", positive=True, integer=True)
sigma_w, sigma_b = sp.symbols("sigma_w sigma_b", positive=True)


def _parameters(net: Network, symbolic: bool) -> tuple[sp.Expr, sp.Expr]:
    if symbolic:
        return sigma_w, sigma_b
    return sp.nsimplify(net.w_std), sp.nsimplify(net.b_std)


def layer_equations(net: Network, symbolic: bool = True) -> list[sp.Eq]:
    """The maps from layer l to layer l + 1 as SymPy equations in q11, q12, q22 and Θ⁽ˡ⁾.

    q11, q12, q22 stand for Σ⁽ˡ⁾(x, x), Σ⁽ˡ⁾(x, x'), Σ⁽ˡ⁾(x', x'). The activation's closed forms
    are substituted where it has them; otherwise T and Ṫ stay as named expectations.
    """
    act = net.activation
    w, b = _parameters(net, symbolic)
    if act.dual is not None:
        T, Tdot = act.dual, act.derivative_dual
    else:
        T = sp.Function("T")(q11, q12, q22)
        Tdot = sp.Function(r"\dot{T}")(q11, q12, q22)
    Sigma_next = sp.Symbol(r"\Sigma^{(l+1)}")
    Sdot_next = sp.Symbol(r"\dot{\Sigma}^{(l+1)}")
    Theta_l, Theta_next = sp.Symbol(r"\Theta^{(l)}"), sp.Symbol(r"\Theta^{(l+1)}")
    weights_term = T + 1 if net.parameterization == "standard" else Sigma_next
    return [
        sp.Eq(Sigma_next, w**2 * T + b**2),
        sp.Eq(Sdot_next, w**2 * Tdot),
        sp.Eq(Theta_next, weights_term + Sdot_next * Theta_l),
    ]


def unrolled(
    net: Network, symbolic: bool = False, simplify: bool = False
) -> tuple[sp.Expr, sp.Expr]:
    """(NNGP, NTK) of `net` in closed form in x·x', ‖x‖², ‖x'‖² and d (module symbols).

    Practical for small depths: the expressions grow with every layer. With ``symbolic=True``
    σ_w and σ_b stay symbols; otherwise the network's values are inserted exactly.
    ``simplify=True`` runs `sympy.simplify` on every layer (slow beyond depth 1).
    """
    act = net.activation
    if act.dual is None:
        raise NTKSymError(
            f"activation {act.name!r} has no closed-form dual, so its kernel cannot be unrolled "
            "symbolically; use net.nngp / net.ntk (quadrature) instead"
        )
    w, b = _parameters(net, symbolic)
    standard = net.parameterization == "standard"
    a, c, e = w**2 * xx / d + b**2, w**2 * xy / d + b**2, w**2 * yy / d + b**2
    theta = xy / d + 1 if standard else c
    tidy = sp.simplify if simplify else (lambda z: z)
    q = sp.Symbol("q", positive=True)
    T_diag = tidy(act.dual.subs({q11: q, q12: q, q22: q}))
    for _ in range(net.depth):
        pair = {q11: a, q12: c, q22: e}
        T, Tdot = act.dual.subs(pair), act.derivative_dual.subs(pair)
        new_c = w**2 * T + b**2
        theta = tidy((T + 1 if standard else new_c) + w**2 * Tdot * theta)
        a, e, c = w**2 * T_diag.subs(q, a) + b**2, w**2 * T_diag.subs(q, e) + b**2, tidy(new_c)
    return c, theta


def latex(net: Network, symbolic: bool = True) -> str:
    """The layer equations as one LaTeX ``aligned`` block, ready for a notebook or a paper."""
    rows = [
        f"{sp.latex(eq.lhs)} &= {sp.latex(eq.rhs)}" for eq in layer_equations(net, symbolic)
    ]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
