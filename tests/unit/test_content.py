"""Content-sync building blocks: lag measurement, GCC-PHAT, coarse search, the smoother, buffers."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from warpsync.engine.content import (
    ContentFilter,
    TimedBuffer,
    _cells_r2,
    coarse_offset,
    frame_smooth,
    gaussian_highpass,
    gaussian_smooth,
    gaussian_smooth_columns,
    gcc_phat_lag,
    measure_lag,
    measure_lag_cells,
    normalized_xcorr,
    resample,
)
from warpsync.errors import AlignmentError


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
    assert f.relocked  # the last accepted update was the re-lock (`SyncEngine` tells a sensor's own change by it)
    assert f.predict(62.0)[0] == pytest.approx(0.09, abs=1e-4)
    assert f.update(62.5, 0.09, 2e-4) and not f.relocked


def test_filter_weighs_overlapping_windows_as_the_data_they_share_and_gates_each_on_its_own():
    """Windows 16 hops long: each window's error is the mean of 16 hops' worth of error, shared with its
    neighbours. Counted as independent (no `weight_sigma`) the filter fits a rate to that wander, extrapolates
    it, and its sigma covers its error less than half the time; weighed with 4 sigma (sqrt(16)) its rate stays
    near zero and its sigma is honest. The gate still holds each window to its own sigma: a wild window is an
    outlier and a consistent step re-locks after `relock_hops`."""
    sigma = 1e-3
    rows = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        err = np.convolve(rng.normal(0, 4 * sigma, 60 + 15), np.ones(16) / 16, "valid")
        plain, weighed = ContentFilter(), ContentFilter()
        for k in range(60):
            assert plain.update(0.5 * k, 0.02 + err[k], sigma)
            assert weighed.update(0.5 * k, 0.02 + err[k], sigma, 4 * sigma)
        ahead = [abs(f.predict(35.0)[0] - 0.02) for f in (plain, weighed)]
        rows.append((abs(plain.x[1]), abs(weighed.x[1]), *ahead, plain.sigma_s, weighed.sigma_s))
    r = np.array(rows)
    assert np.median(r[:, 1]) < 0.3 * np.median(r[:, 0])  # spurious rate
    assert np.percentile(r[:, 3], 95) < 0.8 * np.percentile(r[:, 2], 95)  # error 5 s ahead
    assert np.mean(r[:, 2] <= 2 * r[:, 4]) < 0.6 and np.mean(r[:, 3] <= 2 * r[:, 5]) > 0.9  # sigma covers it
    f = ContentFilter()
    for k in range(60):
        f.update(0.5 * k, 0.02, sigma, 4 * sigma)
    assert not f.update(30.0, 0.02 + 20 * sigma, sigma, 4 * sigma)  # inside a gate of 6 x 4 sigma, outside 6 sigma
    acc = [f.update(30.5 + 0.5 * i, 0.05, sigma, 4 * sigma) for i in range(3)]
    assert acc == [False, False, True]
    assert f.predict(32.0)[0] == pytest.approx(0.05, abs=1e-4)


def test_a_moved_clock_mapping_moves_the_learned_rate_and_not_the_prior():
    """`hold`: the mapping under the correction moved by d at T and its slope by r. A rate the measurements fixed
    (60 of 0.1 ms precision over 30 s) moves with the slope, so the correction follows the mapping's move at
    every time; a rate still at its prior (one measurement) keeps it: the clock's new slope gets through."""
    learned = ContentFilter()
    for k in range(60):
        assert learned.update(0.5 * k, 0.01 + 40e-6 * 0.5 * k, 1e-4)
    fresh = ContentFilter()
    fresh.update(29.5, 0.01, 1e-4)
    for f, share in ((learned, 1.0), (fresh, 0.0)):
        before = {T: f.predict(T)[0] for T in (29.5, 31.0, 35.0)}
        f.hold(0.002, 50e-6, 30.0)
        for T, d in before.items():
            want = d + 0.002 + share * 50e-6 * (T - 30.0)
            assert f.predict(T)[0] == pytest.approx(want, abs=0.03 * 50e-6 * abs(T - 30.0) + 1e-7)


