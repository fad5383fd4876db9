"""A camera-sensor window's lag from its events one at a time.

A window of a sensor against a camera's cells (8 s, `content.kinetic_window_s`) holds a few velocity changes of
the sensor's object, and its cross-correlation peak is their energy-weighted mean. One event's timing between a
camera's kinetic envelope and an accelerometer's scatters by about 3 ms (robust standard deviation over 344
kicks of the default rig, seeds 1-20, `tools/engine/contact_timing.py`), with a heavy tail: one kick in nine is
more than 8 ms off (an object moving along the line of sight, or half out of its cell), and the sensor's
velocity changes the camera does not see match whatever else moves there. A mean of three or four such events is
pulled several milliseconds by one of them.

`event_lags` measures each event of the candidate (the sensor's envelope, or the contacts the microphone heard
through the sensor's response) on its own, near the window's lag; `robust_window_lag` takes their weighted
median where there are at least three, with a sigma from their spread and no less than one event's scatter
over the square root of their number. Pure functions; `tests/unit/test_event_lags.py` checks them against a
lag-by-lag reference.
"""

from __future__ import annotations

import math

import numpy as np

from .content import normalized_xcorr, parabolic_peak


def event_lags(
    ref: np.ndarray,
    cand: np.ndarray,
    M: int,
    lag: float,
    *,
    half: int,
    search: int,
    min_frac: float,
    min_corr: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each event's own lag, in grid steps, near the window's lag `lag` (steps), and its peak correlation.

    `ref` (n,) and `cand` (n + 2 M,) are a window as `content.measure_lag` takes it (``cand[M + j]`` lines up
    with ``ref[j]`` at lag 0). Events are the largest values of `cand` inside the window at that lag, at least
    ``min_frac`` of the way from its median to its maximum, strongest first, each at least `half` steps from a
    stronger one. Each is measured by the normalized cross-correlation of ``ref`` over ``+-half`` steps around
    it with `cand` over ``+-search`` steps around the window's lag (sub-step by parabola), and kept where that
    peaks at least `min_corr` inside the search, not at its edge: an event the camera does not see has no peak
    there. Returns (lags, correlations, places), strongest event first: an event's place is where it sits in
    `ref` (the candidate's peak less the event's own lag), in steps from ``ref[0]`` (diagnostics)."""
    n = len(ref)
    li = round(float(lag))
    lo = M + li + half + search
    hi = M + li + n - half - search
    none = np.zeros(0), np.zeros(0), np.zeros(0)
    if hi - lo < 3:
        return none
    seg = np.nan_to_num(cand[lo:hi], nan=-np.inf)
    top = float(seg.max())
    if not np.isfinite(top) or top <= 0:
        return none
    base = float(np.median(seg[np.isfinite(seg)]))
    thr = base + min_frac * (top - base)
    lags, cors, places = [], [], []
    taken = np.zeros(seg.size, dtype=bool)
    for idx in np.argsort(-seg, kind="stable"):
        if seg[idx] < thr:
            break
        if taken[max(0, idx - half) : idx + half + 1].any():
            continue
        taken[idx] = True
        p = lo + idx
        r = ref[p - M - li - half : p - M - li + half + 1]
        cc = cand[p - half - search : p + half + 1 + search]
        if not (np.isfinite(r).all() and np.isfinite(cc).all()) or float(r.std()) == 0.0:
            continue
        c = normalized_xcorr(r, cc, search)
        i = int(np.argmax(c))
        if i == 0 or i == len(c) - 1 or c[i] < min_corr:
            continue
        frac, _ = parabolic_peak(c, i)
        lags.append(li + i + frac - search)
        cors.append(float(c[i]))
        places.append(float(p - M - lags[-1]))
    return np.array(lags), np.array(cors), np.array(places)


def weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """The smallest `x` at which the cumulative weight (in the order of `x`) reaches half the total."""
    if len(x) == 0:
        raise ValueError("weighted_median of nothing")
    o = np.argsort(x, kind="stable")
    cw = np.cumsum(w[o])
    return float(x[o][int(np.searchsorted(cw, 0.5 * cw[-1]))])


def robust_window_lag(
    lag_s: float,
    sigma_s: float,
    events_s: np.ndarray,
    weights: np.ndarray,
    event_sigma_s: float,
    min_events: int = 3,
) -> tuple[float, float]:
    """A window's (lag, sigma), seconds, from its events' lags `events_s` and weights (their correlations).

    With at least `min_events`: their weighted median, with the largest of the window's own sigma, the events'
    spread (1.4826 MAD) over the square root of their number, and `event_sigma_s` over it. With fewer, the
    window's lag stands, with a sigma of at least `event_sigma_s` over the square root of their number (of one
    where none was found): a lag that rests on one or two events is no surer than they are."""
    k = len(events_s)
    if k >= min_events:
        med = weighted_median(np.asarray(events_s, dtype=float), np.asarray(weights, dtype=float))
        spread = 1.4826 * float(np.median(np.abs(np.asarray(events_s) - med)))
        return med, max(sigma_s, spread / math.sqrt(k), event_sigma_s / math.sqrt(k))
    return lag_s, max(sigma_s, event_sigma_s / math.sqrt(max(k, 1)))
