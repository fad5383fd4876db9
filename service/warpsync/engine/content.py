"""Content sync: measure how far a stream's current mapping is off by comparing what it sensed with its partner.

All functions here are pure. A *window* is a stretch of reference time [t0, t0 + n * grid_s); both streams'
activity envelopes are resampled onto that grid through their current mappings, smoothed, and the lag that
best lines them up is measured by normalized cross-correlation with parabolic (sub-grid) peak interpolation.
For audio-to-audio pairs the lag is refined by GCC-PHAT on the raw samples (sub-millisecond). A lag ``e``
means the candidate's mapping places its content ``e`` seconds *late* on the reference timeline: the fix is to
subtract ``e`` from its offset.

`ContentFilter` smooths the measured corrections across hops (a two-state Kalman filter on offset and rate
with innovation gating and re-locking), and `coarse_offset` is the global search used when there is no prior
(no usable timestamps, offsets of minutes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal import fftconvolve

from ..errors import AlignmentError


# --------------------------------------------------------------------------------------------- buffers
class TimedBuffer:
    """Append-only (time, value) samples with increasing times, trimmed from the front. Values are scalars, or
    vectors of `dim` entries (``values`` is then ``(n, dim)``)."""

    def __init__(self, capacity: int = 1024, dim: int | None = None) -> None:
        self._dim = () if dim is None else (int(dim),)
        self._t = np.empty(capacity)
        self._v = np.empty((capacity, *self._dim))
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        self._start = self._end = 0

    def append(self, times: np.ndarray, values: np.ndarray) -> None:
        n = len(times)
        if n == 0:
            return
        if len(self) and times[0] <= self._t[self._end - 1]:
            # out-of-order or overlapping data (a clock stepped back): keep only what moves forward
            keep = times > self._t[self._end - 1]
            times, values = times[keep], values[keep]
            n = len(times)
            if n == 0:
                return
        if self._end + n > len(self._t):
            live = len(self)
            cap = max(2 * (live + n), 1024)
            t = np.empty(cap)
            v = np.empty((cap, *self._dim))
            t[:live] = self._t[self._start : self._end]
            v[:live] = self._v[self._start : self._end]
            self._t, self._v, self._start, self._end = t, v, 0, live
        self._t[self._end : self._end + n] = times
        self._v[self._end : self._end + n] = values
        self._end += n

    def trim_before(self, t: float) -> None:
        i = int(np.searchsorted(self._t[self._start : self._end], t, side="left"))
        self._start += i

    @property
    def times(self) -> np.ndarray:
        return self._t[self._start : self._end]

    @property
    def values(self) -> np.ndarray:
        return self._v[self._start : self._end]

    @property
    def last_time(self) -> float:
        return float(self._t[self._end - 1]) if len(self) else -math.inf

    @property
    def first_time(self) -> float:
        return float(self._t[self._start]) if len(self) else math.inf


def resample(times: np.ndarray, values: np.ndarray, at: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Linear interpolation of (times, values) at `at`; NaN outside the data and inside gaps > `max_gap_s`."""
    if np.ndim(values) == 2:
        return _resample_columns(times, values, at, max_gap_s)
    out = np.full(len(at), np.nan)
    if len(times) < 2:
        return out
    out = np.interp(at, times, values)
    i = np.searchsorted(times, at, side="right")
    bad = (i <= 0) | (i >= len(times))
    ii = np.clip(i, 1, len(times) - 1)
    bad |= (times[ii] - times[ii - 1]) > max_gap_s
    bad |= at > times[-1]
    out[bad] = np.nan
    # exact hits on the last sample are valid
    out[at == times[-1]] = values[-1]
    return out


def _resample_columns(times: np.ndarray, values: np.ndarray, at: np.ndarray, max_gap_s: float) -> np.ndarray:
    """`resample` of every column of ``values`` (n, d): (len(at), d), NaN rows outside the data and in gaps."""
    d = values.shape[1]
    out = np.full((len(at), d), np.nan)
    if len(times) < 2:
        return out
    i = np.searchsorted(times, at, side="right")
    ii = np.clip(i, 1, len(times) - 1)
    t0, t1 = times[ii - 1], times[ii]
    w = np.clip((at - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0, 1.0)
    out = values[ii - 1] * (1.0 - w)[:, None] + values[ii] * w[:, None]
    bad = (i <= 0) | (i >= len(times)) | ((t1 - t0) > max_gap_s) | (at > times[-1])
    out[bad] = np.nan
    last = at == times[-1]
    out[last] = values[-1]
    return out


def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = math.ceil(3 * sigma)
    return np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)


