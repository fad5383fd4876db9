"""Audio features: energy-onset envelope (for alignment) and log-mel frames.

Onset envelope: the signal (channels averaged) is cut into blocks of ``H = round(rate_hz * hop_ms / 1000)``
samples; block k covers samples [kH, (k+1)H). ``e_k = log(mean(x^2 over block k) + floor)`` and the onset
strength ``max(0, e_k - e_{k-1})`` is stamped at the boundary between the two blocks, ``t0_s + k H / rate_hz``
(the midpoint of the two block centres), for k >= 1. Integer samples are scaled to full scale 1 first.

Log-mel: frame k covers samples [kH, kH + n_fft) (Hann window), stamped at its centre
``t0_s + (kH + n_fft / 2) / rate_hz``; HTK mel filters; ``log(mel power + 1e-10)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import AlignmentError
from .base import Frames

ENERGY_FLOOR = 1e-10
"""Added to block energies before the log (full-scale-1 units squared): -100 dBFS."""


def to_float_mono(x: np.ndarray) -> np.ndarray:
    """``(n, *shape)`` samples of any wire dtype -> ``(n,)`` float64 in full-scale-1 units (channels averaged)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise AlignmentError("audio samples must be an array of shape (n,) or (n, channels)")
    if x.dtype == np.uint8:
        y = (x.astype(np.float64) - 128.0) / 128.0
    elif x.dtype == np.int16:
        y = x.astype(np.float64) / 32768.0
    elif x.dtype == np.int32:
        y = x.astype(np.float64) / 2147483648.0
    else:
        y = x.astype(np.float64, copy=False)
    if y.ndim > 1:
        y = y.reshape(len(y), -1).mean(axis=1) if len(y) else np.zeros(0)
    return y


def _hop_samples(rate_hz: float, hop_ms: float) -> int:
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise AlignmentError(f"audio rate must be a positive number of Hz, got {rate_hz}")
    if not (np.isfinite(hop_ms) and hop_ms > 0):
        raise AlignmentError(f"hop_ms must be positive, got {hop_ms}")
    return max(1, round(rate_hz * hop_ms / 1000.0))


def onset_envelope(x: np.ndarray, rate_hz: float, *, hop_ms: float = 1.0, t0_s: float = 0.0) -> Frames:
    """Energy-onset envelope of a whole recording (see the module docstring for the time axis)."""
    return AudioEnvelope(rate_hz, t0_s, hop_ms=hop_ms).push(x)


class BlockEnergies:
    """Streaming block log energies: samples in, ``(index of the first new block, log energies of the new complete
    blocks)`` out; block k covers samples [kH, (k+1)H) and has ``log(mean(x^2) + ENERGY_FLOOR)``."""

    def __init__(self, rate_hz: float, hop_ms: float) -> None:
        self.hop = _hop_samples(rate_hz, hop_ms)
        self._tail = np.zeros(0)
        self._k = 0  # index of the next complete block

    def push(self, x: np.ndarray) -> tuple[int, np.ndarray]:
        y = to_float_mono(x)
        if len(self._tail):
            y = np.concatenate([self._tail, y])
        nb = len(y) // self.hop
        self._tail = y[nb * self.hop :].copy()
        k0 = self._k
        self._k += nb
        blocks = y[: nb * self.hop].reshape(nb, self.hop)
        return k0, np.log(np.mean(blocks * blocks, axis=1) + ENERGY_FLOOR)


class AudioEnvelope:
    """Streaming `onset_envelope`: identical output for any chunking of the same samples."""

    def __init__(self, rate_hz: float, t0_s: float, *, hop_ms: float = 1.0) -> None:
        self._blocks = BlockEnergies(rate_hz, hop_ms)
        self.hop = self._blocks.hop
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.hop_s = self.hop / self.rate_hz
        self._prev: float | None = None  # log energy of block k-1

    def push(self, x: np.ndarray) -> Frames:
        k0, e = self._blocks.push(x)
        nb = len(e)
        if nb == 0:
            return Frames.empty()
        if self._prev is None:
            diffs = np.diff(e)
            ks = np.arange(k0 + 1, k0 + nb)
        else:
            diffs = np.diff(np.concatenate([[self._prev], e]))
            ks = np.arange(k0, k0 + nb)
        self._prev = float(e[-1])
        return Frames(self.t0_s + ks * self.hop_s, np.maximum(diffs, 0.0))


def mel_filterbank(
    rate_hz: float, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None
) -> np.ndarray:
    """HTK-mel triangular filters, ``(n_mels, n_fft // 2 + 1)``."""
    fmax_hz = rate_hz / 2 if fmax_hz is None else fmax_hz
    if not (0 <= fmin_hz < fmax_hz <= rate_hz / 2) or n_mels < 1 or n_fft < 2:
        raise AlignmentError("mel filterbank needs 0 <= fmin < fmax <= rate/2, n_mels >= 1, n_fft >= 2")

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin_hz), mel(fmax_hz), n_mels + 2))
    freqs = np.linspace(0, rate_hz / 2, n_fft // 2 + 1)
    lo, ce, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / np.maximum(ce - lo, 1e-12)
    down = (hi - freqs[None, :]) / np.maximum(hi - ce, 1e-12)
    return np.maximum(0.0, np.minimum(up, down))


def log_mel(
    x: np.ndarray, rate_hz: float, *, n_mels: int = 40, hop_ms: float = 10.0, n_fft: int = 512, t0_s: float = 0.0
) -> Frames:
    """Log-mel frames of a whole recording (see the module docstring for the time axis)."""
    return LogMel(rate_hz, t0_s, n_mels=n_mels, hop_ms=hop_ms, n_fft=n_fft).push(x)


class LogMel:
    """Streaming `log_mel`: identical output for any chunking of the same samples."""

    def __init__(
        self, rate_hz: float, t0_s: float, *, n_mels: int = 40, hop_ms: float = 10.0, n_fft: int = 512
    ) -> None:
        self.hop = _hop_samples(rate_hz, hop_ms)
        if n_fft < self.hop:
            raise AlignmentError(f"n_fft ({n_fft}) must be at least the hop ({self.hop} samples)")
        self.n_fft = int(n_fft)
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.fb = mel_filterbank(rate_hz, n_fft, n_mels)
        self.window = np.hanning(n_fft + 1)[:-1]
        self._buf = np.zeros(0)
        self._k = 0  # next frame index; frame k starts at sample k * hop
        self._buf_start = 0  # sample index of _buf[0]

    def push(self, x: np.ndarray) -> Frames:
        y = to_float_mono(x)
        self._buf = np.concatenate([self._buf, y]) if len(self._buf) else y.copy()
        end = self._buf_start + len(self._buf)
        n_frames = max(0, (end - self.n_fft) // self.hop + 1 - self._k)
        if n_frames == 0:
            return Frames(np.zeros(0), np.zeros((0, self.fb.shape[0])))
        starts = (self._k + np.arange(n_frames)) * self.hop - self._buf_start
        idx = starts[:, None] + np.arange(self.n_fft)[None, :]
        spec = np.abs(np.fft.rfft(self._buf[idx] * self.window, axis=1)) ** 2
        vals = np.log(spec @ self.fb.T + ENERGY_FLOOR)
        times = self.t0_s + ((self._k + np.arange(n_frames)) * self.hop + self.n_fft / 2) / self.rate_hz
        self._k += n_frames
        drop = self._k * self.hop - self._buf_start
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return Frames(times, vals)
