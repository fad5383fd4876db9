"""Plain-NumPy soft-DTW oracle (Cuturi & Blondel 2017, Algorithms 1 and 2), written cell by cell. Tests only.

Independent of the kernel's tricks: the forward pass is the textbook soft-min with a max shift, the backward
pass recomputes its three exponentials per cell from R (the kernel stores the soft-min weights instead).
"""

from __future__ import annotations

import numpy as np


def sqeuclidean_cost(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    C = np.empty((len(X), len(Y)))
    for i in range(len(X)):
        for j in range(len(Y)):
            C[i, j] = float(np.sum((X[i] - Y[j]) ** 2))
    return C


def _softmin(a: float, b: float, c: float, gamma: float) -> float:
    vals = np.array([a, b, c]) / -gamma
    mx = np.max(vals)
    return -gamma * (np.log(np.sum(np.exp(vals - mx))) + mx)


def soft_dtw_ref(C: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """(value, E) for cost matrix C (n, m): E = d value / d C."""
    C = np.asarray(C, dtype=np.float64)
    n, m = C.shape
    R = np.full((n + 2, m + 2), np.inf)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = C[i - 1, j - 1] + _softmin(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1], gamma)
    value = float(R[n, m])
    # Algorithm 2: E over the padded grid, with the convention R[n+1, m+1] = R[n, m] and C = 0 outside.
    Cp = np.zeros((n + 2, m + 2))
    Cp[1 : n + 1, 1 : m + 1] = C
    R[:, m + 1] = -np.inf
    R[n + 1, :] = -np.inf
    R[n + 1, m + 1] = R[n, m]
    Ep = np.zeros((n + 2, m + 2))
    Ep[n + 1, m + 1] = 1.0
    for j in range(m, 0, -1):
        for i in range(n, 0, -1):
            a = np.exp((R[i + 1, j] - R[i, j] - Cp[i + 1, j]) / gamma)
            b = np.exp((R[i, j + 1] - R[i, j] - Cp[i, j + 1]) / gamma)
            c = np.exp((R[i + 1, j + 1] - R[i, j] - Cp[i + 1, j + 1]) / gamma)
            Ep[i, j] = Ep[i + 1, j] * a + Ep[i, j + 1] * b + Ep[i + 1, j + 1] * c
    return value, Ep[1 : n + 1, 1 : m + 1].copy()


def soft_dtw_grad_x_ref(X: np.ndarray, Y: np.ndarray, gamma: float) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, dvalue/dX, E) for the squared-Euclidean cost, by the chain rule written as loops."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    value, E = soft_dtw_ref(sqeuclidean_cost(X, Y), gamma)
    G = np.zeros_like(X)
    for i in range(len(X)):
        for j in range(len(Y)):
            G[i] += E[i, j] * 2.0 * (X[i] - Y[j])
    return value, G, E
