"""Regularised canonical correlation analysis (CCA), optionally on path-paired samples (for CTW).

Given paired samples (x_p, y_p), CCA finds projections Wx (dx, k), Wy (dy, k) such that the projected variates
u = Wx^T (x - mx), v = Wy^T (y - my) have identity covariance (each side) and maximal correlation, pair by pair,
i.e. minimal E|u - v|^2 = 2 (k - sum of correlations). Regularisation adds a ridge to each covariance,
C + reg * (trace(C) / d) * I: relative to the features' scale, so `reg` means the same for any units.

Solution: whiten each side with C^{-1/2} (symmetric eigendecomposition), take the SVD of the whitened cross
covariance; the singular values are the canonical correlations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.kernels import cca as K
from warpsync.errors import AlignmentError

__all__ = ["CCAResult", "cca"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CCAResult:
    """Result of `cca`.

    Wx: (dx, k) projection of X; Wy: (dy, k) projection of Y. Apply as (X - mean_x) @ Wx.
    corr: (k,) canonical correlations, descending, in [0, 1] (regularisation shrinks them).
    mean_x, mean_y: the (path-weighted) means removed before projecting.
    """

    Wx: np.ndarray
    Wy: np.ndarray
    corr: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray

    def transform(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (n, dx) and (m, dy) frames into the shared k-dimensional canonical space."""
        return (X - self.mean_x) @ self.Wx, (Y - self.mean_y) @ self.Wy


def _check_reg(reg) -> float:
    if isinstance(reg, (bool, np.bool_)) or not isinstance(reg, (int, float, np.integer, np.floating)):
        raise AlignmentError(f"reg must be a number >= 0, got {reg!r}")
    r = float(reg)
    if not np.isfinite(r) or r < 0.0:
        raise AlignmentError(f"reg must be a finite number >= 0 (a relative ridge, e.g. 0.01), got {reg!r}")
    return r


def _check_dim(dim, dx: int, dy: int) -> int:
    if dim is None:
        return min(dx, dy)
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= min(dx, dy):
        raise AlignmentError(
            f"dim must be an integer in [1, min(dx, dy)] = [1, {min(dx, dy)}] (or None for the maximum), got {dim!r}"
        )
    return int(dim)


def _inv_sqrt(C: np.ndarray, reg: float, name: str) -> np.ndarray:
    d = C.shape[0]
    ridge = reg * (np.trace(C) / d) if d else 0.0
    w, U = np.linalg.eigh(C + ridge * np.eye(d))
    top = w.max() if w.size else 0.0
    if top <= 0.0 or w.min() <= 1e-12 * top:
        raise AlignmentError(
            f"the covariance of {name} is singular (constant or linearly dependent features, or too few distinct "
            "frames on the path); use reg > 0 (e.g. 0.01) or drop the redundant features"
        )
    return (U / np.sqrt(w)) @ U.T


def _check_path(path, n: int, m: int) -> np.ndarray:
    p = np.asarray(path)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0 or p.dtype.kind not in "iu":
        raise AlignmentError("path must be a non-empty (k, 2) integer array of [i, j] pairs")
    p = np.ascontiguousarray(p, dtype=np.int64)
    if p[:, 0].min() < 0 or p[:, 0].max() >= n or p[:, 1].min() < 0 or p[:, 1].max() >= m:
        raise AlignmentError(f"path indexes frames outside X (n={n}) or Y (m={m})")
    return p


def _cca_paired(X: np.ndarray, Y: np.ndarray, path: np.ndarray, dim: int, reg: float) -> CCAResult:
    """CCA on validated float64 X (n, dx), Y (m, dy) and path (k, 2) int64."""
    n, dx = X.shape
    m, dy = Y.shape
    k = path.shape[0]
    cx = np.empty(n)
    cy = np.empty(m)
    sx = np.empty(dx)
    sy = np.empty(dy)
    Sxy = np.empty((dx, dy))
    K.path_moments(X, Y, path, cx, cy, sx, sy, Sxy)
    mx = sx / k
    my = sy / k
    Xc = X - mx
    Yc = Y - my
    Cxx = (Xc * cx[:, None]).T @ Xc / k
    Cyy = (Yc * cy[:, None]).T @ Yc / k
    Cxy = Sxy / k
    Ax = _inv_sqrt(Cxx, reg, "X")
    Ay = _inv_sqrt(Cyy, reg, "Y")
    U, s, Vt = np.linalg.svd(Ax @ Cxy @ Ay)
    Wx = Ax @ U[:, :dim]
    Wy = Ay @ Vt[:dim].T
    return CCAResult(Wx, Wy, np.clip(s[:dim], 0.0, 1.0), mx, my)


def cca(X, Y, *, dim: int | None = None, reg: float = 0.01, path=None) -> CCAResult:
    """Regularised CCA between X (n, dx) and Y (m, dy).

    dim: number of canonical pairs kept, 1..min(dx, dy); default min(dx, dy).
    reg: relative ridge (>= 0) added to each covariance: C + reg * trace(C)/d * I; default 0.01.
    path: (k, 2) int pairs [i, j] saying which X frame goes with which Y frame (e.g. a DTW path; frames may
        repeat). Without it X and Y must have the same number of frames, paired row by row.

    Raises AlignmentError for bad input and for singular covariances (then use reg > 0).
    """
    Xa = V.as_series(X, "X")
    Ya = V.as_series(Y, "Y")
    r = _check_reg(reg)
    k = _check_dim(dim, Xa.shape[1], Ya.shape[1])
    if path is None:
        if Xa.shape[0] != Ya.shape[0]:
            raise AlignmentError(
                f"X has {Xa.shape[0]} frames and Y has {Ya.shape[0]}; pair them with path=(k, 2) pairs "
                "or pass equally long sequences"
            )
        p = np.repeat(np.arange(Xa.shape[0], dtype=np.int64)[:, None], 2, axis=1)
    else:
        p = _check_path(path, Xa.shape[0], Ya.shape[0])
    return _cca_paired(Xa, Ya, p, k, r)