def test_a_disturbance_widens_the_gate_and_the_sigma_by_its_size():
    """`disturb`: a move of the frame of unknown truth is process noise. A 0.5 ms move of a filter locked to
    20 us would be gated out (a wrong peak); disturbed by it, the filter's sigma covers it and the next
    measurement is taken in."""
    f, g = ContentFilter(), ContentFilter()
    for x in (f, g):
        for k in range(20):
            x.update(0.5 * k, 0.0, 2e-5)
    assert not f.update(10.0, 0.0005, 2e-5)
    g.disturb(0.0005, 30e-6)
    assert g.sigma_s >= 0.0005
    assert g.update(10.0, 0.0005, 2e-5)
    assert g.predict(10.0)[0] == pytest.approx(0.0005, abs=5e-5)
    pinned = ContentFilter(rate_prior=0.0)
    pinned.update(0.0, 0.0, 2e-5)
    pinned.disturb(0.0005, 30e-6)
    assert pinned.P[1, 1] == 0.0 and pinned.sigma_s >= 0.0005


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
    # a box of one frame and one of `frames` frames (motion over `frames` frames); kept odd, so centred: a box
    # of 5 and one of 10 becomes 5 and 11
    for w, frames, wb in ((5, 1, 5), (4, 2, 8), (5, 2, 11)):
        k = np.convolve(np.ones(w), np.ones(wb))
        assert len(k) % 2 == 1
        half = (len(k) - 1) // 2
        got = frame_smooth(y, float(w), frames)
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
    # one frame of two samples over a baseline of two frames: weights [1, 2, 2, 2, 1] / 8
    x = np.zeros(11)
    x[5] = 8.0
    np.testing.assert_allclose(frame_smooth(x, 2.0, 2), [0, 0, 0, 1, 2, 2, 2, 1, 0, 0, 0])


# ------------------------------------------------------------------------------- per-cell (non-negative CCA)
def cells_r2_reference(X, c, M, ridge):
    """Slow reference of `_cells_r2`: at each lag an explicit ridge NNLS (scipy) of the centred candidate window
    on the centred columns, as an augmented least-squares problem; R^2 = explained energy / window energy."""
    from scipy.optimize import nnls

    n, d = X.shape
    Xc = X - X.mean(axis=0)
    lam = ridge * float(np.trace(Xc.T @ Xc)) / d
    A = np.vstack([Xc, math.sqrt(lam) * np.eye(d)])
    out = np.zeros(2 * M + 1)
    for m in range(2 * M + 1):
        y = c[m : m + n] - c[m : m + n].mean()
        energy = float(y @ y)
        if energy <= 1e-300:
            continue
        _, resid = nnls(A, np.concatenate([y, np.zeros(d)]))
        out[m] = (energy - resid * resid) / energy
    return out


def test_cells_r2_hand_worked_non_negative():
    # two orthogonal centred cells; y = x0 - x1: least squares with free signs explains all of it (R^2 = 1),
    # with non-negative weights only x0 counts: w = (1, 0), explained 2 of 4
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = X[:, 0] - X[:, 1]
    r2, w = _cells_r2(X, y, 0, ridge=0.0)
    assert r2[0] == pytest.approx(0.5, abs=1e-9)
    np.testing.assert_allclose(w[0], [1.0, 0.0], atol=1e-9)
    assert _cells_r2(X, X[:, 0] + 2 * X[:, 1], 0, ridge=0.0)[0][0] == pytest.approx(1.0, abs=1e-9)
    # a ridge of lambda = 0.5 * mean cell energy (2) = 1: y = x0 (energy e = 2) -> w0 = e / (e + lambda) = 2/3,
    # explained 2 w0 e - w0^2 (e + lambda) = 4/3, R^2 = (4/3) / 2 = 2/3
    assert _cells_r2(X, X[:, 0], 0, ridge=0.5)[0][0] == pytest.approx(2.0 / 3.0, abs=1e-9)


