"""Private Numba kernels: arrays and scalars in, no validation, I/O or logging."""
