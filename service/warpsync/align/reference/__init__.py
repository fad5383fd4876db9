"""Slow plain-NumPy oracles for the alignment kernels. Tests only: never imported by the service."""