@pytest.mark.parametrize("d", [1, 3, 16])
@pytest.mark.parametrize("ridge", [0.01, 0.1, 1.0])
def test_cells_r2_equals_nnls_reference(rng, d, ridge):
    n, M = 240, 15
    X = np.column_stack([events_envelope(rng, n, 6, 2.0) for _ in range(d)])
    X = X - X.mean(axis=0)
    c = events_envelope(rng, n + 2 * M, 8, 2.0)
    c[M + 3 : M + 3 + n] += X[:, : max(1, d // 3)].sum(axis=1)  # part of the candidate follows some cells
    ref = cells_r2_reference(X, c, M, ridge)
    np.testing.assert_allclose(_cells_r2(X, c, M, ridge, iters=3000)[0], ref, atol=1e-8)
    np.testing.assert_allclose(_cells_r2(X, c, M, ridge)[0], ref, atol=2e-3)  # the default iterations
    assert np.all(ref <= 1.0 + 1e-12)


@pytest.mark.parametrize("lag_samples", [-23.0, 12.3, 60.5])
def test_measure_lag_cells_picks_the_cells_the_candidate_feels(rng, lag_samples):
    # 16 cells, each an object's own events; the candidate (an IMU on one object) feels cells 3 and 7 only
    n, M = 4000, 100
    tot = n + 2 * M + 200
    cells = np.column_stack([events_envelope(rng, tot, 12, 4.0) for _ in range(16)])
    t = np.arange(tot)
    felt = cells[:, 3] + cells[:, 7]
    cand = np.interp(t[100 : 100 + n + 2 * M] - lag_samples, t, felt) + rng.normal(0, 0.002, n + 2 * M)
    ref_cells = cells[100 + M : 100 + M + n]
    m, w = measure_lag_cells(ref_cells, cand, 0.001, M * 0.001)
    assert m.informative
    assert set(np.argsort(w)[-2:]) == {3, 7} and np.all(w >= 0)  # the felt cells carry the weight
    assert m.lag_s == pytest.approx(lag_samples * 0.001, abs=0.2 * 0.001)
    plain = measure_lag(ref_cells.sum(axis=1), cand, 0.001, M * 0.001)
    assert m.corr > 0.9 > plain.corr  # the sum of all cells drowns the two that matter


def test_measure_lag_cells_says_why_not(rng):
    n, M = 2000, 50
    silent, w = measure_lag_cells(np.zeros((n, 16)), rng.normal(size=n + 2 * M), 0.001, 0.05)
    assert w.shape == (16,) and not w.any()
    assert not silent.informative and silent.reason == "silent"
    # slow, smooth motion in every cell: a hump over the whole search range locates nothing
    t = np.arange(n + 2 * M) * 0.001
    slow = np.column_stack([np.sin(2 * np.pi * 0.4 * t + p) for p in rng.uniform(0, 6, 4)])
    hump, _ = measure_lag_cells(slow[M : M + n], slow[:, 0] + 0.5 * slow[:, 1], 0.001, M * 0.001)
    assert not hump.informative and hump.prominence < 0.05
    with pytest.raises(AlignmentError, match=r"\(n, d\)"):
        measure_lag_cells(np.zeros(n), np.zeros(n + 2 * M), 0.001, 0.05)
    with pytest.raises(AlignmentError, match="samples"):
        measure_lag_cells(np.zeros((n, 4)), np.zeros(n), 0.001, 0.05)


def test_timed_buffer_vectors_and_resample_columns(rng):
    b = TimedBuffer(capacity=4, dim=3)
    v = rng.normal(size=(10, 3))
    b.append(np.arange(10.0), v)
    b.append(np.array([9.0, 10.0]), rng.normal(size=(2, 3)))  # the overlapping row is dropped
    assert b.values.shape == (11, 3) and b.times[-1] == 10.0
    np.testing.assert_array_equal(b.values[:10], v)
    b.trim_before(4.0)
    assert b.values.shape == (7, 3)
    # columns resample exactly like the scalar resample, gaps and edges included
    t = np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    vals = rng.normal(size=(5, 3))
    at = np.array([-1.0, 0.0, 0.5, 3.0, 5.5, 6.0, 7.0])
    got = resample(t, vals, at, max_gap_s=1.5)
    for j in range(3):
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(resample(t, vals[:, j], at, 1.5)))
        np.testing.assert_allclose(got[:, j], resample(t, vals[:, j], at, 1.5), rtol=1e-12)


def test_gaussian_smooth_columns_equals_per_column(rng):
    x = rng.normal(size=(300, 5))
    x[[3, 4, 150], 1] = np.nan
    x[10, :] = np.nan
    for sigma in (0.2, 1.5, 4.0):
        got = gaussian_smooth_columns(x, sigma)
        for j in range(5):
            ref = gaussian_smooth(x[:, j], sigma)
            np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(ref))
            np.testing.assert_allclose(got[:, j], ref, rtol=1e-10, atol=1e-12)


def test_measure_lag_cells_broad_lobe_is_not_informative(rng):
    # slow bumps (sigma 60 ms) locate their lag, but only to within a lobe of ~100 ms: with a lobe limit of
    # 50 ms the window is `broad`, without it the lag is found
    n, M = 6000, 250
    tot = n + 2 * M + 200
    cells = np.column_stack([events_envelope(rng, tot, 8, 60.0) for _ in range(6)])
    t = np.arange(tot)
    cand = np.interp(t[100 : 100 + n + 2 * M] - 10.0, t, cells[:, 0] + cells[:, 1])
    ref_cells = cells[100 + M : 100 + M + n]
    free, _ = measure_lag_cells(ref_cells, cand, 0.001, M * 0.001)
    assert free.informative and free.lag_s == pytest.approx(0.010, abs=0.002)
    limited, _ = measure_lag_cells(ref_cells, cand, 0.001, M * 0.001, max_lobe_s=0.05)
    assert not limited.informative and limited.reason == "broad"
    assert limited.lag_s == pytest.approx(free.lag_s)


