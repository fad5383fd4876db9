"""Canonical time warping (Zhou & De la Torre 2009): align streams of different modality and dimension.

CTW looks for a warping path P and projections Wx (dx, k), Wy (dy, k) that minimise

    J(P, Wx, Wy) = sum over cells (i, j) of P of |Wx^T (x_i - mx) - Wy^T (y_j - my)|^2,

subject to the projected variates having identity covariance over the path (CCA's constraint, with a relative
ridge `reg`). It alternates the two exact sub-problems: with the projections fixed, DTW on the projected
features finds the path; with the path fixed, regularised CCA on the path-paired frames finds the projections.
The loop starts from the uniform (diagonal) path and stops when the objective, measured after each DTW step,
changes by less than `tol` relative to the previous one, or when the path repeats (a fixed point), or after
`max_iter` iterations; the best (lowest J) solution seen is returned with the whole objective history.

DTW needs equal dimensions and comparable units; CTW needs neither, since CCA learns the map between the
feature spaces. (tslearn's ctw stops after one refit because it compares a path with itself; here the
convergence test is real and its history is returned.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.cca import _cca_paired, _check_dim, _check_reg
from warpsync.align.dtw import dtw
from warpsync.errors import AlignmentError

__all__ = ["CTWResult", "ctw", "uniform_path"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CTWResult:
    """Result of `ctw`.

    path: (k, 2) int64 [i, j] warping path of the best iteration (X frame i with Y frame j).
    Wx, Wy: (dx, dim), (dy, dim) projections fitted by CCA on the returned path; mean_x, mean_y: their centring.
    corr: (dim,) canonical correlations on the returned path.
    objective: J of the best iteration (sum over path cells of squared projected distance; step-pattern weighted).
    history: (iterations,) J after each DTW step, in order.
    converged: True if the relative change fell below tol or the path reached a fixed point before max_iter.
    n_iter: DTW steps taken.
    """

    path: np.ndarray
    Wx: np.ndarray
    Wy: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    corr: np.ndarray
    objective: float
    history: np.ndarray
    converged: bool
    n_iter: int

    def transform(self, X, Y) -> tuple[np.ndarray, np.ndarray]:
        """Project frames of X and Y into the shared space the path was found in."""
        Xa = V.as_series(X, "X")
        Ya = V.as_series(Y, "Y")
        return (Xa - self.mean_x) @ self.Wx, (Ya - self.mean_y) @ self.Wy


def uniform_path(n: int, m: int) -> np.ndarray:
    """The straight warping path from (0, 0) to (n-1, m-1): max(n, m) cells, steps (1, 0), (0, 1) or (1, 1)."""
    L = max(n, m)
    t = np.arange(L)
    if L == 1:
        return np.zeros((1, 2), dtype=np.int64)
    i = np.floor(t * (n - 1) / (L - 1) + 0.5).astype(np.int64)
    j = np.floor(t * (m - 1) / (L - 1) + 0.5).astype(np.int64)
    return np.stack([i, j], axis=1)


def _check_positive_int(v, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise AlignmentError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


def _check_tol(tol) -> float:
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise AlignmentError(f"tol must be a number >= 0, got {tol!r}")
    t = float(tol)
    if not np.isfinite(t) or t < 0:
        raise AlignmentError(f"tol must be a finite relative tolerance >= 0 (e.g. 1e-4), got {tol!r}")
    return t


def ctw(
    X,
    Y,
    *,
    dim: int | None = None,
    reg: float = 0.01,
    max_iter: int = 20,
    tol: float = 1e-4,
    step_pattern: str = "symmetric2",
    window=None,
    init_path=None,
) -> CTWResult:
    """Canonical time warping between X (n, dx) and Y (m, dy); dx and dy may differ.

    dim: canonical dimensions used for the alignment, 1..min(dx, dy); default min(dx, dy).
    reg: relative ridge of the CCA covariances (C + reg * trace(C)/d * I), >= 0; default 0.01.
    max_iter: most DTW steps; default 20. tol: relative change of the objective that counts as converged
        (default 1e-4).
    step_pattern, window: passed to `warpsync.align.dtw` for the DTW steps (default symmetric2, no window).
    init_path: (k, 2) path to start from (default: the uniform diagonal path).

    Raises AlignmentError for bad input, singular covariances (raise reg) and windows that admit no path.
    """
    Xa = V.as_series(X, "X")
    Ya = V.as_series(Y, "Y")
    n, m = Xa.shape[0], Ya.shape[0]
    r = _check_reg(reg)
    k = _check_dim(dim, Xa.shape[1], Ya.shape[1])
    iters = _check_positive_int(max_iter, "max_iter")
    tol_ = _check_tol(tol)
    if init_path is None:
        path = uniform_path(n, m)
    else:
        from warpsync.align.cca import _check_path

        path = _check_path(init_path, n, m)

    history: list[float] = []
    best = None
    converged = False
    prev_path = None
    for it in range(iters):
        model = _cca_paired(Xa, Ya, path, k, r)
        Zx = (Xa - model.mean_x) @ model.Wx
        Zy = (Ya - model.mean_y) @ model.Wy
        res = dtw(Zx, Zy, metric="sqeuclidean", step_pattern=step_pattern, window=window)
        J = float(res.distance)
        history.append(J)
        if best is None or J < best[0]:
            best = (J, res.path, model)
        log.debug("ctw iteration %d: objective %.6g, path length %d", it, J, len(res.path))
        if prev_path is not None and np.array_equal(res.path, prev_path):
            converged = True  # the next CCA sees the same path: a fixed point
            break
        if len(history) >= 2 and abs(history[-2] - J) <= tol_ * max(abs(history[-2]), 1e-300):
            converged = True
            break
        prev_path = res.path
        path = res.path
    J, bpath, _ = best
    # projections and correlations that belong to the returned path
    model = _cca_paired(Xa, Ya, bpath, k, r)
    return CTWResult(
        path=bpath,
        Wx=model.Wx,
        Wy=model.Wy,
        mean_x=model.mean_x,
        mean_y=model.mean_y,
        corr=model.corr,
        objective=J,
        history=np.asarray(history),
        converged=converged,
        n_iter=len(history),
    )
