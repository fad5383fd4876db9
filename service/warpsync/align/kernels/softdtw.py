"""Soft-DTW forward/backward kernels (Cuturi & Blondel 2017), vectorised along anti-diagonals.

Private: arrays and scalars in, no validation, I/O or logging (the public layer is `warpsync.align.softdtw`).

What bounds the speed: the recursion costs one soft-min per cell, i.e. two exponentials and one logarithm
(the smallest of the three arguments contributes exp(0) = 1). libm's scalar exp/log take ~10 ns each here, so a
row-major loop is bound at ~40-50 ns/cell whatever one does to the dependency chain. This kernel instead
processes a stripe of `K` rows along its anti-diagonals: the K cells of one step are independent, so the loop
body is straight-line arithmetic that LLVM turns into AVX2 code, with exp/log written as polynomials (accurate to
a few ulp) and the 2^k scaling done by an integer->float bit cast. The forward pass stores, per cell, the three
soft-min weights (probabilities of coming from the diagonal, the cell above, the cell to the left); the backward
pass for the expected alignment matrix E is then pure multiply-adds, with no transcendental at all (tslearn
recomputes three exponentials per cell there).

Layout: stripe `b` covers rows [b*K, b*K + K); within it, step s holds the cells (b*K + r, s - r), r = 0..K-1.
W has shape (n_stripes, m + K + 1, 3, K): W[b, s, c, r] is weight c (0 = diagonal, 1 = from above, 2 = from the
left) of cell (b*K + r, s - r), and 0 for cells outside the matrix (the last two steps are zero padding).
For the value alone, W may have n_stripes = 1: every stripe then reuses it, so memory is O(m K) instead of O(n m).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Fast-math without the no-NaN/no-inf assumptions (the boundary of the DP is +inf) and without reassociation
# (it would undo the two-constant Cody-Waite reduction in `_exp_nonpos`).
_FM = {"nsz", "arcp", "contract", "afn"}

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_LN2 = 0.6931471805599453


@intrinsic
def _i64_as_f64(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (vectorisable, unlike a libm ldexp call)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _exp_nonpos(x):
    """exp(x) for x <= 0 (also -inf, NaN-free), relative error ~1e-16; results below exp(-708) are clamped there."""
    x = max(x, -708.0)
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln2/2
    # Taylor to degree 13: remainder < 5e-18 on |r| <= 0.347. Evaluated by Estrin's scheme, not Horner's: the
    # soft-min is latency-bound (each step's cells need the previous step's), and Estrin's tree of independent
    # multiply-adds is 5 deep instead of Horner's chain of 13.
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    a0 = 1.0 + r
    a1 = 0.5 + r * (1.0 / 6.0)
    a2 = 1.0 / 24.0 + r * (1.0 / 120.0)
    a3 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    b0 = a0 + r2 * a1
    b1 = a2 + r2 * a3
    b2 = a4 + r2 * a5
    p = (b0 + r4 * b1) + r8 * (b2 + r4 * a6)
    # via int32: AVX2 converts 4 doubles to int32 in one instruction but has no double->int64 conversion
    return p * _i64_as_f64((np.int64(np.int32(k)) + 1023) << 52)


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _log_1to4(s):
    """log(s) for s in [1, 4): s = 2^e f with f in [1/sqrt2, sqrt2), log f = 2 atanh((f-1)/(f+1)) by its series."""
    e = 0.0
    if s >= _SQRT2:
        s = s * 0.5
        e = 1.0
    if s >= _SQRT2:
        s = s * 0.5
        e = 2.0
    z = (s - 1.0) / (s + 1.0)  # |z| <= 0.1716
    z2 = z * z  # <= 0.02944: the series to z^19 leaves a relative error < 3e-17
    # Estrin's scheme (a tree 4 deep, not a chain of 10: see `_exp_nonpos`)
    t2 = z2 * z2
    t4 = t2 * t2
    t8 = t4 * t4
    a0 = 1.0 + z2 * (1.0 / 3.0)
    a1 = 1.0 / 5.0 + z2 * (1.0 / 7.0)
    a2 = 1.0 / 9.0 + z2 * (1.0 / 11.0)
    a3 = 1.0 / 13.0 + z2 * (1.0 / 15.0)
    a4 = 1.0 / 17.0 + z2 * (1.0 / 19.0)
    q = (a0 + t2 * a1) + t4 * (a2 + t2 * a3) + t8 * a4
    return e * _LN2 + 2.0 * z * q


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _softmin_step(p2, p1, dvec, cur, w, inv, gamma, K):
    """One anti-diagonal step of the stripe: K independent cells, straight-line code that LLVM vectorises.

    The smallest argument contributes exp(0) = 1, so only the middle and the largest need an exponential;
    each weight is then picked by comparison (ties pick equal values, so they are exact too).
    """
    for r in range(K):
        r0 = p2[r]
        r1 = p1[r]
        r2 = p1[r + 1]
        lo = min(r0, min(r1, r2))
        hi = max(r0, max(r1, r2))
        mid = max(min(r0, r1), min(max(r0, r1), r2))
        ea = _exp_nonpos((lo - mid) * inv)
        eb = _exp_nonpos((lo - hi) * inv)
        sm = 1.0 + ea + eb
        cur[r + 1] = dvec[r] + lo - gamma * _log_1to4(sm)
        iv = 1.0 / sm
        e0 = 1.0 if r0 == lo else (ea if r0 == mid else eb)
        e1 = 1.0 if r1 == lo else (ea if r1 == mid else eb)
        e2 = 1.0 if r2 == lo else (ea if r2 == mid else eb)
        w[0, r] = e0 * iv
        w[1, r] = e1 * iv
        w[2, r] = e2 * iv


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _sqdist_step(Xs, Yr, s, dvec, K):
    """dvec[r] = |X[i0 + r] - Y[s - r]|^2 from the stripe's Xs (d, K) and Yr (see `_softdtw_forward`).

    Lane r reads Yr[:, base + r], base = m + K - 1 - s: an ascending slice, so the loop has no index
    arithmetic that could wrap and LLVM vectorises it.
    """
    base = Yr.shape[1] - K - 1 - s
    for r in range(K):
        dvec[r] = 0.0
    for k in range(Xs.shape[0]):
        xk = Xs[k]
        yk = Yr[k, base : base + K]
        for r in range(K):
            t = xk[r] - yk[r]
            dvec[r] += t * t


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _softdtw_forward(D, Xt, Yr, use_xy, gamma, K, W):
    """Fill W (see module doc); return the soft-DTW value R(n-1, m-1).

    Local costs: D (n, m) when use_xy is False; else the squared Euclidean distance between the columns of
    Xt (d, n) and of Yr (d, m + 2K), computed on the fly: Yr is Y.T with K zero columns on each side, columns
    in reverse order (Yr[:, m + 2K - 1 - (j + K)] = Y[j]), so that one step's lanes read ascending columns.
    R(i, j) = cost(i, j) + softmin_gamma(R(i-1, j-1), R(i-1, j), R(i, j-1)), R(-1, -1) = 0, other borders +inf.
    """
    if use_xy:
        n = Xt.shape[1]
        m = Yr.shape[1] - 2 * K
    else:
        n, m = D.shape
    d = Xt.shape[0]
    inv = 1.0 / gamma
    inf = np.inf
    S = m + K - 1
    # prow[j + 1] = R(i0 - 1, j) of the row just above the stripe; prow[0] = R(i0 - 1, -1).
    prow = np.full(m + 2, inf)
    prow[0] = 0.0
    nrow = np.full(m + 2, inf)
    # Rolling anti-diagonals of the stripe, index q = r + 1; q = 0 is the row above the stripe.
    p2 = np.full(K + 1, inf)
    p1 = np.full(K + 1, inf)
    cur = np.full(K + 1, inf)
    dvec = np.zeros(K)
    Xs = np.zeros((d, K))
    value = 0.0
    nb = (n + K - 1) // K
    for b in range(nb):
        i0 = b * K
        kk = min(K, n - i0)
        if use_xy:
            for k in range(d):
                for r in range(K):
                    Xs[k, r] = Xt[k, i0 + r] if r < kk else 0.0
        for q in range(K + 1):
            p2[q] = inf
            p1[q] = inf
        # lane q=0 at step s holds R(i0-1, s+1)
        p2[0] = prow[0]  # step -2: R(i0-1, -1)
        p1[0] = prow[1]  # step -1: R(i0-1, 0)
        Wb = W[b if W.shape[0] > 1 else 0]  # one stripe's worth when only the value is wanted
        for s in range(S, S + 2):  # two zero steps after the stripe's end, read by the backward pass
            for c in range(3):
                for r in range(K):
                    Wb[s, c, r] = 0.0
        for s in range(S):
            cur[0] = prow[s + 2] if s + 2 <= m + 1 else inf
            if use_xy:
                _sqdist_step(Xs, Yr, s, dvec, K)
            else:
                # gather this step's local costs (strided in D); lanes outside the matrix get a dummy cost
                for r in range(K):
                    dvec[r] = D[min(i0 + r, n - 1), min(max(s - r, 0), m - 1)]
            _softmin_step(p2, p1, dvec, cur, Wb[s], inv, gamma, K)
            # lanes outside the matrix (only near the stripe's ends): border value and zero weights
            if s < K - 1 or s >= m or kk < K:
                for r in range(K):
                    j = s - r
                    if j < 0 or j >= m or r >= kk:
                        cur[r + 1] = inf
                        Wb[s, 0, r] = 0.0
                        Wb[s, 1, r] = 0.0
                        Wb[s, 2, r] = 0.0
            # the last row of the stripe, row-major, becomes the row above the next stripe
            jl = s - (kk - 1)
            if 0 <= jl < m:
                nrow[jl + 1] = cur[kk]
            if b == nb - 1 and jl == m - 1:
                value = cur[kk]
            tmp = p2
            p2 = p1
            p1 = cur
            cur = tmp
        nrow[0] = inf
        tmp = prow
        prow = nrow
        nrow = tmp
    return value


@njit(inline="always", fastmath=_FM, error_model="numpy")
def _expect_step(n1, n2, w1, w2, cur, K):
    """One backward anti-diagonal step for lanes 0..K-2 (their successors are all inside the stripe)."""
    for r in range(K - 1):
        cur[r] = n1[r + 1] * w1[1, r + 1] + n1[r] * w1[2, r] + n2[r + 1] * w2[0, r + 1]


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _softdtw_backward(W, n, m, K, E, store_e, X, Y, G, want_g):
    """Expected alignment E = dR(n-1, m-1)/dcost from the forward weights W (see module doc).

    E(i, j) = E(i+1, j) w_up(i+1, j) + E(i, j+1) w_left(i, j+1) + E(i+1, j+1) w_diag(i+1, j+1), E(n-1, m-1) = 1.
    store_e: write E (n, m). want_g: accumulate G (n, d) = sum_j E(i, j) 2 (x_i - y_j), the gradient of the
    value w.r.t. X for the squared Euclidean cost, from X (n, d) and Y (m, d), as
    2 (x_i sum_j E(i, j) - sum_j E(i, j) y_j): each step's E is stored as it comes, one contiguous row of a
    (m + K - 1, K) buffer; after the stripe it is copied row-major into a (K, m) buffer (both stay in cache;
    scattering each step into the row-major buffer directly is several times slower), and sum_j E(i, j) y_j is
    then one small matrix product (BLAS) per stripe.
    """
    S = m + K - 1
    nb = (n + K - 1) // K
    d = X.shape[1]
    # The row below the stripe, row-major: its E and the weights through which it reaches the stripe.
    ebel = np.zeros(m + 2)
    wup_bel = np.zeros(m + 2)
    wdg_bel = np.zeros(m + 2)
    erow = np.zeros(m + 2)  # E of the stripe's first row, collected for the next stripe up
    # rolling anti-diagonals of E at steps s+1 and s+2, lane index r
    n1 = np.zeros(K + 1)
    n2 = np.zeros(K + 1)
    cur = np.zeros(K + 1)
    kg = K if want_g else 0
    Es = np.zeros((S, kg))  # Es[s, r] = E(i0 + r, s - r), as the steps come
    Eb = np.zeros((kg, m))  # the stripe's rows of E, row-major (rows >= kk stay zero)
    rowsum = np.zeros(K)  # sum_j E(i0 + r, j)
    for b in range(nb - 1, -1, -1):
        i0 = b * K
        kk = min(K, n - i0)
        Wb = W[b]
        for q in range(K + 1):
            n1[q] = 0.0
            n2[q] = 0.0
        if want_g:
            rowsum[:] = 0.0
        for s in range(S - 1, -1, -1):
            _expect_step(n1, n2, Wb[s + 1], Wb[s + 2], cur, K)
            # lane K-1: its successors below lie in the row under the stripe (row-major, column j and j+1)
            r = K - 1
            j = s - r
            acc = n1[r] * Wb[s + 1, 2, r]
            if 0 <= j < m:
                acc += ebel[j] * wup_bel[j] + ebel[j + 1] * wdg_bel[j + 1]
            cur[r] = acc
            if b == nb - 1 and s == m - 1 + kk - 1:
                cur[kk - 1] = 1.0  # E(n-1, m-1)
            if s < K - 1 or s >= m or kk < K:
                # lanes outside the matrix carry exactly zero
                for r in range(K):
                    j = s - r
                    if j < 0 or j >= m or r >= kk:
                        cur[r] = 0.0
            if s < m:
                erow[s] = cur[0]
            if store_e:
                for r in range(kk):
                    j = s - r
                    if 0 <= j < m:
                        E[i0 + r, j] = cur[r]
            if want_g:
                Ess = Es[s]
                for r in range(K):
                    rowsum[r] += cur[r]
                    Ess[r] = cur[r]
            tmp = n2
            n2 = n1
            n1 = cur
            cur = tmp
        if want_g:
            for r in range(kk):
                Ebr = Eb[r]
                for j in range(m):
                    Ebr[j] = Es[j + r, r]
            yacc = np.dot(Eb, Y)  # yacc[r] = sum_j E(i0 + r, j) y_j
            for r in range(kk):
                for k in range(d):
                    G[i0 + r, k] = 2.0 * (X[i0 + r, k] * rowsum[r] - yacc[r, k])
        # this stripe's first row becomes the row below the next (upper) stripe
        for j in range(m):
            ebel[j] = erow[j]
            wdg_bel[j] = Wb[j, 0, 0]
            wup_bel[j] = Wb[j, 1, 0]