def test_gaussian_highpass_removes_what_is_slow_and_keeps_a_kick(rng):
    n = 600
    t = np.arange(n, dtype=float)
    kick = np.exp(-0.5 * ((t - 300) / 2.0) ** 2)
    slow = 3.0 + 0.01 * t + np.sin(2 * np.pi * t / 2000)
    x = slow + kick
    x[[10, 11, 450]] = np.nan
    hp = gaussian_highpass(x, 25.0)
    np.testing.assert_array_equal(np.isnan(hp), np.isnan(x))
    # a line passes a symmetric smoothing unchanged, a sine 80 times as long almost: what is left is the kick
    # less its own smoothing (away from the ends and the gaps, where the smoothing sees one side only)
    inner = slice(100, 400)
    np.testing.assert_allclose(hp[inner], (kick - gaussian_smooth(kick, 25.0))[inner], atol=0.01)
    assert np.nanargmax(hp) == 300 and hp[300] > 0.9
    cols = np.column_stack([x, 2 * x, -x])
    got = gaussian_highpass(cols, 25.0)
    for j, a in enumerate((1, 2, -1)):
        np.testing.assert_allclose(got[:, j], a * hp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.2, 3.0, 25.0, 100.0])
def test_gaussian_highpass_equals_x_less_its_smoothing(rng, sigma):
    # the slow reference: `x - gaussian_smooth(x)` column by column, gaps (NaNs) included, shared or not
    x = rng.normal(size=(700, 6)).cumsum(axis=0)
    x[[0, 1, 350, 351, 352], :] = np.nan  # gaps every column shares
    got = gaussian_highpass(x, sigma)
    for j in range(6):
        ref = x[:, j] - gaussian_smooth(x[:, j], sigma)
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(ref))
        np.testing.assert_allclose(got[:, j], ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(gaussian_highpass(x[:, j], sigma), ref, rtol=0, atol=1e-9)
    x[[40, 41], 2] = np.nan  # and one that only one column has
    x[600:, 4] = np.nan
    got = gaussian_highpass(x, sigma)
    for j in range(6):
        ref = x[:, j] - gaussian_smooth(x[:, j], sigma)
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(ref))
        np.testing.assert_allclose(got[:, j], ref, rtol=0, atol=1e-9)
    assert gaussian_highpass(np.zeros((0, 3)), sigma).shape == (0, 3)


def test_slow_motion_hides_the_kicks_until_its_slow_part_is_removed():
    """A camera's cells hold one object's kicks (sigma 8 ms, the sensor feels them 7 steps late) and slow motion
    of another, as high (humps of sigma 160 ms that the sensor feels 35 steps early, as it would feel its
    mount's wobble). Over the whole envelopes the humps win: a `broad` peak at their lag. Without their slow
    part (`gaussian_highpass`, sigma 100 ms on the 4 ms grid: `content.acquire_highpass_s`) the kicks locate
    the lag, in the kicks' cell."""
    M, n = 50, 2000
    cell_lag = functools.partial(
        measure_lag_cells, grid_s=0.004, max_lag_s=M * 0.004, min_corr=0.3, min_prominence=0.05, max_lobe_s=0.05
    )
    for seed in range(3):
        r = np.random.default_rng(seed)
        X, cand = _cells_and_sensor(r, [150, 420, 700, 930], [1150, 1500, 1800], (7, 7), n=n, M=M)
        t = np.arange(len(cand))
        for e in r.uniform(100, n - 100, 8):
            X[:, 5] += np.exp(-0.5 * ((t[:n] - e) / 40.0) ** 2)
            cand += np.exp(-0.5 * ((t - (e + M - 35)) / 40.0) ** 2)
        whole, _ = cell_lag(X, cand)
        assert whole.reason == "broad" and whole.lag_s == pytest.approx(-0.140, abs=0.02)
        fast, w = cell_lag(gaussian_highpass(X, 25.0), gaussian_highpass(cand, 25.0))
        assert fast.informative and fast.lag_s == pytest.approx(0.028, abs=0.002)
        assert np.argmax(w) == 3  # the kicks' cell


