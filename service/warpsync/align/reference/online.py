"""Plain-Python OLTW oracle (Dixon 2005), one pass over whole streams with a full dictionary of costs. Tests only.

Same algorithm and conventions as `warpsync.align.kernels.oltw` (symmetric 1-1-2 weights, D(0,0) = 2 d(0,0),
frontier compared by D(i, j) / (i + j + 2), GetInc with search width c and MaxRunCount), written directly
from the paper's pseudocode without the cost ring or the frame rings.
"""

from __future__ import annotations

import math

import numpy as np


def _local(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    # sums accumulated in feature order, as the kernel does: ties between paths must break the same way
    if metric == "cosine":
        ab = aa = bb = 0.0
        for u, v in zip(a.tolist(), b.tolist()):
            ab += u * v
            aa += u * u
            bb += v * v
        if aa == 0.0 or bb == 0.0:
            return 1.0
        return max(0.0, 1.0 - ab / math.sqrt(aa * bb))
    sq = 0.0
    for u, v in zip(a.tolist(), b.tolist()):
        sq += (u - v) * (u - v)
    return math.sqrt(sq) if metric == "euclidean" else sq


def oltw_ref(X, Y, c: int, max_run: int, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Run OLTW until a step needs a frame that X or Y does not have; (pairs (k, 2), normalised costs (k,))."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    D: dict[tuple[int, int], float] = {}

    def get(i: int, j: int) -> float:
        return D.get((i, j), math.inf)

    def evaluate(i: int, j: int) -> None:
        d = _local(X[i], Y[j], metric)
        if i == 0 and j == 0:
            D[(i, j)] = 2 * d
        else:
            D[(i, j)] = min(get(i - 1, j - 1) + 2 * d, get(i - 1, j) + d, get(i, j - 1) + d)

    def best(t: int, j: int) -> tuple[int, int, float]:
        cands = [(t, j)] + [(t, k) for k in range(max(0, j - c + 1), j)] + [(i, j) for i in range(max(0, t - c + 1), t)]
        bx, by, bv = t, j, get(t, j) / (t + j + 2)
        for x, y in cands[1:]:
            v = get(x, y) / (x + y + 2)
            if v < bv:
                bx, by, bv = x, y, v
        return bx, by, bv

    t = j = -1
    run, previous = 0, "none"
    pairs, costs = [], []
    while True:
        if t < c - 1:
            inc = "both"
        elif run > max_run:
            inc = "column" if previous == "row" else "row"
        else:
            x, y, _ = best(t, j)
            inc = "column" if x < t else ("row" if y < j else "both")
        if (inc != "column" and t + 1 >= len(X)) or (inc != "row" and j + 1 >= len(Y)):
            break
        if inc != "column":
            t += 1
            for k in range(max(0, j - c + 1), j + 1):
                evaluate(t, k)
        if inc != "row":
            j += 1
            for i in range(max(0, t - c + 1), t + 1):
                evaluate(i, j)
        run = run + 1 if inc == previous else 1
        if inc != "both":
            previous = inc
        x, y, v = best(t, j)
        pairs.append((x, y))
        costs.append(v)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(costs)
