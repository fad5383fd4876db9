"""`engine.rate.PairRate`: the rate between two device clocks from pairs of their times of one instant."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.engine.rate import PairRate, pair_rate_reference


def _pairs(rng, rate_ppm, n=121, hop_s=0.5, noise_s=20e-6, t0=1000.0, step_at=None, step_s=0.0):
    t_b = t0 + hop_s * np.arange(n) + rng.uniform(-0.01, 0.01, n)
    t_a = 37.0 + (1 + rate_ppm * 1e-6) * (t_b - t0) + rng.normal(0, noise_s, n)
    if step_at is not None:
        t_a[t_b - t0 >= step_at] += step_s
    return list(zip(t_a.tolist(), t_b.tolist()))


@pytest.mark.parametrize("seed", range(5))
def test_rate_equals_the_reference_one_pair_at_a_time(seed):
    rng = np.random.default_rng(seed)
    pr = PairRate()
    pairs = _pairs(rng, rng.uniform(-200, 200), step_at=rng.uniform(10, 50), step_s=rng.uniform(-2e-3, 2e-3))
    for a, b in pairs:
        pr.add(a, b)
    kept = [(a, b) for a, b in pairs if b >= pairs[-1][1] - pr.window_s]  # the window: the newest 60 s
    assert pr.rate() == pytest.approx(pair_rate_reference(kept, pr.lag_s), abs=1e-12)


def test_a_rate_to_a_fraction_of_a_ppm_where_clock_slopes_are_not():
    """Pairs as a microphone locked by raw audio gives them (20 us of noise, one per 0.5 s hop over 60 s)."""
    errs = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        true = rng.uniform(-200, 200)
        pr = PairRate()
        for a, b in _pairs(rng, true):
            pr.add(a, b)
        errs.append(abs(pr.rate() * 1e6 - true))
    assert max(errs) < 1.0 and np.median(errs) < 0.3  # 200 seeds: median 0.19, worst 0.85 ppm


def test_a_step_of_the_pairs_does_not_tilt_it():
    """A capture latency that changes by 1 ms in the middle: an ordinary line through the pairs tilts by tens of
    ppm, the median of the 10 s slopes hardly moves."""
    rng = np.random.default_rng(3)
    pairs = _pairs(rng, 50.0, step_at=30.0, step_s=1e-3)
    pr = PairRate()
    for a, b in pairs:
        pr.add(a, b)
    a, b = np.array(pairs).T
    ols = np.polyfit(b - b[0], a, 1)[0] - 1
    assert abs(ols * 1e6 - 50.0) > 10.0
    assert abs(pr.rate() * 1e6 - 50.0) < 1.0
    errs = []
    for seed in range(20):  # anywhere in the window (200 seeds: median 0.82, worst 1.94 ppm)
        rng = np.random.default_rng(100 + seed)
        pr = PairRate()
        for a, b in _pairs(rng, -120.0, step_at=rng.uniform(5, 55), step_s=1e-3):
            pr.add(a, b)
        errs.append(abs(pr.rate() * 1e6 + 120.0))
    assert max(errs) < 2.5


def test_no_rate_before_the_span_and_the_window_keeps_the_newest():
    pr = PairRate(window_s=60.0, lag_s=10.0, min_span_s=20.0)
    for k in range(40):
        pr.add(k * 0.5 * 1.0001, k * 0.5)
    assert pr.span_s < 20.0 and pr.rate() is None
    for k in range(40, 400):
        pr.add(k * 0.5 * 1.0001, k * 0.5)
    assert pr.span_s == pytest.approx(60.0) and pr.rate() == pytest.approx(1e-4, abs=1e-9)
    pr.add(10.0, 100.0)  # not newer than the newest pair: ignored
    assert pr.span_s == pytest.approx(60.0)


def test_a_new_key_starts_again_keeping_the_rate_until_the_new_pairs_span_enough():
    """A clock that jumps keeps its oscillator: the rate from before is kept until the pairs after the jump span
    `min_span_s`; `clear` (a lock dropped) forgets it."""
    pr = PairRate()
    for k in range(100):
        pr.add(k * 0.5 * (1 + 30e-6), k * 0.5, key=0)
    assert pr.rate() == pytest.approx(30e-6, abs=1e-9)
    for k in range(100, 120):
        pr.add(1.5 + k * 0.5 * (1 + 31e-6), k * 0.5, key=1)  # stepped 1.5 s, its rate a little different
    assert pr.span_s < pr.min_span_s and pr.rate() == pytest.approx(30e-6, abs=1e-9)
    for k in range(120, 160):
        pr.add(1.5 + k * 0.5 * (1 + 31e-6), k * 0.5, key=1)
    assert pr.rate() == pytest.approx(31e-6, abs=1e-9)
    pr.clear()
    assert pr.rate() is None and pr.key is None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lag_s"):
        PairRate(window_s=10.0, lag_s=10.0, min_span_s=20.0)
