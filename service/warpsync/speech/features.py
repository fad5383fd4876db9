"""Audio conditioning before the model: channel mix-down and streaming resampling to the model's rate.

`StreamResampler` is stateful so that feeding a signal in chunks of any size (including empty chunks)
gives exactly the output of feeding it in one piece: a linear-phase FIR low-pass (when downsampling) with
carried filter state, then linear interpolation at the output instants, carrying the last input sample.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import firwin, lfilter

from ..errors import AlignmentError


def to_mono(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) → (n,) float32, channel mean; integer PCM scaled to [-1, 1)."""
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        scale = float(max(abs(info.min), info.max))
        a = (a.astype(np.float64) - (0 if a.dtype.kind == "i" else (info.max + 1) / 2)) / scale
    if a.ndim == 2:
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise AlignmentError(f"audio must be (samples,) or (samples, channels), got shape {a.shape}")
    return np.asarray(a, np.float32)


class StreamResampler:
    def __init__(self, rate_in_hz: float, rate_out_hz: int):
        if not (rate_in_hz > 0 and rate_out_hz > 0):
            raise AlignmentError(f"sample rates must be > 0 Hz, got {rate_in_hz} -> {rate_out_hz}")
        self.r_in = float(rate_in_hz)
        self.r_out = int(rate_out_hz)
        self.identity = self.r_in == self.r_out
        self.step = self.r_in / self.r_out  # input samples per output sample
        if self.r_out < self.r_in:
            self.taps = firwin(63, 0.45 * self.r_out, fs=self.r_in)
        else:
            self.taps = np.array([1.0])
        self.zi = np.zeros(len(self.taps) - 1)
        self.delay = (len(self.taps) - 1) / 2  # group delay of the FIR, input samples
        self.n_in = 0  # input samples seen
        self.n_out = 0  # output samples produced
        self.hist = np.zeros(0)  # filtered samples from index hist_start
        self.hist_start = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(-1)
        if self.identity:
            return x.astype(np.float32)
        if x.size == 0:
            return np.zeros(0, np.float32)
        y, self.zi = lfilter(self.taps, [1.0], x, zi=self.zi)
        self.hist = np.concatenate([self.hist, y])
        self.n_in += len(x)
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        """Flush the filter (zero input for its group delay) and emit the remaining output samples."""
        if self.identity:
            return np.zeros(0, np.float32)
        pad = int(np.ceil(self.delay)) + 1
        y, self.zi = lfilter(self.taps, [1.0], np.zeros(pad), zi=self.zi)
        self.hist = np.concatenate([self.hist, y])
        n_real = self.n_in
        self.n_in += pad
        return self._emit(final=True, limit_in=n_real)

    def _emit(self, final: bool, limit_in: int | None = None) -> np.ndarray:
        # output sample k is at input position k * step (+ FIR delay in the filtered signal)
        last = self.hist_start + len(self.hist) - 1  # last filtered index available
        k_max = int(np.floor((last - 1 - self.delay) / self.step)) if last >= 1 else -1
        if final and limit_in is not None:
            k_max = min(k_max, int(np.ceil(limit_in / self.step)) - 1)
        if k_max < self.n_out:
            return np.zeros(0, np.float32)
        k = np.arange(self.n_out, k_max + 1)
        pos = k * self.step + self.delay - self.hist_start
        i = np.floor(pos).astype(np.int64)
        frac = pos - i
        out = self.hist[i] * (1 - frac) + self.hist[np.minimum(i + 1, len(self.hist) - 1)] * frac
        self.n_out = k_max + 1
        keep = int(np.floor(self.n_out * self.step + self.delay)) - self.hist_start - 1
        if keep > 0:
            self.hist = self.hist[keep:]
            self.hist_start += keep
        return out.astype(np.float32)
