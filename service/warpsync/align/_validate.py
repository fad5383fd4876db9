"""Input validation shared by the public align functions: one clear AlignmentError per problem."""

from __future__ import annotations

import numpy as np

from warpsync.errors import AlignmentError

METRICS = ("sqeuclidean", "euclidean", "cosine", "precomputed")


def as_series(a, name: str) -> np.ndarray:
    """A 1-D (n,) or 2-D (n, d) finite float array → contiguous float64 (n, d); 1-D becomes (n, 1)."""
    if a is None:
        raise AlignmentError(f"{name} is None; pass a 1-D or (n, d) array")
    try:
        arr = np.asarray(a)
    except Exception:  # noqa: BLE001 - anything numpy cannot take is the caller's error
        raise AlignmentError(f"{name} must be array-like of numbers") from None
    if arr.dtype.kind not in "fiub":
        raise AlignmentError(f"{name} must be numeric (float/int), got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise AlignmentError(f"{name} must be 1-D (n,) or 2-D (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise AlignmentError(f"{name} is empty; DTW needs at least one frame on each side")
    if arr.shape[1] == 0:
        raise AlignmentError(f"{name} has zero feature dimensions")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise AlignmentError(f"{name} contains NaN or inf; drop or interpolate those frames first")
    return arr


def as_cost_matrix(c, name: str = "X") -> np.ndarray:
    """A precomputed (n, m) cost matrix: finite, non-negative float64."""
    try:
        arr = np.asarray(c)
    except Exception:  # noqa: BLE001
        raise AlignmentError(f"{name} must be an (n, m) cost matrix") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.dtype.kind not in "fiub":
        raise AlignmentError(f"with metric='precomputed', {name} must be a non-empty numeric (n, m) cost matrix")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise AlignmentError(f"{name} (cost matrix) contains NaN or inf; mask cells with a band instead")
    if np.any(arr < 0):
        raise AlignmentError(f"{name} (cost matrix) has negative entries; DTW needs non-negative local costs")
    return arr


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise AlignmentError(f"unknown metric {metric!r}; use one of {METRICS}")
    return metric


def pair(X, Y, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate X and Y for `metric`; returns (X, Y) as float64 (n, d), (m, d), or (C, None) if precomputed."""
    check_metric(metric)
    if metric == "precomputed":
        if Y is not None:
            raise AlignmentError("with metric='precomputed', pass the (n, m) cost matrix as X and Y=None")
        return as_cost_matrix(X), None
    Xa = as_series(X, "X")
    Ya = as_series(Y, "Y")
    if Xa.shape[1] != Ya.shape[1]:
        raise AlignmentError(
            f"X has {Xa.shape[1]} features per frame and Y has {Ya.shape[1]}; DTW needs equal dimensions "
            "(use CTW for streams of different dimension)"
        )
    if metric == "cosine":
        for name, a in (("X", Xa), ("Y", Ya)):
            if np.any(np.einsum("ij,ij->i", a, a) == 0.0):
                raise AlignmentError(f"{name} has an all-zero frame; the cosine distance is undefined there")
    return Xa, Ya


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise AlignmentError(f"{name} must be True or False, got {value!r}")
    return bool(value)
