"""Private DTW kernels: arrays and scalars in, no validation, I/O or logging (see `warpsync.align.dtw`).

Conventions shared by every kernel here
- A *band* is ``lo``, ``hi`` (int64, length n): row i may use columns [lo[i], hi[i]); rows are never empty
  (the public layer checks that). Cells outside the band hold +inf.
- `metric` codes for on-the-fly local cost between rows of X (n, d) and Y (m, d): 0 squared Euclidean,
  1 Euclidean, 2 cosine on rows already scaled to unit norm (1 - <x, y>), 3 precomputed: X is the (n, m) cost
  matrix and Y is ignored.
- Three-neighbour ("fast") kernels serve symmetric1 / symmetric2: D[i,j] = min(D[i-1,j-1] + wd*c,
  D[i,j-1] + c, D[i-1,j] + c), D[0,0] = c[0,0]; ties go to diagonal, then left, then up (dtw-python's order).
- Generic kernels serve any step pattern encoded by `StepPattern.encode()`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

INF = np.inf
# Interior columns are processed in chunks whose four cost rows (4 x 8 x _CHUNK bytes) stay in L1.
_CHUNK = 256


@njit(cache=True, nogil=True, inline="always")
def _sq(t):
    return t * t


@njit(cache=True, nogil=True, inline="always")
def _cost(X, Y, i, j, metric):
    if metric == 3:
        return X[i, j]
    d = X.shape[1]
    s = 0.0
    if metric == 2:
        for k in range(d):
            s += X[i, k] * Y[j, k]
        s = 1.0 - s
        return max(0.0, s)
    for k in range(d):
        t = X[i, k] - Y[j, k]
        s += t * t
    if metric == 1:
        return math.sqrt(s)
    return s


# ---------------------------------------------------------------------------------------------------------------
# 1-D distance only, four rows at a time
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _edge_cols(y, P, N, L, plo, phi, ja, jb, x0, x1, x2, x3, l0, l1, l2, l3, h0, h1, h2, h3, a0, a1, a2, a3, pd, wd):
    """Columns [ja, jb) of a four-row block of `sym_dist_1d` where some row or the previous row may be
    outside its band (every access checked). Returns the carried state (a0..a3, pd)."""
    for j in range(ja, jb):
        up = P[j - plo] if (j >= plo and j < phi) else INF
        yj = y[j]
        c0 = _sq(x0 - yj) if (j >= l0 and j < h0) else INF
        c1 = _sq(x1 - yj) if (j >= l1 and j < h1) else INF
        c2 = _sq(x2 - yj) if (j >= l2 and j < h2) else INF
        c3 = _sq(x3 - yj) if (j >= l3 and j < h3) else INF
        d0 = min(a0 + c0, min(up + c0, pd + wd * c0))
        d1 = min(a1 + c1, min(d0 + c1, a0 + wd * c1))
        d2 = min(a2 + c2, min(d1 + c2, a1 + wd * c2))
        d3 = min(a3 + c3, min(d2 + c3, a2 + wd * c3))
        N[j - L] = d3
        pd = up
        a0 = d0
        a1 = d1
        a2 = d2
        a3 = d3
    return a0, a1, a2, a3, pd


@njit(cache=True, nogil=True)
def sym_dist_1d(x, y, lo, hi, wd):
    """Three-neighbour DTW of 1-D x (n,) and y (m,), squared-difference cost, inside a band, distance only,
    O(band width) memory.

    Rows are advanced four at a time: row r+1's cell at column j depends on row r's at j, so the four running
    recurrences overlap in the pipeline instead of waiting on one add→min chain per cell. Returns the last
    row as an (m,) array (+inf outside its band).
    """
    n = x.shape[0]
    m = y.shape[0]
    cap = hi[0] - lo[0]
    b = 1
    while b < n:
        e = min(b + 4, n)
        L = lo[b]
        H = hi[b]
        for r in range(b + 1, e):
            L = min(L, lo[r])
            H = max(H, hi[r])
        cap = max(cap, H - L)
        b = e
    P = np.empty(cap)
    N = np.empty(cap)
    C0 = np.empty(_CHUNK)
    C1 = np.empty(_CHUNK)
    C2 = np.empty(_CHUNK)
    C3 = np.empty(_CHUNK)
    plo = lo[0]
    phi = hi[0]
    acc = 0.0 if plo == 0 else INF
    x0 = x[0]
    for j in range(plo, phi):
        acc += _sq(x0 - y[j])
        P[j - plo] = acc
    i = 1
    while i + 4 <= n:
        l0 = lo[i]
        l1 = lo[i + 1]
        l2 = lo[i + 2]
        l3 = lo[i + 3]
        h0 = hi[i]
        h1 = hi[i + 1]
        h2 = hi[i + 2]
        h3 = hi[i + 3]
        L = min(min(l0, l1), min(l2, l3))
        H = max(max(h0, h1), max(h2, h3))
        x0 = x[i]
        x1 = x[i + 1]
        x2 = x[i + 2]
        x3 = x[i + 3]
        a0 = INF
        a1 = INF
        a2 = INF
        a3 = INF
        pd = P[L - 1 - plo] if (L - 1 >= plo and L - 1 < phi) else INF
        cs = max(max(max(l0, l1), max(l2, l3)), plo + 1)
        ce = min(min(min(h0, h1), min(h2, h3)), phi)
        j1 = min(max(cs, L), H)
        # ragged left edge, checked
        a0, a1, a2, a3, pd = _edge_cols(
            y, P, N, L, plo, phi, L, j1, x0, x1, x2, x3, l0, l1, l2, l3, h0, h1, h2, h3, a0, a1, a2, a3, pd, wd
        )
        j2 = j1
        if cs < ce:
            # interior: every row of the block is inside its band and the previous row is stored.
            # 1) local costs of the four rows, one contiguous sweep each (vectorised);
            # 2) the DP, reading costs from L1. Slices start at index 0 and are indexed with unsigned
            #    integers, so Numba emits no negative-index wrap-around code. symmetric1 is computed as
            #    min(a, up, pd) + c (two min, one add; equal to min of the three sums because rounding is
            #    monotone), symmetric2 exactly as the reference does.
            for q0 in range(cs, ce, _CHUNK):
                q1 = min(q0 + _CHUNK, ce)
                uW = np.uint64(q1 - q0)
                Yv = y[q0:q1]
                for k in range(uW):
                    yj = Yv[k]
                    t0 = x0 - yj
                    t1 = x1 - yj
                    t2 = x2 - yj
                    t3 = x3 - yj
                    C0[k] = t0 * t0
                    C1[k] = t1 * t1
                    C2[k] = t2 * t2
                    C3[k] = t3 * t3
                Pv = P[q0 - 1 - plo : q1 - plo]
                Nv = N[q0 - L : q1 - L]
                one = np.uint64(1)
                if wd == 1.0:
                    for k in range(uW):
                        up = Pv[k + one]
                        d0 = min(a0, min(up, pd)) + C0[k]
                        d1 = min(a1, min(a0, d0)) + C1[k]
                        d2 = min(a2, min(a1, d1)) + C2[k]
                        d3 = min(a3, min(a2, d2)) + C3[k]
                        Nv[k] = d3
                        pd = up
                        a0 = d0
                        a1 = d1
                        a2 = d2
                        a3 = d3
                elif wd == 2.0:
                    for k in range(uW):
                        up = Pv[k + one]
                        c0 = C0[k]
                        c1 = C1[k]
                        c2 = C2[k]
                        c3 = C3[k]
                        d0 = min(a0 + c0, min(up + c0, pd + (c0 + c0)))
                        d1 = min(a1 + c1, min(d0 + c1, a0 + (c1 + c1)))
                        d2 = min(a2 + c2, min(d1 + c2, a1 + (c2 + c2)))
                        d3 = min(a3 + c3, min(d2 + c3, a2 + (c3 + c3)))
                        Nv[k] = d3
                        pd = up
                        a0 = d0
                        a1 = d1
                        a2 = d2
                        a3 = d3
                else:
                    for k in range(uW):
                        up = Pv[k + one]
                        c0 = C0[k]
                        c1 = C1[k]
                        c2 = C2[k]
                        c3 = C3[k]
                        d0 = min(a0 + c0, min(up, pd + (wd - 1.0) * c0) + c0)
                        d1 = min(a1 + c1, min(d0, a0 + (wd - 1.0) * c1) + c1)
                        d2 = min(a2 + c2, min(d1, a1 + (wd - 1.0) * c2) + c2)
                        d3 = min(a3 + c3, min(d2, a2 + (wd - 1.0) * c3) + c3)
                        Nv[k] = d3
                        pd = up
                        a0 = d0
                        a1 = d1
                        a2 = d2
                        a3 = d3
            j2 = ce
        # ragged right edge, checked
        a0, a1, a2, a3, pd = _edge_cols(
            y, P, N, L, plo, phi, j2, H, x0, x1, x2, x3, l0, l1, l2, l3, h0, h1, h2, h3, a0, a1, a2, a3, pd, wd
        )
        T = P
        P = N
        N = T
        plo = L
        phi = H
        i += 4
    while i < n:
        L = lo[i]
        H = hi[i]
        x0 = x[i]
        a0 = INF
        pd = P[L - 1 - plo] if (L - 1 >= plo and L - 1 < phi) else INF
        for j in range(L, H):
            up = P[j - plo] if (j >= plo and j < phi) else INF
            c0 = _sq(x0 - y[j])
            d0 = min(a0 + c0, min(up + c0, pd + wd * c0))
            N[j - L] = d0
            pd = up
            a0 = d0
        T = P
        P = N
        N = T
        plo = L
        phi = H
        i += 1
    out = np.full(m, INF)
    for j in range(plo, phi):
        out[j] = P[j - plo]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Three-neighbour DTW, any metric, optional direction storage for the path (1 byte per band cell)
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _step3(vd, vl, vu):
    """min of (diagonal, left, up) candidates and its index with ties to diagonal, then left, then up.

    Branch-free (the winner is data dependent and unpredictable); the left candidate, which carries the
    row's loop-carried dependency, enters last so the critical chain is one add and one min.
    """
    du = min(vd, vu)
    upwins = vu < vd
    best = min(vl, du)
    left = (vl < du) | ((vl == du) & upwins)
    # 0 diagonal, 1 left, 2 up, from two booleans with arithmetic only (no short-circuit branches)
    k = np.uint8(left) + np.uint8(2) * np.uint8(upwins & ~left)
    return best, k


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _cost_row(X, Y, metric, i, a, b, out):
    """out[j - a] = cost(i, j) for j in [a, b), metric 0, 1 or 2 (the per-cell feature sum may be
    reassociated so it vectorises across features; results differ from strict left-to-right summation only
    in the last bits)."""
    d = X.shape[1]
    for j in range(a, b):
        s = 0.0
        if metric == 2:
            for k in range(d):
                s += X[i, k] * Y[j, k]
            out[j - a] = max(1.0 - s, 0.0)
        else:
            for k in range(d):
                t = X[i, k] - Y[j, k]
                s += t * t
            out[j - a] = math.sqrt(s) if metric == 1 else s


@njit(cache=True, nogil=True, fastmath={"contract"})
def _cost_rows4(X, YT, metric, i0, L, H, cb):
    """Costs of rows i0..i0+3 over all of [L, H) with Y transposed (d, m): one sweep of each feature row of
    YT serves four rows of X, accumulating in four contiguous rows the compiler vectorises."""
    d = X.shape[1]
    W = np.uint64(H - L)
    r0 = cb[0]
    r1 = cb[1]
    r2 = cb[2]
    r3 = cb[3]
    init = 1.0 if metric == 2 else 0.0
    for j in range(W):
        r0[j] = init
        r1[j] = init
        r2[j] = init
        r3[j] = init
    k0 = 0
    if metric != 2:
        # two features per sweep halves the loads and stores of the accumulating rows
        while k0 + 2 <= d:
            ya = YT[k0, L:H]
            yb = YT[k0 + 1, L:H]
            x0a = X[i0, k0]
            x1a = X[i0 + 1, k0]
            x2a = X[i0 + 2, k0]
            x3a = X[i0 + 3, k0]
            x0b = X[i0, k0 + 1]
            x1b = X[i0 + 1, k0 + 1]
            x2b = X[i0 + 2, k0 + 1]
            x3b = X[i0 + 3, k0 + 1]
            for j in range(W):
                ua = ya[j]
                ub = yb[j]
                t0 = x0a - ua
                s0 = x0b - ub
                t1 = x1a - ua
                s1 = x1b - ub
                t2 = x2a - ua
                s2 = x2b - ub
                t3 = x3a - ua
                s3 = x3b - ub
                r0[j] += t0 * t0 + s0 * s0
                r1[j] += t1 * t1 + s1 * s1
                r2[j] += t2 * t2 + s2 * s2
                r3[j] += t3 * t3 + s3 * s3
            k0 += 2
    for k in range(k0, d):
        yk = YT[k, L:H]
        x0 = X[i0, k]
        x1 = X[i0 + 1, k]
        x2 = X[i0 + 2, k]
        x3 = X[i0 + 3, k]
        if metric == 2:
            for j in range(W):
                y = yk[j]
                r0[j] -= x0 * y
                r1[j] -= x1 * y
                r2[j] -= x2 * y
                r3[j] -= x3 * y
        else:
            for j in range(W):
                y = yk[j]
                t0 = x0 - y
                t1 = x1 - y
                t2 = x2 - y
                t3 = x3 - y
                r0[j] += t0 * t0
                r1[j] += t1 * t1
                r2[j] += t2 * t2
                r3[j] += t3 * t3
    if metric == 1:
        for r in range(4):
            row = cb[r]
            for j in range(W):
                row[j] = math.sqrt(row[j])
    elif metric == 2:
        for r in range(4):
            row = cb[r]
            for j in range(W):
                row[j] = max(row[j], 0.0)


@njit(cache=True, nogil=True)
def _cost_rows(X, Y, YT, metric, lo, hi, i0, nr, L, H, cb):
    """cb[r, j - L] = cost(i0 + r, j) inside row i0 + r's band, +inf elsewhere in [L, H).

    YT, when not empty, is Y transposed (d, m) contiguous: blocks of four rows then use `_cost_rows4`.
    """
    if nr == 4 and metric != 3 and YT.shape[1] > 0:
        _cost_rows4(X, YT, metric, i0, L, H, cb)
        for r in range(4):
            row = cb[r]
            for j in range(L, lo[i0 + r]):
                row[j - L] = INF
            for j in range(hi[i0 + r], H):
                row[j - L] = INF
        return
    for r in range(nr):
        i = i0 + r
        a = lo[i]
        b = hi[i]
        row = cb[r]
        for j in range(L, a):
            row[j - L] = INF
        for j in range(b, H):
            row[j - L] = INF
        if metric == 3:
            for j in range(a, b):
                row[j - L] = X[i, j]
        elif X.shape[1] == 1 and metric == 0:
            xi = X[i, 0]
            for j in range(a, b):
                t = xi - Y[j, 0]
                row[j - L] = t * t
        else:
            _cost_row(X, Y, metric, i, a, b, row[a - L : b - L])


@njit(cache=True, nogil=True)
def sym_fill(X, Y, YT, metric, lo, hi, rowptr, wd, store):
    """Three-neighbour DTW over a band, four rows at a time. Returns (last row (m,), dirs).

    X (n, d) and Y (m, d), or X the (n, m) cost matrix when metric == 3; YT is Y transposed (d, m)
    contiguous, or an empty (0, 0) array to compute costs row by row.
    dirs (uint8, one per band cell, only when `store`): dirs[rowptr[i] + j - lo[i]] is 0 = diagonal,
    1 = left (i, j-1), 2 = up (i-1, j). Row buffers span all m columns (+inf outside the band, index
    shifted by one so column -1 is a permanent +inf sentinel); local costs of a block are computed first
    (per-row loops the compiler can vectorise), then the DP runs branch-free over the block.
    """
    n = lo.shape[0]
    m = X.shape[1] if metric == 3 else Y.shape[0]
    wmax = 0
    b = 1
    while b < n:
        e = min(b + 4, n)
        L = lo[b]
        H = hi[b]
        for r in range(b + 1, e):
            L = min(L, lo[r])
            H = max(H, hi[r])
        wmax = max(wmax, H - L)
        b = e
    wmax = max(wmax, hi[0] - lo[0])
    cb = np.empty((4, wmax))
    Bk = np.empty((4, wmax + 1))
    P = np.full(m + 1, INF)
    N = np.full(m + 1, INF)
    ndirs = rowptr[n] if store else 0
    dirs = np.empty(ndirs, dtype=np.uint8)
    # row 0
    _cost_rows(X, Y, YT, metric, lo, hi, 0, 1, lo[0], hi[0], cb)
    acc = 0.0 if lo[0] == 0 else INF
    for j in range(lo[0], hi[0]):
        acc += cb[0, j - lo[0]]
        P[j + 1] = acc
        if store:
            dirs[rowptr[0] + j - lo[0]] = 1
    pl = lo[0]
    ph = hi[0]  # P holds finite values only inside [pl, ph)
    nl = 0
    nh = 0  # N's stale range
    i = 1
    while i < n:
        nr = min(4, n - i)
        if nr < 4:
            nr = 1
        L = lo[i]
        H = hi[i]
        for r in range(1, nr):
            L = min(L, lo[i + r])
            H = max(H, hi[i + r])
        _cost_rows(X, Y, YT, metric, lo, hi, i, nr, L, H, cb)
        W = np.uint64(H - L)
        one = np.uint64(1)
        Pv = P[L : H + 1]  # Pv[k] = D[i-1, L + k - 1]
        # Bk[r][k + 1] = D[i + r, L + k], Bk[r][0] = +inf (column L - 1 is outside every row's band)
        B0 = Bk[0]
        B1 = Bk[1]
        B2 = Bk[2]
        B3 = Bk[3]
        B0[0] = INF
        B1[0] = INF
        B2[0] = INF
        B3[0] = INF
        if nr == 4:
            a0 = INF
            a1 = INF
            a2 = INF
            a3 = INF
            pd = Pv[0]
            cb0 = cb[0]
            cb1 = cb[1]
            cb2 = cb[2]
            cb3 = cb[3]
            if wd == 1.0:
                # symmetric1: min(a + c, pd + c, up + c) == min(a, pd, up) + c exactly (rounding is monotone)
                for k in range(W):
                    up = Pv[k + one]
                    d0 = min(a0, min(pd, up)) + cb0[k]
                    d1 = min(a1, min(a0, d0)) + cb1[k]
                    d2 = min(a2, min(a1, d1)) + cb2[k]
                    d3 = min(a3, min(a2, d2)) + cb3[k]
                    B0[k + one] = d0
                    B1[k + one] = d1
                    B2[k + one] = d2
                    B3[k + one] = d3
                    pd = up
                    a0 = d0
                    a1 = d1
                    a2 = d2
                    a3 = d3
            for k in range(W if wd != 1.0 else np.uint64(0)):
                c0 = cb0[k]
                c1 = cb1[k]
                c2 = cb2[k]
                c3 = cb3[k]
                up = Pv[k + one]
                d0 = min(a0 + c0, min(pd + wd * c0, up + c0))
                d1 = min(a1 + c1, min(a0 + wd * c1, d0 + c1))
                d2 = min(a2 + c2, min(a1 + wd * c2, d1 + c2))
                d3 = min(a3 + c3, min(a2 + wd * c3, d2 + c3))
                B0[k + one] = d0
                B1[k + one] = d1
                B2[k + one] = d2
                B3[k + one] = d3
                pd = up
                a0 = d0
                a1 = d1
                a2 = d2
                a3 = d3
        else:
            a0 = INF
            pd = Pv[0]
            cb0 = cb[0]
            for k in range(W):
                c0 = cb0[k]
                up = Pv[k + one]
                d0 = min(a0 + c0, min(pd + wd * c0, up + c0))
                B0[k + one] = d0
                pd = up
                a0 = d0
        last = Bk[nr - 1]
        Nv = N[L + 1 : H + 1]
        for k in range(W):
            Nv[k] = last[k + one]
        if store:
            # Directions in a second, dependency-free pass (vectorisable): the DP kept exactly one of the
            # three candidate sums, so comparing it with the same sums recomputed gives the winner, with
            # ties to diagonal, then left, then up.
            for r in range(nr):
                prev = Pv if r == 0 else Bk[r - 1]
                cur = Bk[r]
                cr = cb[r]
                off = lo[i + r] - L
                w = hi[i + r] - lo[i + r]
                dv = dirs[rowptr[i + r] : rowptr[i + r + 1]]
                ps = prev[off : off + w + 1]
                cs = cur[off : off + w + 1]
                crs = cr[off : off + w]
                for k in range(np.uint64(w)):
                    c = crs[k]
                    best = cs[k + one]
                    notd = best != ps[k] + wd * c
                    notl = best != cs[k] + c
                    dv[k] = np.uint8(notd) + np.uint8(notd & notl)
        # N held an older row on [nl, nh): clear what this block did not overwrite
        for j in range(nl, min(nh, L)):
            N[j + 1] = INF
        for j in range(max(nl, H), nh):
            N[j + 1] = INF
        T = P
        P = N
        N = T
        nl = pl
        nh = ph
        pl = L
        ph = H
        i += nr
    out = np.full(m, INF)
    for j in range(pl, ph):
        out[j] = P[j + 1]
    return out, dirs


@njit(cache=True, nogil=True)
def sym_backtrack(dirs, lo, rowptr, iend, jend):
    """Follow `dirs` from (iend, jend) back to (0, 0); returns the (k, 2) int64 path from the start."""
    out = np.empty((iend + jend + 1, 2), dtype=np.int64)
    i = iend
    j = jend
    k = 0
    out[0, 0] = i
    out[0, 1] = j
    while i > 0 or j > 0:
        d = dirs[rowptr[i] + j - lo[i]]
        if i == 0:
            d = 1
        if d == 0:
            i -= 1
            j -= 1
        elif d == 1:
            j -= 1
        else:
            i -= 1
        k += 1
        out[k, 0] = i
        out[k, 1] = j
    return out[: k + 1][::-1].copy()


# ---------------------------------------------------------------------------------------------------------------
# Generic step patterns
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _g_get(D, base, lo, hi, i, j, open_begin):
    if i < 0:
        if i == -1 and open_begin and j >= 0:
            return 0.0
        return INF
    if j < lo[i] or j >= hi[i]:
        return INF
    return D[base[i] + j]


@njit(cache=True, nogil=True)
def _g_cell(X, Y, metric, lo, hi, ptr, sdi, sdj, sw, open_begin, D, base, C, cbase, i, j, m):
    """Best value at (i, j) and the index of the first step reaching it (-1 when unreachable)."""
    best = INF
    bs = -1
    nsteps = ptr.shape[0] - 1
    for s in range(nsteps):
        o = ptr[s]
        g = _g_get(D, base, lo, hi, i - sdi[o], j - sdj[o], open_begin)
        if g == INF:
            continue
        acc = g
        for t in range(o + 1, ptr[s + 1]):
            ii = i - sdi[t]
            jj = j - sdj[t]
            if jj < 0 or ii < -1:
                acc = INF
                break
            if ii == -1:
                if not open_begin:
                    acc = INF
                    break
                continue  # the virtual row before row 0 has zero local cost
            if jj < lo[ii] or jj >= hi[ii]:
                acc = INF
                break
            if C.shape[0] > 0:
                acc += sw[t] * C[cbase[ii] + jj]
            else:
                acc += sw[t] * _cost(X, Y, ii, jj, metric)
        if acc < best:
            best = acc
            bs = s
    return best, bs


@njit(cache=True, nogil=True)
def generic_fill(X, Y, metric, lo, hi, ptr, sdi, sdj, sw, open_begin, keep_all):
    """Any step pattern over a band. Returns (last row (m,), D, base).

    keep_all: D holds every band cell (row i at D[base[i] + j]) for backtracking; otherwise only the last
    max_di + 1 rows (full width) are kept. Local costs are computed once per cell into a rolling buffer of
    max_di + 1 rows.
    """
    n = lo.shape[0]
    m = X.shape[1] if metric == 3 else Y.shape[0]
    R = 0
    for t in range(sdi.shape[0]):
        R = max(R, sdi[t])
    base = np.empty(n, dtype=np.int64)
    if keep_all:
        tot = 0
        for i in range(n):
            base[i] = tot - lo[i]
            tot += hi[i] - lo[i]
        D = np.empty(tot)
    else:
        for i in range(n):
            base[i] = (i % (R + 1)) * m
        D = np.empty((R + 1) * m)
    cbase = np.empty(n, dtype=np.int64)
    for i in range(n):
        cbase[i] = (i % (R + 1)) * m
    C = np.empty((R + 1) * m)
    for i in range(n):
        cb = cbase[i]
        for j in range(lo[i], hi[i]):
            C[cb + j] = _cost(X, Y, i, j, metric)
        bi = base[i]
        for j in range(lo[i], hi[i]):
            if i == 0 and j == 0 and not open_begin:
                D[bi] = C[cb]
                continue
            v, _ = _g_cell(X, Y, metric, lo, hi, ptr, sdi, sdj, sw, open_begin, D, base, C, cbase, i, j, m)
            D[bi + j] = v
    out = np.full(m, INF)
    last = n - 1
    for j in range(lo[last], hi[last]):
        out[j] = D[base[last] + j]
    return out, D, base


@njit(cache=True, nogil=True)
def generic_backtrack(X, Y, metric, lo, hi, ptr, sdi, sdj, sw, open_begin, D, base, iend, jend):
    """Recompute the winning step at each cell from (iend, jend) back to the start; (k, 2) int64 path."""
    m = X.shape[1] if metric == 3 else Y.shape[0]
    empty = np.empty(0)
    eb = np.empty(0, dtype=np.int64)
    out = np.empty((2 * (iend + jend + 2), 2), dtype=np.int64)
    k = 0
    i = iend
    j = jend
    out[0, 0] = i
    out[0, 1] = j
    k = 1
    while True:
        if i == 0 and j == 0 and not open_begin:
            break
        if i < 0:
            break
        _, s = _g_cell(X, Y, metric, lo, hi, ptr, sdi, sdj, sw, open_begin, D, base, empty, eb, i, j, m)
        if s < 0:
            break
        o = ptr[s]
        for t in range(ptr[s + 1] - 1, o, -1):
            if sdi[t] == 0 and sdj[t] == 0:
                continue
            ii = i - sdi[t]
            if ii >= 0:
                out[k, 0] = ii
                out[k, 1] = j - sdj[t]
                k += 1
        i = i - sdi[o]
        j = j - sdj[o]
        if i >= 0:
            out[k, 0] = i
            out[k, 1] = j
            k += 1
    return out[:k][::-1].copy()


# ---------------------------------------------------------------------------------------------------------------
# Batch
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, parallel=True)
def batch_pairs_1d(flat, offsets, pi, pj, radius, wd):
    """DTW distance of many pairs of 1-D series packed in `flat` (series s is flat[offsets[s]:offsets[s+1]]).

    radius < 0: no window; otherwise a Sakoe–Chiba band |i - j| <= radius. Pairs run in parallel (prange).
    """
    npairs = pi.shape[0]
    out = np.empty(npairs)
    for p in prange(npairs):
        a = flat[offsets[pi[p]] : offsets[pi[p] + 1]]
        b = flat[offsets[pj[p]] : offsets[pj[p] + 1]]
        n = a.shape[0]
        m = b.shape[0]
        lo = np.empty(n, dtype=np.int64)
        hi = np.empty(n, dtype=np.int64)
        for i in range(n):
            if radius < 0:
                lo[i] = 0
                hi[i] = m
            else:
                lo[i] = min(max(i - radius, 0), m)
                hi[i] = min(max(i + radius + 1, 0), m)
        ok = True
        for i in range(n):
            if hi[i] <= lo[i]:
                ok = False
        if not ok or lo[0] != 0 or hi[n - 1] != m:
            out[p] = INF
            continue
        last = sym_dist_1d(a, b, lo, hi, wd)
        out[p] = last[m - 1]
    return out


@njit(cache=True, nogil=True, parallel=True)
def batch_pairs_nd(X, Y, metric, xoff, yoff, pi, pj, radius, wd):
    """Like `batch_pairs_1d` for (frames, d) series packed row-wise in X (offsets xoff) and Y (offsets yoff)."""
    npairs = pi.shape[0]
    out = np.empty(npairs)
    for p in prange(npairs):
        A = X[xoff[pi[p]] : xoff[pi[p] + 1]]
        B = Y[yoff[pj[p]] : yoff[pj[p] + 1]]
        n = A.shape[0]
        m = B.shape[0]
        lo = np.empty(n, dtype=np.int64)
        hi = np.empty(n, dtype=np.int64)
        rowptr = np.zeros(n + 1, dtype=np.int64)
        ok = True
        for i in range(n):
            if radius < 0:
                lo[i] = 0
                hi[i] = m
            else:
                lo[i] = min(max(i - radius, 0), m)
                hi[i] = min(max(i + radius + 1, 0), m)
            if hi[i] <= lo[i]:
                ok = False
            rowptr[i + 1] = rowptr[i] + hi[i] - lo[i]
        if not ok or lo[0] != 0 or hi[n - 1] != m:
            out[p] = INF
            continue
        last, _ = sym_fill(A, B, np.empty((0, 0)), metric, lo, hi, rowptr, wd, False)
        out[p] = last[m - 1]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Subsequence search: LB_Keogh + early-abandoning banded DTW (symmetric1, squared differences)
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def envelope(q, r):
    """Upper and lower envelope of q over windows [i - r, i + r] (O(n r), r is small)."""
    n = q.shape[0]
    U = np.empty(n)
    Lo = np.empty(n)
    for i in range(n):
        a = max(0, i - r)
        b = min(n, i + r + 1)
        u = q[a]
        lw = q[a]
        for k in range(a + 1, b):
            u = max(u, q[k])
            lw = min(lw, q[k])
        U[i] = u
        Lo[i] = lw
    return U, Lo


@njit(cache=True, nogil=True, inline="always")
def _lb_keogh(U, Lo, c, mu, sd, bsf):
    """LB_Keogh of the (normalised (c - mu) / sd) candidate against envelope (U, Lo); abandons above bsf."""
    s = 0.0
    for i in range(c.shape[0]):
        v = (c[i] - mu) / sd
        if v > U[i]:
            t = v - U[i]
            s += t * t
        elif v < Lo[i]:
            t = v - Lo[i]
            s += t * t
        if s >= bsf:
            return s
    return s


@njit(cache=True, nogil=True)
def _ea_dtw(q, c, mu, sd, r, bsf, P, N):
    """symmetric1 DTW, squared differences, band |i - j| <= r, between q and (c - mu)/sd; INF once every cell
    of a row reaches bsf (early abandoning). P, N: scratch rows of length len(q)."""
    L = q.shape[0]
    for j in range(L):
        P[j] = INF
    acc = 0.0
    for j in range(min(L, r + 1)):
        t = q[0] - (c[j] - mu) / sd
        acc += t * t
        P[j] = acc
    if P[0] >= bsf:  # row 0 is a running sum, so its minimum is its first cell
        return INF
    for i in range(1, L):
        lo = max(0, i - r)
        hi = min(L, i + r + 1)
        a = INF
        pd = P[lo - 1] if lo >= 1 else INF
        rowmin = INF
        for j in range(lo, hi):
            t = q[i] - (c[j] - mu) / sd
            cc = t * t
            up = P[j]
            v = min(a, min(up, pd)) + cc
            N[j] = v
            pd = up
            a = v
            rowmin = min(rowmin, v)
        if lo >= 1:
            N[lo - 1] = INF
        if hi < L:
            N[hi] = INF
        if rowmin >= bsf:
            return INF
        T = P
        P = N
        N = T
        if i == L - 1:
            return P[L - 1]
    return P[L - 1]


@njit(cache=True, nogil=True)
def subsequence_scan(q, s, r, k, znorm, use_lb):
    """Best k (distance, start) of q against every window of s of length len(q); DTW symmetric1, band r.

    With `znorm` each window is z-normalised (and q is expected z-normalised by the caller). Returns
    (dists (k,), starts (k,), n_lb_pruned, n_dtw_abandoned, n_dtw_full).
    """
    L = q.shape[0]
    T = s.shape[0] - L + 1
    U, Lo = envelope(q, r)
    best_d = np.full(k, INF)
    best_t = np.full(k, -1, dtype=np.int64)
    P = np.empty(L)
    N = np.empty(L)
    cs = np.zeros(s.shape[0] + 1)
    cs2 = np.zeros(s.shape[0] + 1)
    for i in range(s.shape[0]):
        cs[i + 1] = cs[i] + s[i]
        cs2[i + 1] = cs2[i] + s[i] * s[i]
    pruned = 0
    abandoned = 0
    full = 0
    for t in range(T):
        mu = 0.0
        sd = 1.0
        if znorm:
            mu = (cs[t + L] - cs[t]) / L
            var = (cs2[t + L] - cs2[t]) / L - mu * mu
            sd = math.sqrt(var) if var > 1e-24 else 1.0
        c = s[t : t + L]
        bsf = best_d[k - 1]
        if use_lb:
            lb = _lb_keogh(U, Lo, c, mu, sd, bsf)
            if lb >= bsf:
                pruned += 1
                continue
        d = _ea_dtw(q, c, mu, sd, r, bsf, P, N)
        if d == INF or d >= bsf:
            abandoned += 1
            continue
        full += 1
        # insert into the sorted top-k
        pos = k - 1
        while pos > 0 and best_d[pos - 1] > d:
            best_d[pos] = best_d[pos - 1]
            best_t[pos] = best_t[pos - 1]
            pos -= 1
        best_d[pos] = d
        best_t[pos] = t
    return best_d, best_t, pruned, abandoned, full
