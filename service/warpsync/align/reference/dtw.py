"""Plain-NumPy/Python reference DTW: a direct transcription of the textbook recursion, cell by cell.

Written independently of the kernels (different data layout, full matrices, explicit step tables) so that
agreement means something. Slow: use for n, m up to a few hundred.
"""

from __future__ import annotations

import numpy as np

# Step tables as in dtw-python / Sakoe & Chiba: rows (step, di, dj, weight), weight -1 = origin.
from warpsync.align.steps import STEP_PATTERNS

__all__ = ["cost_matrix_ref", "dtw_ref", "lb_keogh_ref", "subsequence_search_ref"]


def cost_matrix_ref(X, Y, metric: str = "sqeuclidean") -> np.ndarray:
    """C[i, j] by explicit differences (no BLAS expansion)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    n, m = len(X), len(Y)
    C = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            if metric == "cosine":
                C[i, j] = 1.0 - float(X[i] @ Y[j]) / (np.linalg.norm(X[i]) * np.linalg.norm(Y[j]))
            else:
                s = float(np.sum((X[i] - Y[j]) ** 2))
                C[i, j] = np.sqrt(s) if metric == "euclidean" else s
    return np.maximum(C, 0.0)


def _steps(name: str):
    rows = STEP_PATTERNS[name].rows
    steps: dict[int, dict] = {}
    for s, di, dj, w in rows:
        st = steps.setdefault(int(s), {"origin": None, "terms": []})
        if w == -1:
            st["origin"] = (int(di), int(dj))
        else:
            st["terms"].append((int(di), int(dj), float(w)))
    return [steps[k] for k in sorted(steps)]


def dtw_ref(C, step_pattern="symmetric2", mask=None, open_begin=False, open_end=False):
    """Reference DTW on a full cost matrix C (n, m).

    mask: boolean (n, m) of allowed cells (None = all). Returns (distance, normalized, path list, jend) or
    (inf, nan, None, -1) when no path exists.
    Open-begin follows dtw-python: a virtual row of zero cost and zero accumulated cost precedes row 0.
    """
    C = np.asarray(C, dtype=np.float64)
    n, m = C.shape
    if mask is None:
        mask = np.ones((n, m), dtype=bool)
    steps = _steps(step_pattern)
    norm = STEP_PATTERNS[step_pattern].norm
    off = 1 if open_begin else 0
    # padded matrices: row 0 is the virtual row when open_begin
    Cp = np.vstack([np.zeros((1, m)), C]) if open_begin else C.copy()
    Mp = np.vstack([np.ones((1, m), dtype=bool), mask]) if open_begin else mask.copy()
    N = n + off
    G = np.full((N, m), np.inf)
    choice = np.full((N, m), -1)
    if open_begin:
        G[0, :] = 0.0
    elif Mp[0, 0]:
        G[0, 0] = Cp[0, 0]
    for i in range(N):
        for j in range(m):
            if open_begin and i == 0:
                continue
            if not open_begin and i == 0 and j == 0:
                continue
            if not Mp[i, j]:
                continue
            best, bs = np.inf, -1
            for s, st in enumerate(steps):
                oi, oj = i - st["origin"][0], j - st["origin"][1]
                if oi < 0 or oj < 0 or not Mp[oi, oj] or not np.isfinite(G[oi, oj]):
                    continue
                acc = G[oi, oj]
                ok = True
                for di, dj, w in st["terms"]:
                    ti, tj = i - di, j - dj
                    if ti < 0 or tj < 0 or not Mp[ti, tj]:
                        ok = False
                        break
                    acc += w * Cp[ti, tj]
                if ok and acc < best:
                    best, bs = acc, s
            G[i, j] = best
            choice[i, j] = bs
    last = G[N - 1]
    if norm == "N+M":
        div = n + np.arange(m) + 1.0
    elif norm == "N":
        div = np.full(m, float(n))
    elif norm == "M":
        div = np.arange(m) + 1.0
    else:
        div = np.full(m, np.nan)
    if open_end:
        normed = last / div
        if not np.any(np.isfinite(normed)):
            return np.inf, np.nan, None, -1
        jend = int(np.argmin(normed))
    else:
        jend = m - 1
    dist = float(last[jend])
    if not np.isfinite(dist):
        return np.inf, np.nan, None, -1
    # backtrack
    path = [(N - 1, jend)]
    i, j = N - 1, jend
    while True:
        if open_begin and i == 0:
            break
        if not open_begin and i == 0 and j == 0:
            break
        st = steps[choice[i, j]]
        for di, dj, w in reversed(st["terms"]):
            if (di, dj) != (0, 0):
                path.append((i - di, j - dj))
        i, j = i - st["origin"][0], j - st["origin"][1]
        path.append((i, j))
    path = [(a - off, b) for a, b in reversed(path) if a - off >= 0]
    return dist, float(dist / div[jend]) if norm != "NA" else np.nan, path, jend


def lb_keogh_ref(query, candidate, radius: int) -> float:
    """LB_Keogh(query, candidate): squared distance of the candidate to the query's envelope of half-width r."""
    q = np.asarray(query, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    total = 0.0
    for i in range(len(c)):
        seg = q[max(0, i - radius) : min(len(q), i + radius + 1)]
        u, lo = seg.max(), seg.min()
        if c[i] > u:
            total += (c[i] - u) ** 2
        elif c[i] < lo:
            total += (c[i] - lo) ** 2
    return total


def subsequence_search_ref(query, stream, radius: int, k: int = 1, znorm: bool = False):
    """Brute force: banded symmetric1 DTW of the query against every window of len(query); best k (start, dist).

    Overlapping matches are not suppressed. Windows are z-normalised first when `znorm`.
    """
    q = np.asarray(query, dtype=np.float64)
    s = np.asarray(stream, dtype=np.float64)
    L = len(q)
    if znorm:
        q = (q - q.mean()) / (q.std() if q.std() > 0 else 1.0)
    ii, jj = np.indices((L, L))
    mask = np.abs(ii - jj) <= radius
    out = []
    for t in range(len(s) - L + 1):
        w = s[t : t + L]
        if znorm:
            sd = w.std()
            w = (w - w.mean()) / (sd if sd > 0 else 1.0)
        C = (q[:, None] - w[None, :]) ** 2
        d, *_ = dtw_ref(C, "symmetric1", mask)
        out.append((d, t))
    out.sort()
    return [(t, d) for d, t in out[:k]]
