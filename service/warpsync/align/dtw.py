"""Dynamic time warping: the validated public layer over `warpsync.align.kernels.dtw`.

`dtw(X, Y)` aligns a query X (n frames, rows) with a reference Y (m frames, columns). Step patterns carry
dtw-python's names and semantics (`warpsync.align.steps`); windows and bands restrict the cells a path may
use (`warpsync.align.windows`). Distance-only calls never hold the n×m matrix: the three-neighbour patterns
(symmetric1, symmetric2) keep two band rows, the others max_di + 1 rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.cost import unit_rows
from warpsync.align.kernels import dtw as K
from warpsync.align.steps import SYMMETRIC_FAST, StepPattern, get_step_pattern
from warpsync.align.windows import check_band, window_band
from warpsync.errors import AlignmentError

__all__ = ["DTWResult", "dtw", "normalize_distance"]

log = logging.getLogger(__name__)

_METRIC_CODE = {"sqeuclidean": 0, "euclidean": 1, "cosine": 2, "precomputed": 3}


@dataclass(frozen=True)
class DTWResult:
    """Result of `dtw`.

    distance: accumulated cost of the best path (step-pattern weighted), in units of the local cost.
    path: (k, 2) int64 [i, j] pairs from the first aligned cell to the last, or None if not asked for.
    normalized_distance: distance divided by the pattern's normaliser (n+m, n or m); NaN for symmetric1.
    step_pattern: the dtw-python name of the pattern used.
    end: (i, j) of the last path cell (j < m-1 only with open_end).
    """

    distance: float
    path: np.ndarray | None
    normalized_distance: float
    step_pattern: str = "symmetric2"
    end: tuple[int, int] = (0, 0)


def _norm_divisor(norm: str, n: int, j: np.ndarray | int) -> np.ndarray | float:
    if norm == "N+M":
        return n + np.asarray(j) + 1
    if norm == "N":
        return float(n)
    if norm == "M":
        return np.asarray(j) + 1.0
    return np.nan


def normalize_distance(distance: float, step_pattern: str | StepPattern, n: int, m: int) -> float:
    """distance / (n + m), / n or / m per the pattern's normalisation; NaN if the pattern has none."""
    pat = get_step_pattern(step_pattern)
    return float(distance / _norm_divisor(pat.norm, n, m - 1)) if pat.norm != "NA" else float("nan")


def dtw(
    X,
    Y=None,
    *,
    metric: str = "sqeuclidean",
    step_pattern: str | StepPattern = "symmetric2",
    window=None,
    band=None,
    open_begin: bool = False,
    open_end: bool = False,
    return_path: bool = True,
) -> DTWResult:
    """Align X (n,) or (n, d) with Y (m,) or (m, d) by dynamic time warping.

    metric: "sqeuclidean" | "euclidean" | "cosine" | "precomputed" (then X is the (n, m) cost matrix, Y None).
    step_pattern: a dtw-python name (symmetric1, symmetric2, asymmetric, symmetricP0/P05/P1/P2,
        asymmetricP0/P05/P1/P2) or a `StepPattern`.
    window: None | ("sakoechiba", radius) | ("slantedband", radius) | ("itakura", max_slope).
    band: (lo, hi) int arrays of length n; row i may use columns [lo[i], hi[i]) (e.g. a corridor around a
        prior path). Not together with `window`.
    open_begin / open_end: the path may start at any column of row 0 / end at any column of row n-1
        (open_begin needs an "N"-normalised pattern such as asymmetric; open_end a normalisable one; the end
        column is chosen by normalised distance, as dtw-python does).
    return_path: False computes the distance only, in O(band width) memory.

    Raises AlignmentError for bad input (NaN/inf, wrong dimensions, unknown names) and for constraints that
    admit no path.
    """
    pat = get_step_pattern(step_pattern)
    open_begin = V.check_flag(open_begin, "open_begin")
    open_end = V.check_flag(open_end, "open_end")
    return_path = V.check_flag(return_path, "return_path")
    Xa, Ya = V.pair(X, Y, metric)
    n = Xa.shape[0]
    m = Xa.shape[1] if metric == "precomputed" else Ya.shape[0]
    if window is not None and band is not None:
        raise AlignmentError("pass either window or band, not both")
    if open_begin and pat.norm != "N":
        raise AlignmentError(
            f"open_begin needs an 'N'-normalised step pattern (asymmetric, asymmetricP0/P05/P1/P2); "
            f"{pat.name} is {pat.norm!r}"
        )
    if open_end and pat.norm == "NA":
        raise AlignmentError(f"open_end needs a normalisable step pattern; {pat.name} has no normalisation")
    if band is not None:
        if not isinstance(band, tuple) or len(band) != 2:
            raise AlignmentError("band must be a tuple (lo, hi) of two int arrays of length n")
        lo, hi = check_band(band[0], band[1], n, m, open_begin=open_begin, open_end=open_end)
    else:
        lo, hi = window_band(window, n, m)
        lo, hi = _check_window_band(lo, hi, n, m, window, open_begin, open_end)

    code = _METRIC_CODE[metric]
    fast = pat.name in SYMMETRIC_FAST and pat.rows == get_step_pattern(pat.name).rows and not open_begin
    if code == 2:
        Xa, Ya = unit_rows(Xa), unit_rows(Ya)

    if fast:
        wd = SYMMETRIC_FAST[pat.name]
        if (
            not return_path
            and n > m
            and code != 3
            and band is None
            and not open_end
            and (window is None or window[0] == "sakoechiba")
        ):
            # symmetric pattern and window: transpose so the row buffers span the shorter sequence
            lo2, hi2 = window_band(window, m, n)
            last = _sym_distance(Ya, Xa, code, lo2, hi2, wd)
            _, dist = _pick_end(pat, last, m, n, False)
            return DTWResult(dist, None, _normalized(pat, dist, n, m - 1), pat.name, (n - 1, m - 1))
        if not return_path:
            return _finish(pat, _sym_distance(Xa, Ya, code, lo, hi, wd), None, n, m, open_end)
        rowptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=rowptr[1:])
        Yk = _EMPTY2 if Ya is None else Ya
        last, dirs = K.sym_fill(Xa, Yk, _transposed(Xa, Ya), code, lo, hi, rowptr, wd, True)
        jend, dist = _pick_end(pat, last, n, m, open_end)
        path = K.sym_backtrack(dirs, lo, rowptr, n - 1, jend)
        return DTWResult(dist, path, _normalized(pat, dist, n, jend), pat.name, (n - 1, jend))

    ptr, sdi, sdj, sw = pat.encode()
    Yk = _EMPTY2 if Ya is None else Ya
    if (
        not return_path
        and n > m
        and code != 3
        and band is None
        and not open_begin
        and not open_end
        and pat.is_symmetric
        and (window is None or window[0] == "sakoechiba")
    ):
        # symmetric pattern and window: the rolling rows then span the shorter sequence
        lo2, hi2 = window_band(window, m, n)
        last, _, _ = K.generic_fill(Ya, Xa, code, lo2, hi2, ptr, sdi, sdj, sw, False, False)
        _, dist = _pick_end(pat, last, m, n, False)
        return DTWResult(dist, None, _normalized(pat, dist, n, m - 1), pat.name, (n - 1, m - 1))
    last, D, base = K.generic_fill(Xa, Yk, code, lo, hi, ptr, sdi, sdj, sw, open_begin, return_path)
    jend, dist = _pick_end(pat, last, n, m, open_end)
    path = None
    if return_path:
        path = K.generic_backtrack(Xa, Yk, code, lo, hi, ptr, sdi, sdj, sw, open_begin, D, base, n - 1, jend)
    return DTWResult(dist, path, _normalized(pat, dist, n, jend), pat.name, (n - 1, jend))


