"""Multiscale (coarse-to-fine) DTW for long sequences in bounded memory, after Müller et al.'s MrMsDTW.

1. Build a pyramid by averaging blocks of `factor` frames until both sequences have at most `coarsest`
   frames.
2. Align the coarsest level exactly (full DTW with path).
3. Project the path one level down (every coarse cell covers factor × factor fine cells), widen it by
   `radius` fine frames in every direction, and run banded DTW inside that corridor — exact within the
   corridor. Repeat down to the input resolution.

Memory at the finest level is one byte per corridor cell (back-pointers) plus two corridor rows of float64,
so about n · (corridor width) bytes instead of n · m · 8. The result can differ from unconstrained DTW only
where the true optimum leaves the corridor; `bench_kernels.py` reports how often that happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from warpsync.align import _validate as V
from warpsync.align.cost import unit_rows
from warpsync.align.dtw import _transposed
from warpsync.align.kernels import dtw as K
from warpsync.align.steps import SYMMETRIC_FAST
from warpsync.align.windows import full_band
from warpsync.errors import AlignmentError

__all__ = ["MultiscaleResult", "downsample", "dtw_multiscale", "path_agreement", "project_band"]

_CODES = {"sqeuclidean": 0, "euclidean": 1, "cosine": 2}


@dataclass(frozen=True)
class MultiscaleResult:
    """distance and path (k, 2) int64 at the input resolution; `levels` the (n, m) of each level, coarse first;
    `band_cells` the number of cells evaluated at each level."""

    distance: float
    path: np.ndarray
    normalized_distance: float
    levels: tuple[tuple[int, int], ...]
    band_cells: tuple[int, ...]


def downsample(X: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping blocks of `factor` frames (the last block may be shorter)."""
    n, d = X.shape
    nb = -(-n // factor)
    pad = nb * factor - n
    if pad:
        tail = X[n - (factor - pad) :].mean(axis=0, keepdims=True)
        full = X[: n - (factor - pad)].reshape(-1, factor, d).mean(axis=1)
        return np.ascontiguousarray(np.vstack([full, tail]))
    return np.ascontiguousarray(X.reshape(nb, factor, d).mean(axis=1))


def project_band(path: np.ndarray, n: int, m: int, factor: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Corridor at the finer level: the fine cells under each coarse path cell, widened by `radius` frames."""
    nc = -(-n // factor)
    jmin = np.full(nc, np.iinfo(np.int64).max, dtype=np.int64)
    jmax = np.full(nc, -1, dtype=np.int64)
    np.minimum.at(jmin, path[:, 0], path[:, 1])
    np.maximum.at(jmax, path[:, 0], path[:, 1])
    rows = np.arange(n) // factor
    lo = jmin[rows] * factor
    hi = (jmax[rows] + 1) * factor
    if radius > 0:
        size = 2 * radius + 1
        lo = minimum_filter1d(lo, size, mode="nearest")
        hi = maximum_filter1d(hi, size, mode="nearest")
    lo = np.clip(lo - radius, 0, m).astype(np.int64)
    hi = np.clip(hi + radius, 0, m).astype(np.int64)
    lo[0] = 0
    hi[-1] = m
    return lo, hi


def _positive_int(v, name, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise AlignmentError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def dtw_multiscale(
    X,
    Y,
    *,
    metric: str = "sqeuclidean",
    step_pattern: str = "symmetric2",
    factor: int = 4,
    radius: int = 8,
    coarsest: int = 2000,
) -> MultiscaleResult:
    """Coarse-to-fine DTW of X (n,) / (n, d) and Y (m,) / (m, d) with path, for n, m up to 10^6 and beyond.

    factor: downsampling factor between levels (>= 2). radius: corridor half-width added around the projected
    path at each level, in frames of that level (>= 1). coarsest: stop downsampling when both sequences have at
    most this many frames. Patterns: symmetric1, symmetric2.
    """
    if step_pattern not in SYMMETRIC_FAST:
        raise AlignmentError(f"multiscale DTW runs symmetric1 or symmetric2, got {step_pattern!r}")
    if metric not in _CODES:
        raise AlignmentError(f"multiscale metric must be one of {sorted(_CODES)}, got {metric!r}")
    factor = _positive_int(factor, "factor", 2)
    radius = _positive_int(radius, "radius", 1)
    coarsest = _positive_int(coarsest, "coarsest", 2)
    Xa, Ya = V.pair(X, Y, metric)
    code = _CODES[metric]
    if code == 2:
        Xa, Ya = unit_rows(Xa), unit_rows(Ya)
    wd = SYMMETRIC_FAST[step_pattern]
    pyramid = [(Xa, Ya)]
    while (
        max(len(pyramid[-1][0]), len(pyramid[-1][1])) > coarsest
        and min(len(pyramid[-1][0]), len(pyramid[-1][1])) >= 2 * factor
    ):
        a, b = pyramid[-1]
        a2, b2 = downsample(a, factor), downsample(b, factor)
        if code == 2:
            a2, b2 = _renorm(a2), _renorm(b2)
        pyramid.append((a2, b2))
    levels = []
    cells = []
    path = None
    dist = np.inf
    for level, (a, b) in enumerate(reversed(pyramid)):
        n, m = len(a), len(b)
        if path is None:
            lo, hi = full_band(n, m)
        else:
            lo, hi = project_band(path, n, m, factor, radius)
        rowptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=rowptr[1:])
        last, dirs = K.sym_fill(a, b, _transposed(a, b), code, lo, hi, rowptr, wd, True)
        dist = float(last[m - 1])
        if not np.isfinite(dist):
            raise AlignmentError(f"multiscale corridor at level {level} ({n}x{m}) admits no path; increase radius")
        path = K.sym_backtrack(dirs, lo, rowptr, n - 1, m - 1)
        del dirs
        levels.append((n, m))
        cells.append(int(rowptr[-1]))
    n, m = len(Xa), len(Ya)
    nd = dist / (n + m) if step_pattern != "symmetric1" else float("nan")
    return MultiscaleResult(dist, path, nd, tuple(levels), tuple(cells))


def _renorm(a: np.ndarray) -> np.ndarray:
    nrm = np.sqrt(np.einsum("ij,ij->i", a, a))
    nrm[nrm == 0] = 1.0
    return a / nrm[:, None]


def path_agreement(path: np.ndarray, reference: np.ndarray, tol: int = 1) -> float:
    """Fraction of the cells (i, j) of `path` lying within `tol` columns of `reference`'s cells in row i."""
    p = np.asarray(path, dtype=np.int64)
    q = np.asarray(reference, dtype=np.int64)
    n = int(max(p[:, 0].max(), q[:, 0].max())) + 1
    jmin = np.full(n, np.iinfo(np.int64).max // 4, dtype=np.int64)
    jmax = np.full(n, -(np.iinfo(np.int64).max // 4), dtype=np.int64)
    np.minimum.at(jmin, q[:, 0], q[:, 1])
    np.maximum.at(jmax, q[:, 0], q[:, 1])
    dev = np.maximum(np.maximum(jmin[p[:, 0]] - p[:, 1], p[:, 1] - jmax[p[:, 0]]), 0)
    return float(np.mean(dev <= tol))
