"""On-line time warping kernel (Dixon 2005, "Live tracking of musical performances using on-line time warping").

Private: arrays and scalars in, no validation, I/O or logging (the public layer is `warpsync.align.online`).

Rows are frames of stream X, columns frames of stream Y. The accumulated cost uses the symmetric weights
(diagonal step 2 d, horizontal/vertical step d; D(0, 0) = 2 d(0, 0)), so the weights of any path from (0, 0)
to (i, j) sum to i + j + 2 and D(i, j) / (i + j + 2) compares cells of different (i, j) fairly.

Each step adds a row (the next X frame, c cells in the columns [j-c+1, j]), a column (the next Y frame,
c cells in the rows [t-c+1, t]), or both, as Dixon's GetInc decides from where the best normalised cost on
the frontier (last row and last column) lies, with at most `max_run` consecutive steps in one direction.
Only the cells within c of the frontier are ever read, so costs live in an (c+1) x (c+1) ring indexed
(i mod (c+1), j mod (c+1)); a row slot (column slot) is reset to +inf when a new row (column) takes it, so a
slot holds D(i, j) for the cell of the current window that maps there, or +inf if it was never computed.

State vector `st` (int64): [t, j, run_count, previous, steps]: last row and column (-1 before the first
step), the run length and direction of the last non-diagonal increments (0 none, 1 row, 2 column, 3 both),
and the number of steps taken.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NONE = 0
ROW = 1
COLUMN = 2
BOTH = 3

METRIC_EUCLIDEAN = 0
METRIC_SQEUCLIDEAN = 1
METRIC_COSINE = 2


@njit(inline="always", nogil=True)
def _local(A, ia, B, ib, metric):
    """Local cost between frames A[ia] and B[ib] (indexed in place: no per-cell array views)."""
    d = A.shape[1]
    if metric == METRIC_COSINE:
        ab = 0.0
        aa = 0.0
        bb = 0.0
        for k in range(d):
            ab += A[ia, k] * B[ib, k]
            aa += A[ia, k] * A[ia, k]
            bb += B[ib, k] * B[ib, k]
        if aa == 0.0 or bb == 0.0:
            return 1.0  # a silent frame is taken as orthogonal to everything
        c = 1.0 - ab / np.sqrt(aa * bb)
        return max(0.0, c)
    acc = 0.0
    for k in range(d):
        t = A[ia, k] - B[ib, k]
        acc += t * t
    if metric == METRIC_EUCLIDEAN:
        return np.sqrt(acc)
    return acc


@njit(inline="always", nogil=True)
def _get(D, i, j):
    if i < 0 or j < 0:
        return np.inf
    R = D.shape[0]
    return D[i % R, j % R]


@njit(inline="always", nogil=True)
def _cell(D, i, j, dij):
    """D(i, j) from its three predecessors with weights 1 (above, left) and 2 (diagonal)."""
    if i == 0 and j == 0:
        return 2.0 * dij
    best = _get(D, i - 1, j - 1) + 2.0 * dij
    up = _get(D, i - 1, j) + dij
    left = _get(D, i, j - 1) + dij
    best = min(best, up)
    best = min(best, left)
    return best


@njit(nogil=True)
def _frontier_best(D, t, j, c):
    """argmin of D(i, k)/(i + k + 2) over the last row (t, k) and the last column (i, j) within c of the corner."""
    bx = t
    by = j
    bv = _get(D, t, j) / (t + j + 2)
    for k in range(max(0, j - c + 1), j):
        v = _get(D, t, k) / (t + k + 2)
        if v < bv:
            bv = v
            bx = t
            by = k
    for i in range(max(0, t - c + 1), t):
        v = _get(D, i, j) / (i + j + 2)
        if v < bv:
            bv = v
            bx = i
            by = j
    return bx, by, bv


@njit(cache=True, nogil=True)
def oltw_advance(st, D, Xr, Yr, xs, ys, c, max_run, metric, out_pairs, out_cost):
    """Run OLTW steps while the frames they need are available; return (x frames used, y frames used, pairs).

    st: state (see module doc), updated in place. D: (c+1, c+1) cost ring. Xr, Yr: (c, d) rings of the last c
    frames of each stream (frame i at i mod c). xs, ys: pending frames (kx, d), (ky, d), consumed in order.
    After each step the frontier's best cell (x, y) and its normalised cost are appended to out_pairs/out_cost
    (capacity kx + ky + 1 suffices: every step consumes at least one frame).
    """
    R = D.shape[0]
    ux = 0
    uy = 0
    npairs = 0
    while True:
        t = st[0]
        j = st[1]
        # Dixon's GetInc
        if t < c - 1:
            inc = BOTH
        elif st[2] > max_run:
            inc = COLUMN if st[3] == ROW else ROW
        else:
            bx, by, _ = _frontier_best(D, t, j, c)
            if bx < t:
                inc = COLUMN
            elif by < j:
                inc = ROW
            else:
                inc = BOTH
        need_x = inc != COLUMN
        need_y = inc != ROW
        if (need_x and ux >= xs.shape[0]) or (need_y and uy >= ys.shape[0]):
            break
        if need_x:
            t += 1
            Xr[t % c, :] = xs[ux]
            ux += 1
            D[t % R, :] = np.inf
            for k in range(max(0, j - c + 1), j + 1):
                D[t % R, k % R] = _cell(D, t, k, _local(Xr, t % c, Yr, k % c, metric))
        if need_y:
            j += 1
            Yr[j % c, :] = ys[uy]
            uy += 1
            D[:, j % R] = np.inf
            for i in range(max(0, t - c + 1), t + 1):
                D[i % R, j % R] = _cell(D, i, j, _local(Xr, i % c, Yr, j % c, metric))
        if inc == st[3]:
            st[2] += 1
        else:
            st[2] = 1
        if inc != BOTH:
            st[3] = inc
        st[0] = t
        st[1] = j
        st[4] += 1
        bx, by, bv = _frontier_best(D, t, j, c)
        out_pairs[npairs, 0] = bx
        out_pairs[npairs, 1] = by
        out_cost[npairs] = bv
        npairs += 1
    return ux, uy, npairs


@njit(cache=True, nogil=True)
def project(F, mean, W):
    """(F - mean) @ W for frames F (k, d), row by row in a fixed summation order (chunking cannot change it)."""
    k, d = F.shape
    q = W.shape[1]
    out = np.zeros((k, q))
    for i in range(k):
        for a in range(d):
            v = F[i, a] - mean[a]
            for b in range(q):
                out[i, b] += v * W[a, b]
    return out