def _masked_convolve(x: np.ndarray, k: np.ndarray, fft: bool = False) -> np.ndarray:
    """Normalized convolution of `x` (1-D, or 2-D along axis 0) with the odd, symmetric kernel `k`: NaNs are
    missing (left out of both the weighted sum and the weights) and stay NaN. `fft`: by FFT, for kernels hundreds
    of taps long, where columns that share their gaps share the weights' convolution."""
    mask = np.isfinite(x)
    xz = np.where(mask, x, 0.0)
    w = mask.astype(float)
    if fft:
        kk = k if x.ndim == 1 else k[:, None]
        num = fftconvolve(xz, kk, mode="same", axes=0)
        if x.ndim == 2 and bool((mask == mask[:, :1]).all()):
            den = fftconvolve(w[:, 0], k, mode="same")[:, None]
        else:
            den = fftconvolve(w, kk, mode="same", axes=0)
    elif x.ndim == 1:
        num, den = np.convolve(xz, k, mode="same"), np.convolve(w, k, mode="same")
    else:
        num, den = convolve1d(xz, k, axis=0, mode="constant"), convolve1d(w, k, axis=0, mode="constant")
    out = np.where(den > 1e-9, num / np.maximum(den, 1e-9), np.nan)
    out[~mask] = np.nan
    return out


def gaussian_smooth_columns(x: np.ndarray, sigma: float) -> np.ndarray:
    """`gaussian_smooth` of every column of ``x`` (n, d), all columns in one pass."""
    if sigma <= 0.3 or x.size == 0:
        return x.copy()
    return _masked_convolve(x, _gaussian_kernel(sigma))


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with `sigma` in samples; NaNs are treated as missing (normalized convolution) and
    stay NaN."""
    if sigma <= 0.3:
        return x.copy()
    return _masked_convolve(x, _gaussian_kernel(sigma))


def gaussian_highpass(x: np.ndarray, sigma: float) -> np.ndarray:
    """`x` (n,) or (n, d) less its `gaussian_smooth` (each column) with `sigma` in samples: what changes faster
    than that; NaNs stay NaN. The same normalized convolution, by FFT: a slow part's kernel is hundreds of taps
    long (100 ms on a 4 ms grid: 151; direct, 16 cells of an 8 s window took 4-5 ms)."""
    if sigma <= 0.3 or x.size == 0:
        return np.where(np.isfinite(x), 0.0, np.nan)  # the smoothing leaves such `x` as it is
    return x - _masked_convolve(x, _gaussian_kernel(sigma), fft=True)


def frame_smooth(x: np.ndarray, width: float, frames: int = 1) -> np.ndarray:
    """A box of `width` samples convolved with a box of ``frames * width`` (for ``frames`` = 1 a triangle of total
    width ``2 * width``), NaNs treated as missing like `gaussian_smooth`. A camera's change of motion energy
    between consecutive entries, each the motion over `frames` frame intervals (`MotionEnvelope`
    ``baseline_frames``), averages the speed change with this weight, so a finely sampled sensor envelope
    smoothed by it (width = one frame period) has the same shape in time as the camera's: like is compared with
    like."""
    w = max(round(width), 1)
    wb = max(round(frames * width), 1)
    if w == 1 and wb == 1:
        return x.copy()
    if (w + wb) % 2:
        wb += 1  # an odd kernel, centred on its sample (an even one would shift everything by half a sample)
    return _masked_convolve(x, np.convolve(np.ones(w), np.ones(wb)))


# ----------------------------------------------------------------------------------------- measurement
@dataclass(frozen=True)
class LagMeasurement:
    """The lag of a candidate window against a reference window."""

    lag_s: float
    """How late the candidate's content sits on the reference timeline, seconds."""
    corr: float
    """Normalized correlation at the peak, in [-1, 1]."""
    prominence: float
    """Peak minus the best correlation outside the peak's main lobe."""
    sigma_s: float
    """One-sigma uncertainty of `lag_s` (from the peak's curvature and height), seconds."""
    informative: bool
    """The windows had content and the peak was high and unambiguous enough to use."""
    reason: str = ""
    """Why a measurement is not informative: ``silent`` (no signal), ``no_events`` (steady noise or motion,
    nothing stands out), ``flat`` (too short), ``low_corr``, ``ambiguous`` (several equally good lags),
    ``edge`` (best lag at the edge of the search range), ``broad`` (a main lobe wider than the content can
    locate: slow, smooth motion)."""
    support: tuple[float, float] | None = None
    """The stretch of the window (reference seconds) that carried the lag on its own, when only one half of it
    did and the other had no content to say otherwise; None: the whole window (`engine.hop`)."""
    chance: float = 1.0
    """A sensor's impact window before its first lock: the bound on how likely chance alone puts as many of its
    contacts onto the microphone's impacts at some lag of the search (`engine.coincidence`); 1.0 when not
    computed."""
    events: tuple[tuple[float, float, float], ...] = ()
    """A locked camera-sensor window measured one event at a time (`engine.events`): each kept event's (time on the
    reference timeline, its own lag, its correlation), seconds, strongest first; empty otherwise. For diagnostics
    (`tools/engine/trace_windows.py --events`)."""


