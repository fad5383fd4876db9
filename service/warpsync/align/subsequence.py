"""Search a long stream for the windows that best match a short query (UCR-suite style).

Every window of len(query) frames is a candidate. A candidate is first bounded from below by LB_Keogh (the
query's upper/lower envelope over ±radius frames); only if the bound beats the k-th best distance so far is
banded DTW run, and that DTW is abandoned as soon as a whole row exceeds the k-th best. Both prunings are
exact: the answer equals brute force (tested against `reference.dtw.subsequence_search_ref`).

For open-ended alignment of a query inside a stream without fixing the window length, use
``dtw(query, stream, step_pattern="asymmetric", open_begin=True, open_end=True)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.kernels import dtw as K
from warpsync.errors import AlignmentError

__all__ = ["SubsequenceMatch", "SubsequenceResult", "lb_keogh", "subsequence_search"]


@dataclass(frozen=True)
class SubsequenceMatch:
    """One match: the window stream[start:start + length] (frames, [start, end)) and its DTW distance
    (symmetric1, squared differences, Sakoe–Chiba band)."""

    start: int
    length: int
    distance: float


@dataclass(frozen=True)
class SubsequenceResult:
    """Best matches (ascending distance) and how much work the lower bound and early abandoning saved."""

    matches: tuple[SubsequenceMatch, ...]
    candidates: int
    pruned_by_lb: int
    abandoned: int


def _as_1d(a, name: str) -> np.ndarray:
    arr = V.as_series(a, name)
    if arr.shape[1] != 1:
        raise AlignmentError(f"{name} must be 1-D for subsequence search, got {arr.shape[1]} features per frame")
    return np.ascontiguousarray(arr[:, 0])


def lb_keogh(query, candidate, radius: int) -> float:
    """LB_Keogh lower bound of the banded (|i-j| <= radius) symmetric1 squared-difference DTW distance."""
    q = _as_1d(query, "query")
    c = _as_1d(candidate, "candidate")
    if len(q) != len(c):
        raise AlignmentError("LB_Keogh needs a candidate as long as the query")
    r = _radius(radius)
    U, Lo = K.envelope(q, r)
    return float(K._lb_keogh(U, Lo, c, 0.0, 1.0, np.inf))


def _radius(radius) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise AlignmentError(f"radius must be an int >= 0 (Sakoe–Chiba half-width in frames), got {radius!r}")
    return int(radius)


def subsequence_search(
    query, stream, *, radius: int, k: int = 1, znorm: bool = False, use_lower_bound: bool = True
) -> SubsequenceResult:
    """The k windows of `stream` (length len(query)) with the smallest banded DTW distance to `query`.

    radius: Sakoe–Chiba half-width in frames. znorm: z-normalise the query and every window first (shape match
    regardless of offset and gain; a constant window is only centred). use_lower_bound: set False to measure
    the pruning's effect. Overlapping windows are all candidates (no exclusion zone).
    """
    q = _as_1d(query, "query")
    s = _as_1d(stream, "stream")
    r = _radius(radius)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AlignmentError(f"k must be an int >= 1, got {k!r}")
    znorm = V.check_flag(znorm, "znorm")
    if len(s) < len(q):
        raise AlignmentError(f"stream ({len(s)} frames) is shorter than the query ({len(q)}); nothing to search")
    T = len(s) - len(q) + 1
    k = min(int(k), T)
    if znorm:
        sd = q.std()
        q = (q - q.mean()) / (sd if sd > 1e-12 else 1.0)
    d, t, pruned, abandoned, _ = K.subsequence_scan(q, s, r, k, znorm, bool(use_lower_bound))
    matches = tuple(SubsequenceMatch(int(tt), len(q), float(dd)) for dd, tt in zip(d, t) if tt >= 0)
    return SubsequenceResult(matches, T, int(pruned), int(abandoned))
