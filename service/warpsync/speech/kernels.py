"""Numba kernels of the CTC trellis: Viterbi (max-plus) and forward–backward (log-sum-exp) over a block of
frames. Private: arrays and scalars in, no validation (see `align.py`). Accumulation is float64.

Move order and ties: the candidates into state s are stay (0), s-1, s-2, s-3 in that order; a later
candidate wins only when strictly greater, so ties resolve to the smaller move (the torch path and the
NumPy reference use the same rule). Backpointers are int8 moves (0..3).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

NEG_INF = -np.inf
CHUNK = 512  # states per strip: the per-strip temporaries stay in L1


@njit(cache=True, nogil=True, inline="always")
def _frame(x, y, row, e32, ok2, ok3, first, hi, max_step, store, bprow, g, kk):
    """y[s] for states s in [first, hi), first >= 3, from the previous frame's scores x; bprow[s] = move.

    Strip-mined in CHUNK states so the temporaries (gathered emissions `g`, moves `kk`) stay in L1. Indices
    are unsigned: Numba then emits no negative-index wraparound, and LLVM vectorises the loops across
    states (the states of a frame depend only on the previous frame). Moves are computed in 64-bit lanes,
    as wide as the score comparisons, and narrowed to int8 in a separate loop."""
    one, two, three = uint64(1), uint64(2), uint64(3)
    for c0 in range(first, hi, CHUNK):
        c1 = min(c0 + CHUNK, hi)
        n = uint64(c1 - c0)
        b = uint64(c0)
        for i in range(n):
            g[i] = row[e32[b + i]]
        if max_step == 2:
            if store:
                for i in range(n):
                    s = b + i
                    b0 = x[s]
                    v1 = x[s - one]
                    v2 = x[s - two] if ok2[s] else NEG_INF
                    c1_ = np.int64(v1 > b0)
                    b1 = max(b0, v1)
                    c2_ = np.int64(v2 > b1)
                    y[s] = max(b1, v2) + g[i]
                    kk[i] = c1_ + c2_ * (2 - c1_)
            else:
                for i in range(n):
                    s = b + i
                    v2 = x[s - two] if ok2[s] else NEG_INF
                    y[s] = max(max(x[s], x[s - one]), v2) + g[i]
        else:
            if store:
                for i in range(n):
                    s = b + i
                    b0 = x[s]
                    v1 = x[s - one]
                    v2 = x[s - two] if ok2[s] else NEG_INF
                    v3 = x[s - three] if ok3[s] else NEG_INF
                    c1_ = np.int64(v1 > b0)
                    b1 = max(b0, v1)
                    c2_ = np.int64(v2 > b1)
                    b2 = max(b1, v2)
                    c3_ = np.int64(v3 > b2)
                    y[s] = max(b2, v3) + g[i]
                    k2 = c1_ + c2_ * (2 - c1_)
                    kk[i] = k2 + c3_ * (3 - k2)
            else:
                for i in range(n):
                    s = b + i
                    v2 = x[s - two] if ok2[s] else NEG_INF
                    v3 = x[s - three] if ok3[s] else NEG_INF
                    y[s] = max(max(max(x[s], x[s - one]), v2), v3) + g[i]
        if store:
            for i in range(n):
                bprow[b + i] = np.int8(kk[i])


@njit(cache=True, nogil=True)
def _viterbi_block(em, ext, m2, m3, prev, t0, t1, lo_end, max_step, T, bp, store, rowmax, tails, tail_lo):
    """Advance Viterbi scores `prev` (scores at frame t0-1, updated in place to frame t1-1) over frames
    [t0, t1). Only the band of states that are reachable from the start and can still reach an end state
    (index >= lo_end) in the frames left is computed; states below the band end at -inf, states above it
    are never reached and keep -inf from the caller. `T` is the total number of frames. When `store`,
    bp[t - t0, s] = move for the band (other entries are not written and never read: a finite-score state
    only has finite-score predecessors). Two score rows alternate (no copy per frame). When `tails` has
    rows, rowmax[t - t0] = best score of the frame and tails[t - t0, j] = score of state tail_lo + j (the
    streaming aligner's view of paths that may leave to text not received yet)."""
    S = ext.shape[0]
    e32 = ext.astype(np.int32)
    ok2 = m2 == 0.0
    ok3 = m3 == 0.0
    other = np.full(S, NEG_INF)
    x = prev
    y = other
    g = np.empty(CHUNK)
    kk = np.empty(CHUNK, np.int64)
    dummy = np.empty(0, np.int8)
    lo = 0
    for t in range(t0, t1):
        row = em[t]
        lo = lo_end - max_step * (T - 1 - t)
        lo = max(lo, 0)
        lo = min(lo, S)
        hi = 1 + max_step * (t + 1)
        hi = min(hi, S)
        first = max(3, lo)
        first = min(first, hi)
        for s in range(lo, first):  # s < 3: bounds-checked moves
            best = x[s]
            k = 0
            if s >= 1 and x[s - 1] > best:
                best = x[s - 1]
                k = 1
            if s >= 2 and ok2[s] and x[s - 2] > best:
                best = x[s - 2]
                k = 2
            y[s] = best + row[ext[s]]
            if store:
                bp[t - t0, s] = k
        if first < hi:
            _frame(x, y, row, e32, ok2, ok3, first, hi, max_step, store, bp[t - t0] if store else dummy, g, kk)
        # states below the band are dead: the next frame reads down to lo - 3
        for s in range(max(0, lo - 3), lo):
            y[s] = NEG_INF
        x, y = y, x
        if tails.shape[0] > 0:
            m = NEG_INF
            for s in range(lo, hi):
                m = max(m, x[s])
            rowmax[t - t0] = m
            for j in range(tails.shape[1]):
                q = tail_lo + j
                tails[t - t0, j] = x[q] if lo <= q < S else NEG_INF
    # the caller's array ends holding the last frame (and -inf below the band)
    if t1 > t0:
        if x is not prev:
            prev[:] = x
        prev[:lo] = NEG_INF


@njit(cache=True, nogil=True)
def _traceback_block(bp, t0, t1, s_end, path):
    """Follow backpointers from state `s_end` at frame t1-1 down to t0; path[t] = state. Returns the state
    at frame t0-1 (the move out of the block's first frame applied)."""
    s = s_end
    for t in range(t1 - 1, t0 - 1, -1):
        path[t] = s
        s -= bp[t - t0, s]
    return s


@njit(cache=True, nogil=True)
def _lse(a, b):
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@njit(cache=True, nogil=True)
def _forward_block(em, ext, m2, m3, prev, t0, t1, out, store):
    """Log-sum-exp forward: `prev` holds alpha at frame t0-1 (updated in place); out[t - t0] = alpha_t."""
    S = ext.shape[0]
    cur = np.empty(S)
    for t in range(t0, t1):
        row = em[t]
        for s in range(S):
            a = prev[s]
            if s >= 1:
                a = _lse(a, prev[s - 1])
            if s >= 2 and m2[s] == 0.0:
                a = _lse(a, prev[s - 2])
            if s >= 3 and m3[s] == 0.0:
                a = _lse(a, prev[s - 3])
            cur[s] = a + row[ext[s]]
        for s in range(S):
            prev[s] = cur[s]
            if store:
                out[t - t0, s] = cur[s]


@njit(cache=True, nogil=True)
def _backward_block(em, ext, m2, m3, nxt, t0, t1, out):
    """Log-sum-exp backward over frames t1-1 down to t0: `nxt` holds beta at frame t1 on entry (updated in
    place to beta at t0); out[t - t0] = beta_t. The frame after the last has beta = 0 on end states."""
    S = ext.shape[0]
    cur = np.empty(S)
    for t in range(t1 - 1, t0 - 1, -1):
        row = em[t + 1]
        for s in range(S):
            b = nxt[s] + row[ext[s]]
            if s + 1 < S:
                b = _lse(b, nxt[s + 1] + row[ext[s + 1]])
            if s + 2 < S and m2[s + 2] == 0.0:
                b = _lse(b, nxt[s + 2] + row[ext[s + 2]])
            if s + 3 < S and m3[s + 3] == 0.0:
                b = _lse(b, nxt[s + 3] + row[ext[s + 3]])
            cur[s] = b
        for s in range(S):
            nxt[s] = cur[s]
            out[t - t0, s] = cur[s]


@njit(cache=True, nogil=True)
def _survivor_merge(bp, live, t_first, inject, tail_lo):
    """Trace back every state with live[s] from the last row of `bp` (frames t_first .. t_first+R-1); at a
    row r with inject[r, j], state tail_lo + j joins the traced set (a path that may leave to text not
    received yet). Returns (t, s): the latest frame at which every traced path passes through the single
    state s, before the first row with an injection (a path that left to future text is in no state we
    know at later rows); or (-1, -1)."""
    R, S = bp.shape
    first_inj = R
    for r in range(R):
        for j in range(inject.shape[1]):
            if inject[r, j]:
                first_inj = min(first_inj, r)
    cur = live.copy()
    nxt = np.zeros(S, np.bool_)
    for r in range(R - 1, -1, -1):
        for j in range(inject.shape[1]):
            if inject[r, j] and 0 <= tail_lo + j < S:
                cur[tail_lo + j] = True
        count = 0
        only = -1
        for s in range(S):
            if cur[s]:
                count += 1
                only = s
        if count == 1 and r < first_inj:
            return t_first + r, only
        if count == 0:
            return -1, -1
        for s in range(S):
            nxt[s] = False
        for s in range(S):
            if cur[s]:
                nxt[s - bp[r, s]] = True
        for s in range(S):
            cur[s] = nxt[s]
    return -1, -1
