"""Impact envelopes: where a contact *starts*, as a microphone hears it and as a sensor on the struck object
feels it. What a sensor and a microphone share is the instant a force begins: the sound of a contact starts
with it, and so does the change of the object's acceleration. Both envelopes are stamped at the expected
instant of that start, so a sensor and a microphone that heard and felt the same contact line up without a
bias (unlike the activity envelopes: the sensor's rising edge of acceleration peaks where the force grows
fastest, several milliseconds into a soft contact).

Audio: the signal (channels averaged, full scale 1) is cut into blocks of ``H = round(rate_hz * hop_ms /
1000)`` samples; ``e_k = log(mean(x^2 over block k) + floor)`` and the impact strength of block k is its rise
over the *loudest* of the `lookback` blocks before it, ``max(0, e_k - max(e_{k-lookback}, ..., e_{k-1}))``
(a rise over the recent maximum: the fluctuations of ambience and of a sound already ringing rise over the
previous block, not over the last few), stamped at the block's centre ``t0_s + (k + 1/2) H / rate_hz``: an
onset anywhere in block k is at its centre on average. Block 0 has no value; blocks 1 to lookback - 1 compare
with the blocks there are.

Sensor: ``(n,)`` or ``(n, c)`` samples at `rate_hz` (sample k at ``t0_s + k / rate_hz``). The jerk magnitude
``j_k = |x_k - x_{k-1}| * rate_hz`` (Euclidean over channels; differencing removes gravity and bias) and the
impact strength ``max(0, j_k - j_{k-1})`` (units per second squared), stamped at ``t0_s + (k - 1/2) /
rate_hz``, the middle of the interval of j_k: a force that starts between samples k - 1 and k shows first in
j_k. Samples 0 and 1 have no value.
"""

from __future__ import annotations

import numpy as np

from ..errors import AlignmentError
from .audio import BlockEnergies, _hop_samples
from .base import Frames, SegmentedExtractor
from .sensor import as_channels


def audio_impacts(
    x: np.ndarray, rate_hz: float, *, hop_ms: float = 1.0, lookback: int = 5, t0_s: float = 0.0
) -> Frames:
    """Audio impact envelope of a whole recording (see the module docstring)."""
    return AudioImpacts(rate_hz, t0_s, hop_ms=hop_ms, lookback=lookback).push(x)


def sensor_impacts(x: np.ndarray, rate_hz: float, *, t0_s: float = 0.0) -> Frames:
    """Sensor impact envelope of a whole recording (see the module docstring)."""
    return SensorImpacts(rate_hz, t0_s).push(x)


class AudioImpacts:
    """Streaming `audio_impacts`: identical output for any chunking of the same samples."""

    def __init__(self, rate_hz: float, t0_s: float, *, hop_ms: float = 1.0, lookback: int = 5) -> None:
        if int(lookback) < 1:
            raise AlignmentError(f"impact lookback must be at least one block, got {lookback}")
        self._blocks = BlockEnergies(rate_hz, hop_ms)
        self.hop = self._blocks.hop
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.lookback = int(lookback)
        self._prev = np.full(self.lookback, -np.inf)  # log energies of the last `lookback` blocks (-inf: none yet)

    def push(self, x: np.ndarray) -> Frames:
        k0, e = self._blocks.push(x)
        nb = len(e)
        if nb == 0:
            return Frames.empty()
        L = self.lookback
        ext = np.concatenate([self._prev, e])
        # the loudest of the L blocks before each new block (a sliding maximum); block 0 has none before it
        loudest = np.lib.stride_tricks.sliding_window_view(ext, L)[:nb].max(axis=1)
        self._prev = ext[-L:].copy()
        keep = np.isfinite(loudest)
        ks = k0 + np.arange(nb)[keep]
        vals = np.maximum(e[keep] - loudest[keep], 0.0)
        return Frames(self.t0_s + (ks + 0.5) * self.hop / self.rate_hz, vals)


class SensorImpacts:
    """Streaming `sensor_impacts`: identical output (to rounding) for any chunking of the same samples."""

    def __init__(self, rate_hz: float, t0_s: float) -> None:
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise AlignmentError(f"sensor rate must be a positive number of Hz, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self._last: np.ndarray | None = None  # the previous sample
        self._j: float | None = None  # the previous jerk magnitude
        self._k = 0  # index of the next sample

    def push(self, x: np.ndarray) -> Frames:
        xc = as_channels(x)
        n = len(xc)
        if n == 0:
            return Frames.empty()
        if self._last is not None and xc.shape[1] != self._last.shape[0]:
            raise AlignmentError(f"sensor samples changed from {self._last.shape[0]} to {xc.shape[1]} channels")
        ext = xc if self._last is None else np.concatenate([self._last[None, :], xc])
        first = self._k if self._last is None else self._k - 1  # sample index of ext[0]
        self._k += n
        self._last = xc[-1].copy()
        if len(ext) < 2:
            return Frames.empty()
        d = np.diff(ext, axis=0)
        j = np.sqrt((d * d).sum(axis=1)) * self.rate_hz  # j of sample first + 1 + i
        jj = j if self._j is None else np.concatenate([[self._j], j])
        ks = first + 1 + np.arange(len(j))
        if self._j is None:
            ks = ks[1:]
        self._j = float(j[-1])
        if len(jj) < 2:
            return Frames.empty()
        vals = np.maximum(np.diff(jj), 0.0) * self.rate_hz
        return Frames(self.t0_s + (ks - 0.5) / self.rate_hz, vals)


def impact_extractor(
    modality: str, rate_hz: float, *, audio_hop_ms: float = 1.0, lookback_ms: float = 5.0
) -> SegmentedExtractor:
    """The streaming impact-envelope extractor of an audio or sensor stream (segments, gaps: `SegmentedExtractor`)."""
    if modality == "audio":
        hop = _hop_samples(rate_hz, audio_hop_ms)
        lookback = max(1, round(lookback_ms * 1e-3 * rate_hz / hop))
        return SegmentedExtractor(lambda t0: AudioImpacts(rate_hz, t0, hop_ms=audio_hop_ms, lookback=lookback), rate_hz)
    if modality == "sensor":
        return SegmentedExtractor(lambda t0: SensorImpacts(rate_hz, t0), rate_hz)
    raise AlignmentError(f"no impact envelope for modality {modality!r} (audio and sensor have one)")
