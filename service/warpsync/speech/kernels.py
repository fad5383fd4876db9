"""Numba kernels of the CTC trellis: Viterbi (max-plus) and forward–backward (log-sum-exp) over a block of
frames. Private: arrays and scalars in, no validation (see `align.py`). Accumulation is float64.

Move order and ties: the candidates into state s are stay (0), s-1, s-2, s-3 in that order; a later
candidate wins only when strictly greater, so ties resolve to the smaller move (the torch path and the
NumPy reference use the same rule). Backpointers are int8 moves (0..3).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEG_INF = -np.inf


@njit(cache=True, nogil=True)
def _viterbi_block(em, ext, m2, m3, prev, t0, t1, lo_end, max_step, T, bp, store, rowmax, tails, tail_lo):
    """Advance Viterbi scores `prev` (scores at frame t0-1, updated in place to frame t1-1) over frames
    [t0, t1). Only the band of states that are reachable from the start and can still reach an end state
    (index >= lo_end) in the frames left is computed; states below the band are set to -inf, states above
    it are never reached and keep -inf from the caller. `T` is the total number of frames. When `store`,
    bp[t - t0, s] = move for the band (other entries are not written and never read: a finite-score state
    only has finite-score predecessors). The main loop is branch-free (selects) over separate input and
    output rows, so LLVM vectorises it across states. When `tails` has rows, rowmax[t - t0] = best score
    of the frame and tails[t - t0, j] = score of state tail_lo + j (the streaming aligner's view of paths
    that may leave to text not received yet)."""
    S = ext.shape[0]
    a = prev
    c = np.empty(S)
    g = np.empty(S)
    lo_prev = 0
    for t in range(t0, t1):
        row = em[t]
        lo = lo_end - max_step * (T - 1 - t)
        if lo < 0:
            lo = 0
        if lo > S:
            lo = S
        hi = 1 + max_step * (t + 1)
        if hi > S:
            hi = S
        first = lo if lo > 3 else 3
        if first > hi:
            first = hi
        for s in range(lo, first):  # s < 3: bounds-checked moves
            best = a[s]
            k = 0
            if s >= 1 and a[s - 1] > best:
                best = a[s - 1]
                k = 1
            if s >= 2 and a[s - 2] + m2[s] > best:
                best = a[s - 2] + m2[s]
                k = 2
            c[s] = best + row[ext[s]]
            if store:
                bp[t - t0, s] = k
        n = hi - first
        if n > 0:
            # shifted slices indexed from 0: no negative-index wraparound checks, so the loops vectorise
            e_, gg, cc = ext[first:hi], g[first:hi], c[first:hi]
            a0, a1, a2, a3 = a[first:hi], a[first - 1 : hi - 1], a[first - 2 : hi - 2], a[first - 3 : hi - 3]
            q2, q3 = m2[first:hi], m3[first:hi]
            for i in range(n):
                gg[i] = row[e_[i]]
            if store:
                bpr = bp[t - t0, first:hi]
                for i in range(n):
                    b0 = a0[i]
                    v1 = a1[i]
                    v2 = a2[i] + q2[i]
                    v3 = a3[i] + q3[i]
                    c1 = v1 > b0
                    b1 = v1 if c1 else b0
                    k1 = np.int8(1) if c1 else np.int8(0)
                    c2 = v2 > b1
                    b2 = v2 if c2 else b1
                    k2 = np.int8(2) if c2 else k1
                    c3 = v3 > b2
                    b3 = v3 if c3 else b2
                    k3 = np.int8(3) if c3 else k2
                    cc[i] = b3 + gg[i]
                    bpr[i] = k3
            else:
                for i in range(n):
                    b = max(a0[i], a1[i])
                    b = max(b, a2[i] + q2[i])
                    b = max(b, a3[i] + q3[i])
                    cc[i] = b + gg[i]
        for s in range(lo_prev, lo):
            a[s] = NEG_INF
        lo_prev = lo
        for s in range(lo, hi):
            a[s] = c[s]
        if tails.shape[0] > 0:
            m = NEG_INF
            for s in range(lo, hi):
                if a[s] > m:
                    m = a[s]
            rowmax[t - t0] = m
            for j in range(tails.shape[1]):
                tails[t - t0, j] = a[tail_lo + j] if 0 <= tail_lo + j < S else NEG_INF


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
