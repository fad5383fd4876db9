"""How many of a sensor's contacts a microphone heard at one lag, and how likely chance alone made that many.

A sensor on a struck object and a microphone share the instants contacts start (impact envelopes,
`features.impact`). A lag that puts ``v`` of the sensor's ``k`` contacts onto an impact the microphone heard
(within `TOL_S`) rests on ``v`` separate events. If the microphone's impacts had nothing to do with the sensor,
each contact would find one near it with probability ``p0``: the share of the window that lies within `TOL_S` of
one of the microphone's impacts. The chance of ``v`` or more of ``k`` is then the binomial tail, and the chance
that *some* lag of the search range gets that many is at most that tail times the number of separate lags tried,
``(2 M + 1) / (2 tol + 1)`` (Bonferroni). `coincidence` returns that bound: a small value says the lag is carried
by several contacts that chance would not line up, where a correlation's prominence only says how far its peak
stands above the next. Pure numpy; `coincidence_reference` is the slow loop it is tested against.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

REL = 0.5
"""A contact is a local maximum of the sensor's envelope of at least this fraction of the window's highest one;
the microphone's impacts are its samples above this fraction of its 99.5th percentile (its loud contacts)."""
TOL_S = 0.001
"""How close a microphone impact must be to a contact, seconds (impact envelopes peak within a sample of a
contact's start on both sides: `tests/unit/test_impact_features.py`)."""
SEPARATION_S = 0.025
"""Contacts closer than this are one (a contact's envelope has several local maxima within its first few ms)."""


def _local_max(x: np.ndarray, w: int) -> np.ndarray:
    """The maximum of `x` within ``+-w`` samples of each sample."""
    return sliding_window_view(np.pad(x, w, constant_values=-np.inf), 2 * w + 1).max(axis=1)


def _binomial_tail(k: int, v: int, p: float) -> float:
    """P(X >= v) for X ~ Binomial(k, p)."""
    return float(sum(math.comb(k, i) * p**i * (1.0 - p) ** (k - i) for i in range(v, k + 1)))


def coincidence(ref: np.ndarray, cand: np.ndarray, M: int, j: int, grid_s: float) -> tuple[int, int, float]:
    """The contacts of `cand` (a sensor's impact envelope, ``n + 2 M`` samples, as `measure_lag` takes it) at lag
    `j` grid steps that the microphone's impact envelope `ref` (``n`` samples) heard: ``(v, k, chance)``, with
    `chance` the bound on how likely some lag of ``+-M`` steps puts ``v`` of ``k`` on an impact by chance (1.0
    when there is nothing to count). NaN counts as no signal."""
    n = len(ref)
    if len(cand) != n + 2 * M or abs(j) > M or n == 0:
        raise ValueError(f"coincidence needs len(cand) = len(ref) + 2 M and |j| <= M, got {len(cand)}, {n}, {M}, {j}")
    c = np.nan_to_num(np.asarray(cand[M + j : M + j + n], dtype=np.float64), nan=0.0)
    r = np.nan_to_num(np.asarray(ref, dtype=np.float64), nan=0.0)
    top_c = float(c.max())
    top_r = float(np.percentile(r, 99.5))
    if not (top_c > 0.0 and top_r > 0.0):
        return 0, 0, 1.0
    contacts = np.nonzero((c >= REL * top_c) & (c == _local_max(c, max(1, round(SEPARATION_S / grid_s)))))[0]
    tol = max(1, round(TOL_S / grid_s))
    heard = _local_max((r >= REL * top_r).astype(np.float64), tol) > 0.0
    k = len(contacts)
    v = int(heard[contacts].sum())
    if k == 0:
        return 0, 0, 1.0
    p0 = float(heard.mean())
    return v, k, min(1.0, _binomial_tail(k, v, p0) * (2 * M + 1) / (2 * tol + 1))


def coincidence_reference(ref, cand, M: int, j: int, grid_s: float) -> tuple[int, int, float]:
    """`coincidence` by explicit loops (the slow reference of the equivalence test)."""
    n = len(ref)
    c = [0.0 if not math.isfinite(x) else float(x) for x in cand[M + j : M + j + n]]
    r = [0.0 if not math.isfinite(x) else float(x) for x in ref]
    top_c = max(c)
    top_r = float(np.percentile(np.array(r), 99.5))
    if not (top_c > 0.0 and top_r > 0.0):
        return 0, 0, 1.0
    w = max(1, round(SEPARATION_S / grid_s))
    tol = max(1, round(TOL_S / grid_s))
    loud = [x >= REL * top_r for x in r]
    heard = [any(loud[max(0, i - tol) : i + tol + 1]) for i in range(n)]
    contacts = [i for i in range(n) if c[i] >= REL * top_c and c[i] == max(c[max(0, i - w) : i + w + 1])]
    k, v = len(contacts), sum(heard[i] for i in contacts)
    if k == 0:
        return 0, 0, 1.0
    p0 = sum(heard) / n
    tail = sum(math.comb(k, i) * p0**i * (1 - p0) ** (k - i) for i in range(v, k + 1))
    return v, k, min(1.0, tail * (2 * M + 1) / (2 * tol + 1))
