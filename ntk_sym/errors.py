"""Exceptions raised for bad input, each naming the problem."""


class NTKSymError(ValueError):
    """Base class: a value or expression ntk_sym cannot work with."""


class UnknownActivationError(NTKSymError, KeyError):
    """An activation name that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ExpressionError(NTKSymError):
    """A SymPy expression that cannot serve as an activation."""


class InputError(NTKSymError):
    """Arrays of the wrong shape, dtype or with non-finite entries."""


class ToleranceError(NTKSymError):
    """An accuracy that cannot be certified; the message says what was reached."""
