"""The convolutional kernel engine (NumPy/CuPy only, no SymPy): see `engine`."""
