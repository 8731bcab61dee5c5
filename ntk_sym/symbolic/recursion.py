"""A network's kernel recursion as SymPy objects: the chain of layer maps, and its closed form.

The network's input kernel is Σ⁽⁰⁾(x, x') = x·x'/d with Θ⁽⁰⁾ = 0 (neural-tangents' convention);
layer l maps (Σ⁽ˡ⁻¹⁾₁₁, Σ⁽ˡ⁻¹⁾, Σ⁽ˡ⁻¹⁾₂₂, Θ⁽ˡ⁻¹⁾) to (Σ⁽ˡ⁾, Θ⁽ˡ⁾) by its map
(`ntk_sym.symbolic.maps`), where Σ⁽ˡ⁾ = Σ⁽ˡ⁾(x, x') and Σ⁽ˡ⁾₁₁ = Σ⁽ˡ⁾(x, x) follows the same
map on the diagonal. The NNGP and NTK of the network are Σ and Θ after its last layer. A
residual block's layers are numbered l.1, l.2, … and its output is Σ⁽ˡ⁾ = Σ⁽ˡ·ᵏ⁾ + Σ⁽ˡ⁻¹⁾.

`chain` gives the equations, `latex` the typeset block, and `unrolled` composes the whole
network into one expression in x·x', ‖x‖², ‖x'‖² and d (closed-form activations only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..errors import NTKSymError
from . import conv_maps
from .maps import ActivationMap, DenseMap, KernelState, Layer, ResidualMap

#: Input Gram entries of the unrolled kernels: x·x', ‖x‖², ‖x'‖², and the input dimension d.
xy = sp.Symbol("x·x'", real=True)
xx, yy = sp.Symbol("‖x‖²", positive=True), sp.Symbol("‖x'‖²", positive=True)
d = sp.Symbol("d", positive=True, integer=True)
#: σ_w, σ_b of ``recursion(symbolic=True)`` when every Dense layer has the same values.
sigma_w, sigma_b = sp.symbols("sigma_w sigma_b", positive=True)


def stage(label: str) -> KernelState:
    """The symbols Σ⁽ˡ⁾₁₁, Σ⁽ˡ⁾, Σ⁽ˡ⁾₂₂, Θ⁽ˡ⁾ of stage `label`."""
    return KernelState(
        sp.Symbol(rf"\Sigma^{{({label})}}_{{11}}", positive=True),
        sp.Symbol(rf"\Sigma^{{({label})}}", real=True),
        sp.Symbol(rf"\Sigma^{{({label})}}_{{22}}", positive=True),
        sp.Symbol(rf"\Theta^{{({label})}}", real=True),
    )


def parameter_symbols(maps: Sequence[Layer]) -> dict[DenseMap, tuple[sp.Symbol, sp.Symbol]]:
    """σ_w, σ_b symbols per distinct Dense layer: shared ones if all Dense layers are equal,
    else σ_{w,k}, σ_{b,k} numbered in order of appearance."""
    dense: list[DenseMap] = []

    def collect(ms: Sequence[Layer]) -> None:
        for m in ms:
            if isinstance(m, ResidualMap):
                collect(m.block)
            elif isinstance(m, DenseMap) and m not in dense:
                dense.append(m)

    collect(maps)
    if len({(m.w_std, m.b_std) for m in dense}) <= 1:
        return {m: (sigma_w, sigma_b) for m in dense}
    return {
        m: (sp.Symbol(f"sigma_w{k}", positive=True), sp.Symbol(f"sigma_b{k}", positive=True))
        for k, m in enumerate(dense, 1)
    }


def chain(maps: Sequence[Layer], symbolic: bool = False) -> list[tuple[sp.Eq, str]]:
    """(equation, layer label) for the input and every layer: Σ⁽ˡ⁾ = …, Θ⁽ˡ⁾ = ….

    Each layer's right-hand side is its map at the previous stage's symbols (closed forms
    substituted; T and Ṫ stay named where φ has none). ``symbolic=True`` writes σ_w, σ_b as
    symbols (`parameter_symbols`) instead of the layer's exact values.
    """
    symbols = parameter_symbols(maps) if symbolic else None
    if conv_maps.is_convolutional(maps):
        return conv_maps.chain(maps, symbols, stage)
    first = stage("0")
    rows = [
        (sp.Eq(first.s12, xy / d), r"\text{input}"),
        (sp.Eq(first.ntk, sp.Integer(0)), ""),
    ]
    _equations(maps, first, "", symbols, rows)
    return rows


def _equations(
    maps: Sequence[Layer], now: KernelState, prefix: str, symbols: dict | None, rows: list
) -> KernelState:
    for i, m in enumerate(maps, 1):
        label = f"{prefix}{i}"
        out = stage(label)
        if isinstance(m, ResidualMap):
            inner = _equations(m.block, now, f"{label}.", symbols, rows)
            values = KernelState(*(a + b for a, b in zip(inner, now, strict=True)))
            name = r"\text{residual sum}"
        else:
            values = m.apply(now, symbols)
            name = m.label()
        rows.append((sp.Eq(out.s12, values.s12), name))
        rows.append((sp.Eq(out.ntk, values.ntk), ""))
        now = out
    return now


def latex(maps: Sequence[Layer], symbolic: bool = False) -> str:
    """The chain as one LaTeX ``aligned`` block, each layer's first row tagged with its name."""
    lines = [
        f"{sp.latex(eq.lhs)} &= {sp.latex(eq.rhs)}" + (f" && {name}" if name else "")
        for eq, name in chain(maps, symbolic)
    ]
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def unrolled(
    maps: Sequence[Layer], symbolic: bool = False, simplify: bool = False
) -> tuple[sp.Expr, sp.Expr]:
    """(NNGP, NTK) of the network in closed form in x·x', ‖x‖², ‖x'‖² and d (module symbols).

    Practical for small depths: the expressions grow with every layer. ``symbolic=True`` keeps
    σ_w, σ_b as symbols; ``simplify=True`` runs `sympy.simplify` after every layer (slow).
    """
    if conv_maps.is_convolutional(maps):
        raise NTKSymError("a convolutional network's kernel is indexed by pixel pairs and is not "
                          "unrolled into one expression; see net.recursion() / net.latex()")
    _require_closed_forms(maps)
    symbols = parameter_symbols(maps) if symbolic else None
    tidy = sp.simplify if simplify else (lambda z: z)
    state = KernelState(xx / d, xy / d, yy / d, sp.Integer(0))
    for m in maps:
        state = KernelState(*(tidy(v) for v in m.apply(state, symbols)))
    return state.s12, state.ntk


def _require_closed_forms(maps: Sequence[Layer], where: str = "") -> None:
    for i, m in enumerate(maps, 1):
        if isinstance(m, ResidualMap):
            _require_closed_forms(m.block, f"{where}{i}.")
        elif isinstance(m, ActivationMap) and m.duals() is None:
            raise NTKSymError(
                f"layer {where}{i} ({m.phi.name}) has no closed-form dual, so the network's "
                "kernel cannot be unrolled symbolically; use net.nngp / net.ntk (quadrature)"
            )
