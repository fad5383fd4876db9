"""Plain-NumPy/SciPy oracles for path-paired moments, regularised CCA and the CTW loop. Tests only.

Written differently from the service on purpose: the paired samples are materialised (X[path[:, 0]],
Y[path[:, 1]]), CCA is solved as the symmetric generalised eigenproblem of Hotelling's block form
[[0, Cxy], [Cyx, 0]] w = rho [[Cxx, 0], [0, Cyy]] w, and the DTW steps use the reference DTW.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from warpsync.align.reference.dtw import cost_matrix_ref, dtw_ref


def path_moments_ref(X, Y, path):
    """(cx, cy, mean_x, mean_y, Cxx, Cyy, Cxy) of the path-paired samples, covariances normalised by k."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    path = np.asarray(path)
    Xp = X[path[:, 0]]
    Yp = Y[path[:, 1]]
    k = len(path)
    cx = np.bincount(path[:, 0], minlength=len(X)).astype(float)
    cy = np.bincount(path[:, 1], minlength=len(Y)).astype(float)
    mx = Xp.mean(axis=0)
    my = Yp.mean(axis=0)
    Xc = Xp - mx
    Yc = Yp - my
    return cx, cy, mx, my, Xc.T @ Xc / k, Yc.T @ Yc / k, Xc.T @ Yc / k


def cca_ref(X, Y, path, dim: int, reg: float):
    """(Wx, Wy, corr, mx, my) by the generalised eigenproblem; ridge reg * trace(C)/d on each covariance."""
    _, _, mx, my, Cxx, Cyy, Cxy = path_moments_ref(X, Y, path)
    dx, dy = Cxx.shape[0], Cyy.shape[0]
    Cxx = Cxx + reg * np.trace(Cxx) / dx * np.eye(dx)
    Cyy = Cyy + reg * np.trace(Cyy) / dy * np.eye(dy)
    A = np.zeros((dx + dy, dx + dy))
    A[:dx, dx:] = Cxy
    A[dx:, :dx] = Cxy.T
    B = np.zeros_like(A)
    B[:dx, :dx] = Cxx
    B[dx:, dx:] = Cyy
    rho, Wv = scipy.linalg.eigh(A, B)  # ascending; eigenvectors B-orthonormal: w^T B w = 1
    order = np.argsort(rho)[::-1][:dim]
    # w^T B w = 1 splits as wx^T Cxx wx = wy^T Cyy wy = 1/2 for rho != 0: rescale each side to unit variance
    Wx = Wv[:dx, order] * np.sqrt(2.0)
    Wy = Wv[dx:, order] * np.sqrt(2.0)
    return Wx, Wy, rho[order], mx, my


def uniform_path_ref(n: int, m: int) -> np.ndarray:
    L = max(n, m)
    if L == 1:
        return np.zeros((1, 2), dtype=np.int64)
    return np.array([[round_half_up(t * (n - 1) / (L - 1)), round_half_up(t * (m - 1) / (L - 1))] for t in range(L)])


def round_half_up(v: float) -> int:
    return int(np.floor(v + 0.5))


def ctw_ref(X, Y, dim: int, reg: float, max_iter: int, tol: float, step_pattern: str = "symmetric2"):
    """(best path, best objective, history, converged): the same alternation and stopping rule as `ctw`."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    path = uniform_path_ref(len(X), len(Y))
    history = []
    best = None
    prev = None
    converged = False
    for _ in range(max_iter):
        Wx, Wy, _, mx, my = cca_ref(X, Y, path, dim, reg)
        C = cost_matrix_ref((X - mx) @ Wx, (Y - my) @ Wy, "sqeuclidean")
        dist, _, p, _ = dtw_ref(C, step_pattern)
        p = np.asarray(p, dtype=np.int64)
        history.append(dist)
        if best is None or dist < best[0]:
            best = (dist, p)
        if prev is not None and np.array_equal(p, prev):
            converged = True
            break
        if len(history) >= 2 and abs(history[-2] - dist) <= tol * max(abs(history[-2]), 1e-300):
            converged = True
            break
        prev = p
        path = p
    return best[1], best[0], np.asarray(history), converged
