"""Local cost matrices between the frames of two sequences (BLAS for the inner products)."""

from __future__ import annotations

import numpy as np

from warpsync.align._validate import pair

__all__ = ["cost_matrix", "unit_rows"]


def unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (rows must be non-zero; the public layer checks)."""
    return a / np.sqrt(np.einsum("ij,ij->i", a, a))[:, None]


def _cost_matrix(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """(n, m) local costs for validated float64 (n, d), (m, d) inputs; metric sqeuclidean|euclidean|cosine."""
    if metric == "cosine":
        C = 1.0 - unit_rows(X) @ unit_rows(Y).T
        np.maximum(C, 0.0, out=C)
        return C
    if X.shape[1] < 4:
        # few features: direct differences are as fast as BLAS and exact
        C = np.zeros((X.shape[0], Y.shape[0]))
        for k in range(X.shape[1]):
            diff = X[:, k][:, None] - Y[:, k][None, :]
            C += diff * diff
    else:
        # |x|^2 + |y|^2 - 2 <x, y> with one GEMM; rounding can go slightly negative, clipped at 0
        C = X @ Y.T
        C *= -2.0
        C += np.einsum("ij,ij->i", X, X)[:, None]
        C += np.einsum("ij,ij->i", Y, Y)[None, :]
        np.maximum(C, 0.0, out=C)
    if metric == "euclidean":
        np.sqrt(C, out=C)
    return C


def cost_matrix(X, Y, metric: str = "sqeuclidean") -> np.ndarray:
    """Local cost matrix C[i, j] = cost(X[i], Y[j]) for 1-D or (n, d) inputs.

    metric: "sqeuclidean" (default), "euclidean" or "cosine" (1 - cos angle). Raises AlignmentError on bad input.
    """
    Xa, Ya = pair(X, Y, metric if metric != "precomputed" else "invalid")
    return _cost_matrix(Xa, Ya, metric)
