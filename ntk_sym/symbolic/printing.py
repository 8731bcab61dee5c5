"""SymPy expressions printed as Python functions, one code printer per target, compiled once.

Every numeric function the package makes from a SymPy expression comes from here: φ and φ', the
duals and their angle forms, the tangent maps, the layer maps of the mpmath reference. A
`Target` is a SymPy code printer (a subclass of ``sympy.printing``'s printers that prints the
functions SymPy's own printer gets wrong or cannot print for that target) under a name.
`print_function` turns ``(args, exprs)`` into the source text

    def compiled(a, b, …):
        x0 = …                       # common subexpressions, with cse=True
        return (e₁, e₂, …,)

naming every function through its module (``numpy.sqrt``, ``mpmath.erf``), and the modules it
named; `compile_function` executes that source in a namespace holding exactly those modules, and
caches the result on (exprs, args, target, cse). There is no module table to keep in step with
the printer, and no generated text is edited afterwards.

The mpmath target lives here because the symbolic side evaluates its references in mpmath and
must not import the compile step; the array targets (NumPy, CuPy) and the scalar target of the
numba loop name numeric modules and live in `ntk_sym.compile.printing`, which imports this one.

Conventions, the same on every target: H(0) is the Heaviside function's second argument (SymPy's
default 1/2), and DiracDelta prints as 0, the almost-everywhere derivative of step and sign
(`ntk_sym.symbolic.activations.DIRAC_CONVENTION`).
"""

from __future__ import annotations

import importlib
import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.pycode import MpmathPrinter

#: The name of every printed function (its argument order is in its docstring).
FUNCTION_NAME = "compiled"


@dataclass(frozen=True)
class Target:
    """A named code printer; hashable, so it is part of the compile cache's key."""

    name: str
    printer: type[CodePrinter]

    def new_printer(self) -> CodePrinter:
        # fully qualified names, so the printer's module_imports is the namespace the code needs;
        # unknown functions are refused at print time (strict), not at the first call
        return self.printer({"fully_qualified_modules": True, "inline": True})


@dataclass(frozen=True)
class PrintedFunction:
    """The source of ``def compiled(args): …`` and the modules it names (dotted, sorted)."""

    source: str
    modules: tuple[str, ...]


class _MpmathTargetPrinter(MpmathPrinter):
    """SymPy's mpmath printer, with DiracDelta as 0 and H(x) as mpf values (H(0) its argument)."""

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        return f"{self._module_format('mpmath.mpf')}(0)"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        x, at_zero = (self._print(a) for a in expr.args)
        mpf = self._module_format("mpmath.mpf")
        return f"({mpf}(0) if ({x}) < 0 else {mpf}({at_zero}) if ({x}) == 0 else {mpf}(1))"


#: mpmath numbers at the working precision current when the function is called.
MPMATH = Target("mpmath", _MpmathTargetPrinter)


def _as_tuple(exprs: sp.Expr | Sequence[sp.Expr]) -> tuple[tuple[sp.Expr, ...], bool]:
    """The expressions as a tuple, and whether they came as a sequence (then a tuple returns)."""
    if isinstance(exprs, (list, tuple)):
        return tuple(sp.sympify(e) for e in exprs), True
    return (sp.sympify(exprs),), False


def _argument_names(args: tuple[sp.Symbol, ...], printer: CodePrinter) -> dict[sp.Symbol, str]:
    """Each argument's printed name; symbols whose names are not identifiers (``sigma_w^2``)
    are printed as ``_arg{i}``, so the source is the same in every process (no Dummy numbers)."""
    names = {}
    for i, arg in enumerate(args):
        if not isinstance(arg, sp.Symbol):
            raise TypeError(f"arguments must be SymPy symbols, got {arg!r}")
        name = printer.doprint(arg)
        names[arg] = name if name.isidentifier() and not keyword.iskeyword(name) else f"_arg{i}"
    return names


def print_function(
    args: Sequence[sp.Symbol],
    exprs: sp.Expr | Sequence[sp.Expr],
    target: Target,
    cse: bool = False,
    name: str = FUNCTION_NAME,
) -> PrintedFunction:
    """The source of ``def name(*args)`` returning `exprs` (a tuple if `exprs` is a sequence),
    printed for `target`; with cse=True common subexpressions are assigned once (SymPy's `cse`).

    Raises NotImplementedError (SymPy's printers' error) for a function the target cannot print.
    """
    args = tuple(args)
    outputs, as_sequence = _as_tuple(exprs)
    printer = target.new_printer()
    names = _argument_names(args, printer)
    renamed = {a: sp.Symbol(n, **a.assumptions0) for a, n in names.items() if n != a.name}
    if renamed:
        outputs = tuple(e.xreplace(renamed) for e in outputs)
    assignments, outputs = sp.cse(list(outputs)) if cse else ([], list(outputs))
    lines = [f"def {name}({', '.join(names.values())}):"]
    lines += [f"    {printer.doprint(s)} = {printer.doprint(e)}" for s, e in assignments]
    printed = [printer.doprint(e) for e in outputs]
    returned = f"({', '.join(printed)},)" if as_sequence else printed[0]
    lines.append(f"    return {returned}")
    return PrintedFunction("\n".join(lines) + "\n", tuple(sorted(printer.module_imports)))


def namespace(modules: Sequence[str]) -> dict[str, object]:
    """The globals in which printed code runs: each named module imported, bound to its top-level
    package name (``ntk_sym.numeric.special.erf`` resolves through ``ntk_sym``)."""
    out = {}
    for module in modules:
        importlib.import_module(module)
        top = module.split(".")[0]
        out[top] = importlib.import_module(top)
    return out


_COMPILED: dict[tuple, Callable] = {}


def compile_function(
    args: Sequence[sp.Symbol],
    exprs: sp.Expr | Sequence[sp.Expr],
    target: Target,
    cse: bool = False,
) -> Callable:
    """``f(*args) -> exprs`` for `target` (a tuple if `exprs` is a sequence), printed by
    `print_function` and compiled once per (exprs, args, target, cse) in this process."""
    args = tuple(args)
    key = (_as_tuple(exprs), args, target, cse)
    if key not in _COMPILED:
        printed = print_function(args, exprs, target, cse)
        scope = namespace(printed.modules)
        exec(printed.source, scope)  # noqa: S102  (source printed by SymPy's printer above)
        fn = scope[FUNCTION_NAME]
        fn.__doc__ = f"{target.name}: ({', '.join(map(str, args))}) ↦ {exprs}"
        _COMPILED[key] = fn
    return _COMPILED[key]


__all__ = ["MPMATH", "PrintedFunction", "Target", "compile_function", "print_function"]
