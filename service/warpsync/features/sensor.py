"""Sensor features: high-passed magnitude and its rising edge.

Input ``(n,)`` or ``(n, c)`` samples at `rate_hz`, sample k at ``t0_s + k / rate_hz``. Each channel is
high-passed by a first-order Butterworth at `highpass_hz` (removes gravity, bias and slow posture changes; the
filter starts in steady state on the first sample and its state carries across chunks), then the magnitude
``m_k = |h_k|`` (Euclidean over channels) is taken: high-passing *before* the magnitude keeps horizontal
accelerations, which barely change ``|a + g|``. The activity envelope is its rising edge,
``max(0, m_k - m_{k-1}) * rate_hz`` (units per second), stamped at the midpoint ``t0_s + (k - 1/2) / rate_hz``:
like an audio onset, it marks where a jolt *starts*.

With ``kinetic=True`` the streaming class also returns the *kinetic* envelope as a second column: the
high-passed magnitude itself at the same midpoints, ``(m_k + m_{k-1}) / 2``: the magnitude of the
acceleration, which peaks at the middle of a velocity change, as a camera's change of motion energy does
(`MotionEnvelope` kinetic column).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, lfilter, lfilter_zi

from ..errors import AlignmentError
from .base import Frames


def as_channels(x: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(n, ...)`` -> ``(n, c)`` float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise AlignmentError("sensor samples must be an array (n,) or (n, channels)")
    return x.reshape(len(x), math.prod(x.shape[1:]) if x.ndim > 1 else 1)


def sensor_activity(
    x: np.ndarray, rate_hz: float, *, highpass_hz: float = 0.5, t0_s: float = 0.0, kinetic: bool = False
) -> Frames:
    """Sensor activity envelope of a whole recording (see the module docstring for the time axis); with
    `kinetic`, values are ``(n, 2)``: activity and kinetic envelope."""
    return SensorEnvelope(rate_hz, t0_s, highpass_hz=highpass_hz, kinetic=kinetic).push(x)


class SensorEnvelope:
    """Streaming `sensor_activity`: identical output (to rounding) for any chunking of the same samples."""

    def __init__(self, rate_hz: float, t0_s: float, *, highpass_hz: float = 0.5, kinetic: bool = False) -> None:
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise AlignmentError(f"sensor rate must be a positive number of Hz, got {rate_hz}")
        if not (0 < highpass_hz < rate_hz / 2):
            raise AlignmentError(f"highpass_hz must be in (0, rate/2) = (0, {rate_hz / 2}), got {highpass_hz}")
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.b, self.a = butter(1, highpass_hz, btype="highpass", fs=rate_hz)
        self._zi: np.ndarray | None = None
        self._prev: float | None = None
        self._k = 0
        self.kinetic = bool(kinetic)

    def push(self, x: np.ndarray) -> Frames:
        xc = as_channels(x)
        n = len(xc)
        if n == 0:
            return Frames.empty(2) if self.kinetic else Frames.empty()
        if self._zi is None:
            # start the filter in steady state on the first sample: no start-up transient from gravity
            self._zi = lfilter_zi(self.b, self.a)[:, None] * xc[0][None, :]
        h, self._zi = lfilter(self.b, self.a, xc, axis=0, zi=self._zi)
        m = np.sqrt((h * h).sum(axis=1))
        ks = self._k + np.arange(n)
        self._k += n
        mm = m if self._prev is None else np.concatenate([[self._prev], m])
        if self._prev is None:
            ks = ks[1:]
        vals = np.maximum(np.diff(mm), 0.0) * self.rate_hz
        self._prev = float(m[-1])
        times = self.t0_s + (ks - 0.5) / self.rate_hz
        if not self.kinetic:
            return Frames(times, vals)
        return Frames(times, np.stack([vals, 0.5 * (mm[1:] + mm[:-1])], axis=1))