# ------------------------------------------------------------------------------- acquisition: split halves
def _cells_and_sensor(rng, first, second, lag_steps, n=2000, M=50, d=16, cell=3):
    """Camera cells (``n`` rows, a 4 ms grid) with the sensor's object's events in `cell` (at the rows in `first`
    and in `second`) and other objects' events in the other cells, and a sensor window (``n + 2 M`` rows) that
    feels the events of `first` ``lag_steps[0]`` rows late and those of `second` ``lag_steps[1]`` late."""
    t = np.arange(n + 2 * M)

    def bump(c):
        return np.exp(-0.5 * ((t - c) / 2.0) ** 2)

    X = 0.02 * np.abs(rng.normal(size=(n, d)))
    cand = 0.02 * np.abs(rng.normal(size=n + 2 * M))
    for rows, lag in ((first, lag_steps[0]), (second, lag_steps[1])):
        for e in rows:
            X[:, cell] += bump(e)[:n]
            cand += bump(e + M + lag)
    for c in range(d):  # the other objects, which the sensor does not feel
        if c != cell:
            for e in rng.uniform(0, n, 3):
                X[:, c] += bump(e)[:n]
    return X, cand


def test_a_half_whose_best_peak_is_broad_is_judged_near_the_whole_windows_lag():
    """Slow motion in the second half (a hump one cell sees and the sensor feels 35 steps early, 60 ms wide)
    outweighs the object's sharp events there over the whole range, but locates nothing (``broad``): searched
    again over the main lobe of a velocity change around the whole window's lag, the half carries it."""
    from warpsync.engine.hop import _half_verdicts

    M, Mn = 50, 13
    cell_lag = functools.partial(
        measure_lag_cells, grid_s=0.004, max_lag_s=M * 0.004, min_corr=0.3, min_prominence=0.05, max_lobe_s=0.05
    )
    near = (functools.partial(cell_lag, max_lag_s=Mn * 0.004), Mn, 0.004)
    changed = 0
    for seed in range(3):
        X, cand = _cells_and_sensor(np.random.default_rng(seed), [150, 420, 700, 930], [1150, 1500, 1800], (7, 7))
        t = np.arange(len(cand))
        for e in (1300, 1700):
            X[:, 5] += 0.5 * np.exp(-0.5 * ((t[: len(X)] - e) / 15.0) ** 2)
            cand += 0.5 * np.exp(-0.5 * ((t - (e + M - 35)) / 15.0) ** 2)
        m, _ = cell_lag(X, cand)
        assert m.informative and m.lag_s == pytest.approx(0.028, abs=0.002)
        h = len(X) // 2
        second, _ = cell_lag(X[h:], cand[h : h + h + 2 * M])
        plain = _half_verdicts(cell_lag, X, cand, M, m.lag_s, 0.008)
        assert _half_verdicts(cell_lag, X, cand, M, m.lag_s, 0.008, near) == ["carries", "carries"]
        changed += second.reason == "broad" and plain == ["carries", "other"]
    assert changed == 3


def test_halves_agree_only_when_both_halves_carry_the_lag(rng):
    from warpsync.engine.hop import _halves_agree

    M = 50
    cell_lag = functools.partial(
        measure_lag_cells, grid_s=0.004, max_lag_s=M * 0.004, min_corr=0.3, min_prominence=0.05, max_lobe_s=0.05
    )
    # the object's events all over the window, all 7 steps late: each half finds them on its own
    X, cand = _cells_and_sensor(rng, [150, 420, 700, 930], [1100, 1380, 1650, 1890], (7, 7))
    m, _ = cell_lag(X, cand)
    assert m.informative and m.lag_s == pytest.approx(0.028, abs=0.002)
    assert _halves_agree(cell_lag, X, cand, M, m.lag_s, 0.008)
    # the whole window's lag carried by the first half's events; the second half's point elsewhere (a chance
    # match of a few events looks like this): the halves disagree
    X, cand = _cells_and_sensor(rng, [150, 300, 420, 560, 700, 930], [1200, 1650], (7, 25))
    m, _ = cell_lag(X, cand)
    assert m.informative and m.lag_s == pytest.approx(0.028, abs=0.002)
    assert not _halves_agree(cell_lag, X, cand, M, m.lag_s, 0.008)
    near = (functools.partial(cell_lag, max_lag_s=13 * 0.004), 13, 0.004)
    assert not _halves_agree(cell_lag, X, cand, M, m.lag_s, 0.008, near)  # a sharp peak elsewhere is not broad
    # nothing at all in the second half of the sensor's window: nothing to confirm with
    X, cand = _cells_and_sensor(rng, [150, 420, 700, 930], [], (7, 7))
    cand[M + 1000 :] = 0.0
    m, _ = cell_lag(X, cand)
    assert m.informative and m.lag_s == pytest.approx(0.028, abs=0.002)
    assert not _halves_agree(cell_lag, X, cand, M, m.lag_s, 0.008)
