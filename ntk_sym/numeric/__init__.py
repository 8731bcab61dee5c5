"""The numeric side: the tiled Gram engine, stable angles, backends (NumPy, CuPy, Dask).

Nothing here imports SymPy: the engine consumes compiled duals (`ntk_sym.numeric.dual`).
"""
