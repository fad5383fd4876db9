"""Global constraints (warping windows) as per-row bands.

Every window is turned into a *band*: two int64 arrays ``lo``, ``hi`` of length n such that row ``i`` may use
the columns ``[lo[i], hi[i])`` (end exclusive). Kernels only ever see bands, so a Sakoe–Chiba band, an Itakura
parallelogram and a corridor around a prior path all run through the same code.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from warpsync.errors import AlignmentError

__all__ = [
    "check_band",
    "corridor_band",
    "full_band",
    "itakura_band",
    "sakoe_chiba_band",
    "slanted_band",
    "window_band",
]


def full_band(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """No window: every row may use all m columns."""
    return np.zeros(n, dtype=np.int64), np.full(n, m, dtype=np.int64)


def sakoe_chiba_band(n: int, m: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Sakoe–Chiba band around the main diagonal: ``|i - j| <= radius`` (dtw-python's ``sakoechiba``)."""
    i = np.arange(n, dtype=np.int64)
    lo = np.clip(i - radius, 0, m)
    hi = np.clip(i + radius + 1, 0, m)
    return lo, hi


def slanted_band(n: int, m: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Band around the slanted diagonal: ``|j - i*m/n| <= radius`` (dtw-python's ``slantedband``)."""
    i = np.arange(n, dtype=np.float64)
    centre = i * m / n
    lo = np.clip(np.ceil(centre - radius - 1e-9), 0, m).astype(np.int64)
    hi = np.clip(np.floor(centre + radius + 1e-9) + 1, 0, m).astype(np.int64)
    return lo, hi


def itakura_band(n: int, m: int, max_slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Itakura parallelogram: cells reachable from (0, 0) and reaching (n-1, m-1) with slopes in [1/s, s].

    Row i keeps the columns j with ``j <= s*i``, ``i <= s*j``, ``(m-1-j) <= s*(n-1-i)`` and
    ``(n-1-i) <= s*(m-1-j)``.
    """
    s = float(max_slope)
    i = np.arange(n, dtype=np.float64)
    eps = 1e-9
    lo_f = np.maximum(i / s, (m - 1) - s * (n - 1 - i))
    hi_f = np.minimum(s * i, (m - 1) - (n - 1 - i) / s)
    lo = np.clip(np.ceil(lo_f - eps), 0, m).astype(np.int64)
    hi = np.clip(np.floor(hi_f + eps) + 1, 0, m).astype(np.int64)
    hi = np.maximum(hi, lo)
    return lo, hi


def corridor_band(path: np.ndarray, n: int, m: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Band around a prior warping path: every cell within `radius` (Chebyshev) of a path cell.

    `path` is (k, 2) int [i, j] pairs, monotone, with every row 0..n-1 present at least once.
    """
    p = np.asarray(path, dtype=np.int64)
    rows_min = np.full(n, m, dtype=np.int64)
    rows_max = np.full(n, -1, dtype=np.int64)
    np.minimum.at(rows_min, p[:, 0], p[:, 1])
    np.maximum.at(rows_max, p[:, 0], p[:, 1])
    if np.any(rows_max < 0):
        raise AlignmentError("corridor path misses some rows; pass a continuous path covering rows 0..n-1")
    r = int(radius)
    if isinstance(radius, bool) or r < 0:
        raise AlignmentError(f"corridor radius must be an int >= 0, got {radius!r}")
    # dilate along i: row i sees the path cells of rows i-r..i+r (running min/max, O(n))
    lo = minimum_filter1d(rows_min, 2 * r + 1, mode="nearest") if r else rows_min
    hi = maximum_filter1d(rows_max, 2 * r + 1, mode="nearest") if r else rows_max
    return np.clip(lo - r, 0, m).astype(np.int64), np.clip(hi + r + 1, 0, m).astype(np.int64)


def window_band(window, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn a `window` argument (None | ("sakoechiba", r) | ("slantedband", r) | ("itakura", s)) into a band."""
    if window is None:
        return full_band(n, m)
    if not isinstance(window, tuple) or len(window) != 2 or not isinstance(window[0], str):
        raise AlignmentError(
            f"window must be None, ('sakoechiba', radius), ('slantedband', radius) or ('itakura', max_slope); "
            f"got {window!r}"
        )
    kind, arg = window
    kind = kind.lower()
    if kind in ("sakoechiba", "slantedband"):
        if isinstance(arg, bool) or not isinstance(arg, (int, np.integer)) or arg < 0:
            raise AlignmentError(f"{kind} radius must be an int >= 0, got {arg!r}")
        return sakoe_chiba_band(n, m, int(arg)) if kind == "sakoechiba" else slanted_band(n, m, int(arg))
    if kind == "itakura":
        if (
            isinstance(arg, bool)
            or not isinstance(arg, (int, float, np.integer, np.floating))
            or not (math.isfinite(arg) and arg >= 1)
        ):
            raise AlignmentError(f"itakura max_slope must be a finite number >= 1, got {arg!r}")
        return itakura_band(n, m, float(arg))
    raise AlignmentError(f"unknown window {kind!r}; use 'sakoechiba', 'slantedband' or 'itakura'")


def check_band(lo, hi, n: int, m: int, *, open_begin: bool = False, open_end: bool = False):
    """Validate a band and return it as contiguous int64 arrays; AlignmentError if it admits no path."""
    try:
        lo = np.ascontiguousarray(lo, dtype=np.int64)
        hi = np.ascontiguousarray(hi, dtype=np.int64)
    except (TypeError, ValueError):
        raise AlignmentError("band must be two integer arrays (lo, hi) of length n") from None
    if lo.shape != (n,) or hi.shape != (n,):
        raise AlignmentError(f"band arrays must have shape ({n},) (one entry per row of X); got {lo.shape}, {hi.shape}")
    if np.any(lo < 0) or np.any(hi > m):
        raise AlignmentError(f"band columns must lie in [0, {m}]; clip lo/hi to the length of Y")
    empty = np.flatnonzero(hi <= lo)
    if empty.size:
        raise AlignmentError(
            f"band is infeasible: row {int(empty[0])} admits no column (lo >= hi); widen the band or window"
        )
    if not open_begin and lo[0] != 0:
        raise AlignmentError("band is infeasible: row 0 excludes column 0; widen it or use open_begin=True")
    if not open_end and hi[-1] != m:
        raise AlignmentError(f"band is infeasible: the last row excludes column {m - 1}; widen it or use open_end=True")
    # Whether rows connect under the chosen step pattern is left to the DP: an unreachable end is reported
    # there as an AlignmentError, never as a wrong number.
    return lo, hi
