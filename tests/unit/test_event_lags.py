"""`engine.events`: a camera-sensor window's lag from its events one at a time, against a lag-by-lag reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warpsync.engine.events import event_lags, robust_window_lag, weighted_median

HALF, SEARCH, M = 80, 20, 60


def _pulse(n: int, at: float, width: float = 6.0) -> np.ndarray:
    x = np.arange(n, dtype=float)
    return np.exp(-0.5 * ((x - at) / width) ** 2)


def _window(n: int, events: list[tuple[float, float, float]], noise: float, seed: int):
    """ref (n,) with a pulse at each event's place, cand (n + 2M,) with it `lag` steps later; (place, lag, size)."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(0.0, noise, n)
    cand = rng.normal(0.0, noise, n + 2 * M)
    for at, lag, size in events:
        ref += size * _pulse(n, at)
        cand += size * _pulse(n + 2 * M, M + at + lag)
    return ref, cand


def _reference(ref, cand, lag, events_at):
    """Lag by lag, the correlation of +-HALF of ref around each event with cand, best integer lag per event."""
    out = []
    for p in events_at:  # in cand indices
        r = ref[p - M - lag - HALF : p - M - lag + HALF + 1]
        best, best_l = -2.0, None
        for m in range(-SEARCH, SEARCH + 1):
            c = cand[p + m - HALF : p + m + HALF + 1]
            v = float(np.corrcoef(r, c)[0, 1])
            if v > best:
                best, best_l = v, lag + m
        out.append((best_l, best))
    return out


def test_each_event_is_measured_on_its_own_as_a_lag_by_lag_reference_finds_it():
    n = 4000
    evs = [(500.0, 3.0, 1.0), (1400.0, -2.0, 0.8), (2300.0, 9.0, 0.6), (3300.0, 1.0, 0.9)]
    ref, cand = _window(n, evs, 0.02, 1)
    lags, cors, places = event_lags(ref, cand, M, 2.0, half=HALF, search=SEARCH, min_frac=0.2, min_corr=0.5)
    # strongest first: 500, 3300, 1400, 2300
    want = [3.0, 1.0, -2.0, 9.0]
    assert lags == pytest.approx(want, abs=0.3)
    # each where it sits in ref, whatever its own lag
    assert places == pytest.approx([500.0, 3300.0, 1400.0, 2300.0], abs=1.0)
    ref_lags = _reference(ref, cand, 2, [M + 2 + 500 + 1, M + 2 + 3300 + 1, M + 2 + 1400 - 2, M + 2 + 2300 + 9])
    assert [r[0] for r in ref_lags] == [round(x) for x in lags]
    assert cors == pytest.approx([r[1] for r in ref_lags], abs=0.02)


def test_an_event_the_camera_does_not_see_is_left_out():
    n = 4000
    ref, cand = _window(n, [(500.0, 2.0, 1.0), (1500.0, 2.0, 1.0), (2500.0, 2.0, 1.0)], 0.02, 2)
    cand += 0.9 * _pulse(n + 2 * M, M + 3400.0)  # the sensor felt it, the camera saw nothing there
    lags, cors, _ = event_lags(ref, cand, M, 2.0, half=HALF, search=SEARCH, min_frac=0.2, min_corr=0.5)
    assert np.all(cors >= 0.5)
    assert len(lags) == 3 and lags == pytest.approx([2.0] * 3, abs=0.3)
    # nothing inside the window at that lag, or a window too short: no events
    assert (
        event_lags(ref[:100], cand[: 100 + 2 * M], M, 2.0, half=HALF, search=SEARCH, min_frac=0.2, min_corr=0.5)[0].size
        == 0
    )
    flat = np.zeros(n + 2 * M)
    assert event_lags(ref, flat, M, 0.0, half=HALF, search=SEARCH, min_frac=0.2, min_corr=0.5)[0].size == 0


def test_events_beyond_the_search_from_its_centre_fall_out():
    """What the search's centre decides: three events at -12 steps and two stronger ones at +14, and a window's
    peak pulled towards the strong ones (+8 here). Searched 20 steps around +8, the events at -12 sit at the
    search's edge and are left out, and the median is +14; around 0 all five are kept, and the median is theirs
    (docs/engine-log.md, "Events around the lock: not kept")."""
    n = 5000
    evs = [(500.0, -12.0, 0.6), (1500.0, 14.0, 1.0), (2500.0, -12.0, 0.6), (3500.0, 14.0, 1.0), (4400.0, -12.0, 0.6)]
    ref, cand = _window(n, evs, 0.02, 3)
    kw = {"half": HALF, "search": SEARCH, "min_frac": 0.2, "min_corr": 0.5}
    pulled, cors, _ = event_lags(ref, cand, M, 8.0, **kw)
    assert pulled == pytest.approx([14.0, 14.0], abs=0.3)
    assert weighted_median(pulled, cors) == pytest.approx(14.0, abs=0.3)
    lags, cors, _ = event_lags(ref, cand, M, 0.0, **kw)
    assert sorted(lags) == pytest.approx([-12.0] * 3 + [14.0] * 2, abs=0.3)
    assert weighted_median(lags, np.ones(5)) == pytest.approx(-12.0, abs=0.3)


def test_the_median_of_the_events_is_not_pulled_by_one_far_off():
    lags = np.array([0.001, -0.0005, 0.0015, 0.0008, -0.020])
    w = np.array([0.9, 0.8, 0.7, 0.9, 0.95])
    lag, sigma = robust_window_lag(-0.004, 0.002, lags, w, 0.003)
    assert lag == pytest.approx(0.0008)  # the mean, -0.0034, is pulled by the last
    spread = 1.4826 * float(np.median(np.abs(lags - 0.0008)))
    assert sigma == pytest.approx(max(0.002, spread / math.sqrt(5), 0.003 / math.sqrt(5)))
    # fewer than three events: the window's lag, no surer than one event over the root of their number
    assert robust_window_lag(-0.004, 0.001, lags[:2], w[:2], 0.003) == (-0.004, pytest.approx(0.003 / math.sqrt(2)))
    assert robust_window_lag(-0.004, 0.001, lags[:0], w[:0], 0.003) == (-0.004, 0.003)
    assert robust_window_lag(-0.004, 0.005, lags[:1], w[:1], 0.003) == (-0.004, 0.005)


def test_weighted_median():
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([1.0, 2.0, 10.0]), np.array([1.0, 1.0, 5.0])) == 10.0
    assert weighted_median(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 1.0
    with pytest.raises(ValueError):
        weighted_median(np.zeros(0), np.zeros(0))