_EMPTY2 = np.empty((0, 0))


def _transposed(Xa, Ya) -> np.ndarray:
    """Y transposed (d, m) for the four-row cost sweep, or empty when costs are precomputed or 1-D."""
    if Ya is None or Xa.shape[1] < 2:
        return _EMPTY2
    return np.ascontiguousarray(Ya.T)


def _sym_distance(Xa, Ya, code, lo, hi, wd) -> np.ndarray:
    """Last DP row of a three-neighbour pattern, distance only (1-D squared differences: four-row kernel)."""
    if code == 0 and Xa.shape[1] == 1:
        return K.sym_dist_1d(np.ascontiguousarray(Xa[:, 0]), np.ascontiguousarray(Ya[:, 0]), lo, hi, wd)
    rowptr = np.zeros(len(lo) + 1, dtype=np.int64)
    last, _ = K.sym_fill(Xa, _EMPTY2 if Ya is None else Ya, _transposed(Xa, Ya), code, lo, hi, rowptr, wd, False)
    return last


def _check_window_band(lo, hi, n, m, window, open_begin, open_end):
    try:
        return check_band(lo, hi, n, m, open_begin=open_begin, open_end=open_end)
    except AlignmentError as e:
        raise AlignmentError(
            f"window {window!r} admits no path for n={n}, m={m} ({e}); widen it (a Sakoe–Chiba radius must be "
            f">= |n - m| = {abs(n - m)}) or use ('slantedband', r)"
        ) from None


def _pick_end(pat: StepPattern, last: np.ndarray, n: int, m: int, open_end: bool) -> tuple[int, float]:
    if open_end:
        with np.errstate(invalid="ignore"):
            normed = last / _norm_divisor(pat.norm, n, np.arange(m))
        if not np.any(np.isfinite(normed)):
            raise AlignmentError("no warping path satisfies the step pattern and window; widen the window or band")
        jend = int(np.argmin(normed))
    else:
        jend = m - 1
    dist = float(last[jend])
    if not np.isfinite(dist):
        raise AlignmentError(
            f"no warping path satisfies step pattern {pat.name} within the window/band (n={n}, m={m}); "
            "widen the window or band, or use a pattern with a wider slope range"
        )
    return jend, dist


def _normalized(pat: StepPattern, dist: float, n: int, jend: int) -> float:
    if pat.norm == "NA":
        return float("nan")
    return float(dist / _norm_divisor(pat.norm, n, jend))


def _finish(pat, last, path, n, m, open_end) -> DTWResult:
    jend, dist = _pick_end(pat, last, n, m, open_end)
    return DTWResult(dist, path, _normalized(pat, dist, n, jend), pat.name, (n - 1, jend))