def parabolic_peak(c: np.ndarray, i: int) -> tuple[float, float]:
    """Sub-sample peak position offset and curvature (second difference) at integer peak `i`."""
    if i <= 0 or i >= len(c) - 1:
        return 0.0, 0.0
    y0, y1, y2 = c[i - 1], c[i], c[i + 1]
    den = y0 - 2 * y1 + y2
    if den >= 0:
        return 0.0, 0.0
    return float(0.5 * (y0 - y2) / den), float(den)


def normalized_xcorr(ref: np.ndarray, cand: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson correlation of `ref` (n,) with ``cand[m : m + n]`` for m in [0, 2 max_lag]; `cand` has
    ``n + 2 max_lag`` samples. Entry m is lag ``m - max_lag`` samples. NaNs count as missing (zero weight)."""
    n = len(ref)
    if len(cand) != n + 2 * max_lag:
        raise AlignmentError(f"candidate window must have {n + 2 * max_lag} samples, got {len(cand)}")
    rm = np.isfinite(ref)
    r = np.where(rm, ref, 0.0)
    r = np.where(rm, r - r[rm].mean() if rm.any() else r, 0.0)
    c = np.where(np.isfinite(cand), cand, 0.0)
    nfft = 1 << math.ceil(math.log2(max(2, len(c) + n)))
    num = np.fft.irfft(np.conj(np.fft.rfft(r, nfft)) * np.fft.rfft(c, nfft), nfft)[: 2 * max_lag + 1]
    cs = np.concatenate([[0.0], np.cumsum(c)])
    cs2 = np.concatenate([[0.0], np.cumsum(c * c)])
    m = np.arange(2 * max_lag + 1)
    s1 = cs[m + n] - cs[m]
    s2 = cs2[m + n] - cs2[m]
    var_c = np.maximum(s2 - s1 * s1 / n, 0.0)
    den = math.sqrt(float(np.sum(r * r))) * np.sqrt(var_c)
    return np.where(den > 1e-300, num / np.maximum(den, 1e-300), 0.0)


def peakiness(x: np.ndarray) -> float:
    """``max / mean`` of a non-negative envelope: about 3 for steady noise, 10 and more when distinct events
    (onsets, kicks, jolts) stand out of it."""
    m = float(np.mean(x))
    return float(np.max(x)) / m if m > 0 else 0.0


def measure_lag(
    ref: np.ndarray,
    cand: np.ndarray,
    grid_s: float,
    max_lag_s: float,
    *,
    min_activity: float = 1e-6,
    min_corr: float = 0.3,
    min_prominence: float = 0.05,
    min_peakiness: float = 0.0,
) -> LagMeasurement:
    """Lag of `cand` against `ref` (both envelopes on the same grid; `cand` extended by `max_lag_s` on each
    side): ``cand`` has ``len(ref) + 2 M`` samples with ``M = round(max_lag_s / grid_s)``."""
    M = round(max_lag_s / grid_s)
    n = len(ref)
    if n < 8:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "flat")
    rv = ref[np.isfinite(ref)]
    cv = cand[np.isfinite(cand)]
    if len(rv) < n // 2 or len(cv) < n // 2:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "silent")
    if float(np.std(rv)) < min_activity or float(np.std(cv)) < min_activity:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "silent")
    if min_peakiness > 0 and (peakiness(rv) < min_peakiness or peakiness(cv) < min_peakiness):
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "no_events")
    c = normalized_xcorr(ref, cand, M)
    return _peak_measurement(c, n, M, grid_s, min_corr, min_prominence)


def _peak_measurement(
    c: np.ndarray,
    n: int,
    M: int,
    grid_s: float,
    min_corr: float,
    min_prominence: float,
    broad_edges: bool = False,
    max_lobe_s: float = math.inf,
):
    """The lag measurement of a correlation curve ``c`` over lags ``-M .. M`` grid steps of a window of ``n``.
    With `broad_edges`, a main lobe that fills the whole search range stands out only by its height above the
    range's ends (a broad hump of slow, smooth signals locates nothing), not by its full height; a main lobe
    (above half the peak) whose half-width exceeds `max_lobe_s` is ``broad``: not informative."""
    i = int(np.argmax(c))
    peak = float(c[i])
    frac, curv = parabolic_peak(c, i)
    lag_s = (i + frac - M) * grid_s
    # main lobe: contiguous region around the peak above half the peak
    lo = i
    while lo > 0 and c[lo - 1] > 0.5 * peak:
        lo -= 1
    hi = i
    while hi < len(c) - 1 and c[hi + 1] > 0.5 * peak:
        hi += 1
    lobe = max(hi - i, i - lo) + 1
    outside = np.concatenate([c[: max(0, i - 2 * lobe)], c[i + 2 * lobe + 1 :]])
    second = float(outside.max()) if len(outside) else (max(float(c[0]), float(c[-1])) if broad_edges else 0.0)
    prominence = peak - max(second, 0.0)
    # curvature in 1/s^2 relative to the peak; Cramer-Rao-like spread from the peak height
    kappa = -curv / (grid_s * grid_s) / max(peak, 1e-6)
    if kappa > 0 and peak > 0:
        width_s = 1.0 / math.sqrt(kappa)
        n_indep = max(1.0, n * grid_s / width_s)
        sigma = math.sqrt(max(1.0 - peak * peak, 1e-4)) / peak * width_s / math.sqrt(n_indep)
    else:
        sigma = math.inf
    sigma = max(sigma, 0.05 * grid_s)
    if i == 0 or i == len(c) - 1:
        return LagMeasurement(lag_s, peak, prominence, sigma, False, "edge")
    if peak < min_corr:
        return LagMeasurement(lag_s, peak, prominence, sigma, False, "low_corr")
    if 0.5 * (hi - lo) * grid_s > max_lobe_s:
        return LagMeasurement(lag_s, peak, prominence, sigma, False, "broad")
    if prominence < min_prominence:
        return LagMeasurement(lag_s, peak, prominence, sigma, False, "ambiguous")
    return LagMeasurement(lag_s, peak, prominence, sigma, True)


def gcc_phat_lag(ref: np.ndarray, cand: np.ndarray, rate_hz: float, max_lag_s: float) -> tuple[float, float, float]:
    """GCC-PHAT lag (seconds, candidate late > 0) of two equally long raw signals on the same grid, within
    ``+-max_lag_s``; returns (lag_s, sharpness = peak / mean |gcc| over all lags, uniqueness = peak / best
    value more than 2 samples away from it within the search range; inf when there is none)."""
    n = len(ref)
    if n != len(cand) or n < 16:
        raise AlignmentError("gcc_phat_lag needs two signals of the same length (>= 16 samples)")
    nfft = 1 << math.ceil(math.log2(2 * n))
    R = np.fft.rfft(ref - ref.mean(), nfft)
    C = np.fft.rfft(cand - cand.mean(), nfft)
    X = C * np.conj(R)
    X /= np.maximum(np.abs(X), 1e-12)
    g = np.fft.irfft(X, nfft)
    M = max(1, min(math.ceil(max_lag_s * rate_hz), n - 1))
    seg = np.concatenate([g[-M:], g[: M + 1]])  # lags -M..M
    i = int(np.argmax(seg))
    frac, _ = parabolic_peak(seg, i)
    sharp = float(seg[i] / (np.mean(np.abs(g)) + 1e-12))
    rest = np.concatenate([seg[: max(0, i - 2)], seg[i + 3 :]])
    second = float(rest.max()) if len(rest) else 0.0
    unique = float(seg[i] / second) if second > 0 else math.inf
    return (i + frac - M) / rate_hz, sharp, unique


# ------------------------------------------------------------------------------------------ coarse search
def coarse_offset(
    ref_times: np.ndarray,
    ref_values: np.ndarray,
    cand_times: np.ndarray,
    cand_values: np.ndarray,
    *,
    grid_s: float = 0.01,
    max_offset_s: float = 300.0,
    smooth_s: float = 0.02,
) -> LagMeasurement:
    """Global search for ``offset = t_ref - t_cand`` over +-`max_offset_s` by cross-correlating the two
    envelopes over their whole extents (no prior). The returned `lag_s` is that offset."""
    if len(ref_times) < 4 or len(cand_times) < 4:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "flat")
    g_r = np.arange(ref_times[0], ref_times[-1], grid_s)
    g_c = np.arange(cand_times[0], cand_times[-1], grid_s)
    r = _coarse_env(ref_times, ref_values, g_r, grid_s, smooth_s)
    c = _coarse_env(cand_times, cand_values, g_c, grid_s, smooth_s)
    if np.std(r) < 1e-12 or np.std(c) < 1e-12:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "silent")
    # full cross-correlation: value at k = sum_i r[i] c[i - k]  <-> cand sample j matches ref sample j + k
    r = (r - r.mean()) / (np.std(r) + 1e-300)
    c = (c - c.mean()) / (np.std(c) + 1e-300)
    nfft = 1 << math.ceil(math.log2(len(r) + len(c)))
    full = np.fft.irfft(np.fft.rfft(r, nfft) * np.conj(np.fft.rfft(c, nfft)), nfft)
    ks = np.arange(nfft)
    ks = np.where(ks > nfft // 2, ks - nfft, ks)
    # overlap count for normalization; require at least 25 % of the shorter signal to overlap
    overlap = np.minimum(len(r), ks + len(c)) - np.maximum(0, ks)
    min_ov = max(8, min(len(r), len(c)) // 4)
    offs = g_r[0] + ks * grid_s - g_c[0]  # t_ref - t_cand for a shift of k samples
    ok = (overlap >= min_ov) & (np.abs(offs) <= max_offset_s)
    if not ok.any():
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "edge")
    score = np.where(ok, full / np.maximum(overlap, 1), -np.inf)
    i = int(np.argmax(score))
    peak = float(score[i])
    others = score.copy()
    lobe = max(2, round(4 * smooth_s / grid_s))
    for j in range(i - lobe, i + lobe + 1):
        others[j % nfft] = -np.inf
    second = float(np.max(others)) if np.isfinite(others).any() else 0.0
    frac = 0.0
    if ok[(i - 1) % nfft] and ok[(i + 1) % nfft]:
        y0, y1, y2 = score[(i - 1) % nfft], score[i], score[(i + 1) % nfft]
        den = y0 - 2 * y1 + y2
        if den < 0:
            frac = 0.5 * (y0 - y2) / den
    off = float(offs[i] + frac * grid_s)
    prom = peak - max(second, 0.0)
    # significance: how far the peak stands out of the distribution of all candidate scores
    valid = score[ok]
    med = float(np.median(valid))
    spread = 1.4826 * float(np.median(np.abs(valid - med))) + 1e-12
    z = (peak - med) / spread
    informative = peak > 0.1 and prom > 0.05 and z >= 8.0
    return LagMeasurement(off, peak, prom, grid_s, informative, "" if informative else "ambiguous")


def _coarse_env(times, values, grid, grid_s, smooth_s):
    # max-pool onto the coarse grid (keeps impulses), then smooth
    idx = np.clip(((times - grid[0]) / grid_s).astype(np.int64), 0, len(grid) - 1)
    out = np.zeros(len(grid))
    np.maximum.at(out, idx, np.asarray(values, float))
    return gaussian_smooth(out, smooth_s / grid_s)


# ----------------------------------------------------------------------------------------- the smoother
class ContentFilter:
    """Two-state Kalman filter on a stream's content correction: ``delta(T) = d + r (T - T_k)``.

    `d` (seconds) is added to the clock-based offset; `r` (dimensionless) corrects its drift. Time `T` is
    reference time, seconds. Measurements farther than `gate_sigmas` predicted sigmas are outliers; after
    `relock_hops` consecutive outliers that agree with each other, the filter re-locks on them (a step in
    latency, a wrong coarse lock).
    """

    def __init__(
        self,
        *,
        offset_noise_s_per_s: float = 1e-5,
        drift_noise_per_s: float = 5e-8,
        gate_sigmas: float = 6.0,
        relock_hops: int = 3,
        rate_prior: float = 20e-6,
    ) -> None:
        self.q_d = offset_noise_s_per_s**2
        self.q_r = drift_noise_per_s**2
        self.gate = gate_sigmas
        self.relock_hops = relock_hops
        self.rate_prior = rate_prior
        self.x = np.zeros(2)
        self.P = np.diag([1.0, rate_prior**2])
        self.T: float | None = None
        self.locked = False
        self.updates = 0
        self.relocked = False
        """Whether the last accepted update re-locked on consecutive outliers."""
        self._outliers: list[tuple[float, float, float]] = []

    def reset(self) -> None:
        self.__init__(
            offset_noise_s_per_s=math.sqrt(self.q_d),
            drift_noise_per_s=math.sqrt(self.q_r),
            gate_sigmas=self.gate,
            relock_hops=self.relock_hops,
            rate_prior=self.rate_prior,
        )

    def predict(self, T: float) -> tuple[float, float]:
        """(correction, sigma) at reference time T without changing the state."""
        if self.T is None:
            return 0.0, math.inf
        dt = T - self.T
        F = np.array([[1.0, dt], [0.0, 1.0]])
        P = F @ self.P @ F.T + np.diag([self.q_d * abs(dt), self.q_r * abs(dt)])
        return float(self.x[0] + self.x[1] * dt), math.sqrt(max(P[0, 0], 0.0))

    def _advance(self, T: float) -> None:
        assert self.T is not None
        dt = T - self.T
        F = np.array([[1.0, dt], [0.0, 1.0]])
        self.x = F @ self.x
        self.P = F @ self.P @ F.T + np.diag([self.q_d * abs(dt), self.q_r * abs(dt)])
        self.T = T

    def shift(self, d_s: float, rate: float = 0.0, at_T: float | None = None) -> None:
        """Move the correction, and the outliers waiting to re-lock, by `d_s` at reference time `at_T` (default:
        the filter's own time) and its rate by `rate`: the frame of reference of the measurements moved (the
        partner a stream is measured against changed its own correction, or a clock refit moved a mapping)."""
        T0 = self.T if at_T is None or self.T is None else at_T
        if self.T is not None and rate:
            self.x[1] += rate
            self.x[0] -= rate * (T0 - self.T)
        else:
            rate = 0.0
        self.x[0] += d_s
        self._outliers = [(T, z + d_s + rate * (T - T0), s) for T, z, s in self._outliers]

    def hold(self, d_s: float, rate: float, T: float) -> float:
        """The clock mapping under the correction moved by `d_s` at reference time `T` and its slope by `rate`:
        move the correction with it, so that the mapping content measured stays where it was. The level moves
        in full (measurements fixed it); the rate in the share the measurements fixed, ``1 - P_rr / prior^2``
        (a rate still at its prior is the clock's, and the clock's new slope gets through). Returns the rate moved."""
        if self.T is None or not (math.isfinite(d_s) and math.isfinite(rate)):
            return 0.0
        w = min(max(1.0 - self.P[1, 1] / self.rate_prior**2, 0.0), 1.0) if self.rate_prior > 0 else 0.0
        self.shift(d_s, w * rate, T)
        return w * rate

    def update(self, T: float, z: float, sigma: float, weight_sigma: float | None = None) -> bool:
        """Fold in a measured correction `z` ± `sigma` at reference time T. Returns whether it was accepted.

        `weight_sigma` (default `sigma`) is the sigma the state is updated with, where measurements are not
        independent (overlapping windows share their errors): the gate still holds the window to its own
        `sigma`, so a step of the truth is an outlier (and re-locks) as before, while the estimate does not
        grow more certain than the independent data behind it."""
        if not (math.isfinite(z) and math.isfinite(sigma) and sigma > 0):
            return False
        w_sigma = sigma if weight_sigma is None else max(float(weight_sigma), sigma)
        self.relocked = False
        if self.T is None:
            self.x = np.array([z, 0.0])
            self.P = np.diag([w_sigma**2, self.rate_prior**2])
            self.T = T
            self.locked = True
            self.updates = 1
            return True
        self._advance(T)
        S = self.P[0, 0] + sigma**2
        innov = z - self.x[0]
        if abs(innov) > self.gate * math.sqrt(S):
            self._outliers.append((T, z, sigma))
            self._outliers = self._outliers[-self.relock_hops :]
            if len(self._outliers) >= self.relock_hops:
                zs = np.array([o[1] for o in self._outliers])
                ss = np.array([o[2] for o in self._outliers])
                if np.ptp(zs) <= self.gate * math.sqrt(float(np.mean(ss**2))) + 1e-4:
                    self.x = np.array([z, 0.0])
                    self.P = np.diag([w_sigma**2, self.rate_prior**2])
                    self._outliers.clear()
                    self.updates += 1
                    self.relocked = True
                    return True
            return False
        self._outliers.clear()
        H = np.array([1.0, 0.0])
        K = self.P @ H / (self.P[0, 0] + w_sigma**2)
        self.x = self.x + K * innov
        self.P = self.P - np.outer(K, H @ self.P)
        self.updates += 1
        return True

    def disturb(self, d_s: float, rate: float = 0.0) -> None:
        """The frame the correction is measured in moved by `d_s` (and its slope by `rate`), and whether the
        correction should move with it is not known: the variances grow by their squares (process noise), so the
        measurements that follow decide, within the gate, and the published sigma covers the move until they
        have."""
        if self.T is not None and math.isfinite(d_s) and math.isfinite(rate):
            self.P[0, 0] += d_s * d_s
            if self.rate_prior > 0:  # a zero prior pins the rate at the clock's
                self.P[1, 1] += rate * rate

    @property
    def sigma_s(self) -> float:
        return math.sqrt(max(self.P[0, 0], 0.0)) if self.T is not None else math.inf


def measure_lag_cells(
    ref_cells: np.ndarray,
    cand: np.ndarray,
    grid_s: float,
    max_lag_s: float,
    *,
    ridge: float = 0.1,
    min_activity: float = 1e-6,
    min_corr: float = 0.3,
    min_prominence: float = 0.05,
    max_lobe_s: float = math.inf,
) -> tuple[LagMeasurement, np.ndarray]:
    """Lag of `cand` (one envelope, ``n + 2 M`` samples as in `measure_lag`) against the best non-negative
    combination of the columns of `ref_cells` (``(n, d)``: a camera's per-cell kinetic envelopes), found anew at
    every lag.

    At lag m the correlation is ``sqrt(R^2)`` of the ridge non-negative least-squares fit of the centred
    ``cand[m : m + n]`` by the centred columns (a one-sided, non-negative CCA): the cells that see what the
    candidate senses are weighted in and the others out, per window. Weights are non-negative because motion
    anywhere in the picture adds to what a camera sees; free signs would let a difference of two cells shift a
    peak. `ridge` (``lambda`` as a fraction of the mean column energy) shrinks the weights and the correlation
    chance alone gives ``d`` of them. Rows with a NaN and columns without activity take no part. Prominence and
    sigma as in `measure_lag`, except that a main lobe filling the whole search range stands out only by its
    height above the range's ends (slow, smooth motion gives such a hump and locates nothing), and a main lobe
    whose half-width (above half the peak) exceeds `max_lobe_s` is ``broad``, not informative.

    Returns the measurement and the weights of the columns at the peak lag (``(d,)``, zero for columns that
    took no part): a combination of the columns a caller can align on a finer grid."""
    ref_cells = np.asarray(ref_cells, dtype=np.float64)
    if ref_cells.ndim != 2:
        raise AlignmentError(f"measure_lag_cells needs (n, d) reference columns, got shape {ref_cells.shape}")
    M = round(max_lag_s / grid_s)
    n = ref_cells.shape[0]
    if len(cand) != n + 2 * M:
        raise AlignmentError(f"candidate window must have {n + 2 * M} samples, got {len(cand)}")
    if n < 8:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "flat"), np.zeros(ref_cells.shape[1])
    none = np.zeros(ref_cells.shape[1])
    rows = np.isfinite(ref_cells).all(axis=1)
    cm = np.isfinite(cand)
    if rows.sum() < n // 2 or cm.sum() < n // 2:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "silent"), none
    X = np.where(rows[:, None], ref_cells, 0.0)
    X = np.where(rows[:, None], X - X[rows].mean(axis=0), 0.0)
    active = X[rows].std(axis=0) >= min_activity
    X = X[:, active]
    if X.shape[1] == 0 or float(np.std(cand[cm])) < min_activity:
        return LagMeasurement(0.0, 0.0, 0.0, math.inf, False, "silent"), none
    r2, w = _cells_r2(X, np.where(cm, cand, 0.0), M, ridge)
    c = np.sqrt(np.maximum(r2, 0.0))
    m = _peak_measurement(c, n, M, grid_s, min_corr, min_prominence, broad_edges=True, max_lobe_s=max_lobe_s)
    weights = none.copy()
    weights[active] = w[int(np.argmax(c))]
    return m, weights


NNLS_ITERS = 50
"""Iterations of the accelerated projected gradient (FISTA) that solves the per-lag non-negative fits."""


def _nonneg_explained(B: np.ndarray, H: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row b of `B` (L, d): ``max_{w >= 0} 2 w.b - w' H w`` (H positive definite), the energy of y a
    non-negative combination explains (``|y|^2`` minus the least residual, when ``b = X' y`` and
    ``H = X'X + lambda I``), and the maximizing w per row. All rows at once by FISTA with step
    ``1 / lambda_max(H)``."""
    step = 1.0 / float(np.linalg.eigvalsh(H)[-1])
    w = np.zeros_like(B)
    z = w
    t = 1.0
    for _ in range(iters):
        w_new = np.maximum(z - (z @ H - B) * step, 0.0)
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        z = w_new + ((t - 1.0) / t_new) * (w_new - w)
        w, t = w_new, t_new
    return 2.0 * np.einsum("mj,mj->m", w, B) - np.einsum("mj,mj->m", w @ H, w), w


def _cells_r2(
    X: np.ndarray, c: np.ndarray, M: int, ridge: float, iters: int = NNLS_ITERS
) -> tuple[np.ndarray, np.ndarray]:
    """``R^2(m)`` of ``c[m : m + n]`` on non-negative combinations of the centred columns ``X`` (n, d), for m in
    [0, 2 M], and the weights (2M + 1, d): ``X' c`` at every lag by one FFT per column, then a ridge NNLS at
    all lags at once."""
    n, d = X.shape
    sxx = X.T @ X
    lam = ridge * float(np.trace(sxx)) / d
    # circular correlation is exact here: lags 0 .. 2M of a window of n never reach past len(c) = n + 2M
    nfft = 1 << math.ceil(math.log2(max(2, len(c))))
    fc = np.fft.rfft(c, nfft)
    B = np.fft.irfft(np.conj(np.fft.rfft(X.T, nfft, axis=1)) * fc[None], nfft, axis=1)[:, : 2 * M + 1].T
    cs = np.concatenate([[0.0], np.cumsum(c)])
    cs2 = np.concatenate([[0.0], np.cumsum(c * c)])
    m = np.arange(2 * M + 1)
    s1 = cs[m + n] - cs[m]
    var_c = np.maximum(cs2[m + n] - cs2[m] - s1 * s1 / n, 0.0)
    q, w = _nonneg_explained(B, sxx + lam * np.eye(d), iters)
    return np.where(var_c > 1e-300, q / np.maximum(var_c, 1e-300), 0.0), w
