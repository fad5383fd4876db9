"""Moments of path-paired samples for CCA: the rows X[i] and Y[j] of every path cell (i, j), without copying.

Private: arrays and scalars in, no validation, I/O or logging (the public layer is `warpsync.align.cca`).
A warping path repeats frames (a frame held over several cells of the other stream); materialising X[path[:, 0]]
and Y[path[:, 1]] would cost O(k (dx + dy)) memory and two gathers per call of the CTW loop. The cross moment
is accumulated here directly, the auto moments as count-weighted sums.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def path_moments(X, Y, path, cx, cy, sx, sy, Sxy):
    """Fill cx (n,), cy (m,) with how often each frame occurs on the path, sx (dx,), sy (dy,) with the sums of
    the paired rows, and Sxy (dx, dy) with sum over cells (i, j) of outer(X[i] - mx, Y[j] - my), where mx, my
    are the path means sx / k, sy / k (centred on the fly in two passes, for accuracy)."""
    k = path.shape[0]
    dx = X.shape[1]
    dy = Y.shape[1]
    cx[:] = 0.0
    cy[:] = 0.0
    sx[:] = 0.0
    sy[:] = 0.0
    Sxy[:, :] = 0.0
    for p in range(k):
        i = path[p, 0]
        j = path[p, 1]
        cx[i] += 1.0
        cy[j] += 1.0
        for a in range(dx):
            sx[a] += X[i, a]
        for b in range(dy):
            sy[b] += Y[j, b]
    mx = sx / k
    my = sy / k
    xc = np.empty(dx)
    for p in range(k):
        i = path[p, 0]
        j = path[p, 1]
        for a in range(dx):
            xc[a] = X[i, a] - mx[a]
        for a in range(dx):
            xa = xc[a]
            for b in range(dy):
                Sxy[a, b] += xa * (Y[j, b] - my[b])
