"""Content-sync building blocks: lag measurement, GCC-PHAT, coarse search, the smoother, buffers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warpsync.engine.content import (
    ContentFilter,
    TimedBuffer,
    coarse_offset,
    frame_smooth,
    gaussian_smooth,
    gcc_phat_lag,
    measure_lag,
    normalized_xcorr,
    resample,
)


def events_envelope(rng, n, n_events, width):
    x = np.zeros(n)
    x[rng.integers(0, n, n_events)] = rng.uniform(0.5, 1.0, n_events)
    return gaussian_smooth(x, width)


def test_normalized_xcorr_hand_worked():
    # ref = [0, 1, 0]; cand = [0, 0, 0, 1, 0] with max_lag 1: cand[m:m+3] for m = 0, 1, 2
    c = normalized_xcorr(np.array([0.0, 1, 0]), np.array([0.0, 0, 0, 1, 0]), 1)
    # m=0: [0,0,0] (no variance) -> 0; m=1: [0,0,1] -> r~=[-1/3,2/3,-1/3] . c~ ; m=2: [0,1,0] -> 1
    assert c[2] == pytest.approx(1.0)
    assert c[0] == 0.0
    assert c[1] == pytest.approx(-0.5)


@pytest.mark.parametrize("lag_samples", [-37.0, 0.0, 12.25, 80.6])
def test_measure_lag_recovers_subgrid_lags(rng, lag_samples):
    n, M = 3000, 100
    base = events_envelope(rng, n + 2 * M + 200, 25, 4.0)
    t = np.arange(len(base))
    ref = base[100 + M : 100 + M + n]
    # candidate window: content late by lag_samples
    cand = np.interp(t[100 : 100 + n + 2 * M] - lag_samples, t, base)
    m = measure_lag(ref, cand, 0.001, M * 0.001)
    assert m.informative
    assert m.lag_s == pytest.approx(lag_samples * 0.001, abs=0.1 * 0.001)
    assert m.corr > 0.95 and m.sigma_s < 0.001


def test_measure_lag_says_why_not(rng):
    n, M = 2000, 50
    z = np.zeros(n + 2 * M)
    silent = measure_lag(np.zeros(n), z, 0.001, 0.05)
    assert not silent.informative and silent.reason == "silent"
    noise = measure_lag(rng.normal(size=n), rng.normal(size=n + 2 * M), 0.001, 0.05)
    assert not noise.informative and noise.reason in ("low_corr", "ambiguous", "edge")
    # periodic content: many equally good lags -> ambiguous
    t = np.arange(n + 2 * M)
    per = np.sin(2 * np.pi * t / 20.0)
    amb = measure_lag(per[M : M + n], per, 0.001, 0.05)
    assert not amb.informative and amb.reason == "ambiguous"


def test_gcc_phat_fractional_delay(rng):
    rate = 8000.0
    n = 16000
    src = rng.normal(size=n + 200)
    f = np.fft.rfftfreq(n + 200, 1 / rate)
    delay = 0.0031234  # seconds, not a whole sample
    late = np.fft.irfft(np.fft.rfft(src) * np.exp(-2j * np.pi * f * delay), n + 200)
    lag, sharp, unique = gcc_phat_lag(src[100 : 100 + n], late[100 : 100 + n] + 0.1 * rng.normal(size=n), rate, 0.005)
    assert lag == pytest.approx(delay, abs=30e-6)
    assert sharp > 20 and unique > 2


def test_coarse_offset_finds_minutes(rng):
    dt = 0.001
    t = np.arange(0, 200, dt)
    ev = np.sort(rng.uniform(0, 200, 300))
    vals = np.zeros(len(t))
    vals[(ev / dt).astype(int)] = 1.0
    true_off = 73.456  # t_ref = t_cand + 73.456
    ref_t, ref_v = t[:120000], vals[:120000]
    cand_t = t[60000:180000] - true_off
    m = coarse_offset(ref_t, ref_v, cand_t, vals[60000:180000], grid_s=0.01, max_offset_s=300.0)
    assert m.informative
    assert m.lag_s == pytest.approx(true_off, abs=0.01)


def test_filter_converges_gates_and_relocks(rng):
    f = ContentFilter(gate_sigmas=6.0, relock_hops=3)
    true_rate = 3e-6
    for k in range(120):
        T = 0.5 * k
        assert f.update(T, 0.04 + true_rate * T + rng.normal(0, 2e-4), 2e-4)
    d, sig = f.predict(60.0)
    assert d == pytest.approx(0.04 + true_rate * 60.0, abs=1e-4)
    assert f.x[1] == pytest.approx(true_rate, abs=2e-6)
    assert sig < 1e-4
    # one wild measurement is gated out
    assert not f.update(60.5, 0.5, 2e-4)
    assert f.predict(60.5)[0] == pytest.approx(0.04 + true_rate * 60.5, abs=1e-4)
    # a consistent step (latency changed) re-locks after relock_hops
    acc = [f.update(61.0 + 0.5 * i, 0.09, 2e-4) for i in range(3)]
    assert acc == [False, False, True]
    assert f.predict(62.0)[0] == pytest.approx(0.09, abs=1e-4)


def test_timed_buffer_and_resample_gaps():
    b = TimedBuffer(capacity=4)
    b.append(np.arange(10.0), np.arange(10.0) * 2)
    b.append(np.array([5.0, 10.0, 11.0]), np.array([0.0, 20.0, 22.0]))  # overlap dropped
    assert list(b.times[-3:]) == [9.0, 10.0, 11.0]
    b.trim_before(3.0)
    assert b.first_time == 3.0 and len(b) == 9
    t = np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    v = np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    out = resample(t, v, np.array([-1.0, 0.5, 3.0, 5.5, 6.0, 7.0]), max_gap_s=1.5)
    assert np.isnan(out[0]) and out[1] == 0.5 and np.isnan(out[2]) and out[3] == 5.5 and out[4] == 6.0
    assert np.isnan(out[5])


def test_gaussian_smooth_keeps_mass_and_nans():
    x = np.zeros(101)
    x[50] = 1.0
    y = gaussian_smooth(x, 3.0)
    assert y.sum() == pytest.approx(1.0, rel=1e-3) and np.argmax(y) == 50
    x[10] = np.nan
    assert np.isnan(gaussian_smooth(x, 3.0)[10])
    assert math.isfinite(gaussian_smooth(x, 3.0)[11])


def test_frame_smooth_hand_worked_and_reference(rng):
    # a box of 2 applied twice: weights [1, 2, 1] / 4 around each sample (same-size output)
    x = np.array([0.0, 0, 4, 0, 0])
    np.testing.assert_allclose(frame_smooth(x, 2.0), [0, 1, 2, 1, 0])
    # reference: explicit normalized weighted mean over the finite neighbours, NaNs stay NaN
    y = rng.normal(size=200)
    y[[10, 11, 50]] = np.nan
    w = 5
    k = np.convolve(np.ones(w), np.ones(w))
    half = (len(k) - 1) // 2
    got = frame_smooth(y, float(w))
    for i in range(len(y)):
        if not np.isfinite(y[i]):
            assert np.isnan(got[i])
            continue
        num = den = 0.0
        for j, kj in enumerate(k):
            t = i + j - half
            if 0 <= t < len(y) and np.isfinite(y[t]):
                num += kj * y[t]
                den += kj
        assert got[i] == pytest.approx(num / den, rel=1e-12)
    np.testing.assert_array_equal(frame_smooth(y, 1.0)[np.isfinite(y)], y[np.isfinite(y)])
