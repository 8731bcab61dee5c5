"""The symbolic side: activations and their Gaussian duals, layer recursions, stable rewrites,
the gradient-flow solution, and the mpmath references. SymPy and mpmath only: nothing here
imports the numeric engine or the compile step.
"""
