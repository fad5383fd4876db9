"""Many DTW distances at once, in parallel across cores (Numba `prange` over pairs).

Each pair runs the same kernels as `dtw(..., return_path=False)`: the four-row blocked kernel for 1-D
squared-difference series, the three-neighbour band kernel otherwise. Only the three-neighbour patterns
(symmetric1, symmetric2) are batched; other patterns go through `dtw` one pair at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.cost import unit_rows
from warpsync.align.kernels import dtw as K
from warpsync.align.steps import SYMMETRIC_FAST
from warpsync.errors import AlignmentError

__all__ = ["dtw_all_pairs", "dtw_cross", "dtw_pairs"]

_CODES = {"sqeuclidean": 0, "euclidean": 1, "cosine": 2}


def _pack(series: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(series, np.ndarray) and series.ndim in (2, 3) and series.dtype.kind in "fiub":
        items = list(series)
    else:
        try:
            items = list(series)
        except TypeError:
            raise AlignmentError(f"{name} must be a sequence of series (arrays)") from None
    if not items:
        raise AlignmentError(f"{name} is empty; pass at least one series")
    arrs = [V.as_series(a, f"{name}[{k}]") for k, a in enumerate(items)]
    d = arrs[0].shape[1]
    for k, a in enumerate(arrs):
        if a.shape[1] != d:
            raise AlignmentError(f"{name}[{k}] has {a.shape[1]} features, {name}[0] has {d}; all must match")
    offsets = np.zeros(len(arrs) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrs], out=offsets[1:])
    return np.ascontiguousarray(np.concatenate(arrs, axis=0)), offsets


def _radius(window) -> int:
    if window is None:
        return -1
    if (
        isinstance(window, tuple)
        and len(window) == 2
        and window[0] == "sakoechiba"
        and isinstance(window[1], (int, np.integer))
        and not isinstance(window[1], bool)
        and window[1] >= 0
    ):
        return int(window[1])
    raise AlignmentError(f"batch DTW supports window=None or ('sakoechiba', radius >= 0); got {window!r}")


def _run(A, aoff, B, boff, pi, pj, metric, step_pattern, window):
    if step_pattern not in SYMMETRIC_FAST:
        raise AlignmentError(
            f"batch DTW runs symmetric1 or symmetric2; for {step_pattern!r} call warpsync.align.dtw per pair"
        )
    if metric not in _CODES:
        raise AlignmentError(f"batch metric must be one of {sorted(_CODES)}, got {metric!r}")
    if A.shape[1] != B.shape[1]:
        raise AlignmentError(f"series have {A.shape[1]} and {B.shape[1]} features; they must match")
    wd = SYMMETRIC_FAST[step_pattern]
    r = _radius(window)
    if metric == "cosine":
        for nm, a in (("series", A), ("series", B)):
            if np.any(np.einsum("ij,ij->i", a, a) == 0.0):
                raise AlignmentError(f"{nm} contain an all-zero frame; the cosine distance is undefined there")
        A, B = unit_rows(A), unit_rows(B)
    if metric == "sqeuclidean" and A.shape[1] == 1 and A is B:
        out = K.batch_pairs_1d(A[:, 0], aoff, pi, pj, r, wd)
    else:
        out = K.batch_pairs_nd(A, B, _CODES[metric], aoff, boff, pi, pj, r, wd)
    if not np.all(np.isfinite(out)):
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise AlignmentError(
            f"pair ({int(pi[bad])}, {int(pj[bad])}) admits no path within {window!r}; widen the Sakoe–Chiba radius "
            "to at least the difference of their lengths"
        )
    return out


def dtw_pairs(series, pairs, *, metric: str = "sqeuclidean", step_pattern: str = "symmetric2", window=None):
    """DTW distances of `pairs` ((p, 2) int indices into `series`), computed in parallel; returns (p,)."""
    A, off = _pack(series, "series")
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2 or p.dtype.kind not in "iu":
        raise AlignmentError("pairs must be a (p, 2) integer array of series indices")
    if p.size and (p.min() < 0 or p.max() >= len(off) - 1):
        raise AlignmentError(f"pairs index series 0..{len(off) - 2} only")
    pi = np.ascontiguousarray(p[:, 0], dtype=np.int64)
    pj = np.ascontiguousarray(p[:, 1], dtype=np.int64)
    return _run(A, off, A, off, pi, pj, metric, step_pattern, window)


def dtw_all_pairs(series, *, metric: str = "sqeuclidean", step_pattern: str = "symmetric2", window=None) -> np.ndarray:
    """Symmetric (k, k) matrix of DTW distances between all series (zero diagonal), in parallel.

    Uses symmetry: k(k-1)/2 alignments. For symmetric1/symmetric2 and a Sakoe–Chiba window, D[i, j] == D[j, i].
    """
    A, off = _pack(series, "series")
    k = len(off) - 1
    iu, ju = np.triu_indices(k, 1)
    out = np.zeros((k, k))
    if len(iu):
        vals = _run(A, off, A, off, iu.astype(np.int64), ju.astype(np.int64), metric, step_pattern, window)
        out[iu, ju] = vals
        out[ju, iu] = vals
    return out


def dtw_cross(series_a, series_b, *, metric: str = "sqeuclidean", step_pattern: str = "symmetric2", window=None):
    """(ka, kb) matrix of DTW distances between every series of `series_a` and every series of `series_b`."""
    A, aoff = _pack(series_a, "series_a")
    B, boff = _pack(series_b, "series_b")
    ka, kb = len(aoff) - 1, len(boff) - 1
    pi, pj = np.meshgrid(np.arange(ka, dtype=np.int64), np.arange(kb, dtype=np.int64), indexing="ij")
    vals = _run(A, aoff, B, boff, pi.ravel().copy(), pj.ravel().copy(), metric, step_pattern, window)
    return vals.reshape(ka, kb)
