"""The rate between two device clocks, from what content sync put at the same instant.

A microphone locked to the anchor microphone by raw audio (GCC-PHAT) is placed within tens of microseconds of
it at every hop: each hop gives a pair (this device's time, the anchor device's time) of one instant. The slope
of those pairs over tens of seconds is the rate of one device clock against the other, to a fraction of a ppm,
where the clock models' slopes against the host clock carry the host's load (1-5 ppm live: docs/engine-log.md,
"Drift in a live service"). A capture latency that changes (a step of the pairs, not a rate) must not tilt it,
so the slope is the median of the slopes over `lag_s` of every pair that has a pair that much later: a step
moves only the slopes that span it, `lag_s` / `window_s` of them.

Pure: times come in as arguments.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class PairRate:
    """Pairs (t_a, t_b) of two device clocks' times of one instant; `rate` is d t_a / d t_b - 1."""

    def __init__(self, window_s: float = 60.0, lag_s: float = 10.0, min_span_s: float = 20.0) -> None:
        if not 0 < lag_s < min_span_s <= window_s:
            raise ValueError(f"need 0 < lag_s < min_span_s <= window_s, got {lag_s}, {min_span_s}, {window_s}")
        self.window_s = window_s
        self.lag_s = lag_s
        self.min_span_s = min_span_s
        self._pairs: deque[tuple[float, float]] = deque()
        self.key: object = None
        """What the pairs rest on (the caller's: the clocks' jumps and restarts). Pairs under another key are
        cleared, and their rate is kept until the new ones span `min_span_s`: a clock that steps keeps its
        oscillator."""
        self.kept: float | None = None

    def add(self, t_a: float, t_b: float, key: object = None) -> None:
        if key != self.key:
            r = self.rate()
            self.kept = r if r is not None else self.kept
            self._pairs.clear()
            self.key = key
        if self._pairs and t_b <= self._pairs[-1][1]:
            return  # not newer: nothing new about the rate
        self._pairs.append((float(t_a), float(t_b)))
        while self._pairs and self._pairs[0][1] < t_b - self.window_s:
            self._pairs.popleft()

    def clear(self) -> None:
        """Forget the pairs and the kept rate (what they rest on may have been wrong: a lock dropped)."""
        self._pairs.clear()
        self.key = None
        self.kept = None

    @property
    def span_s(self) -> float:
        return self._pairs[-1][1] - self._pairs[0][1] if len(self._pairs) > 1 else 0.0

    def rate(self) -> float | None:
        """d t_a / d t_b - 1; while the pairs span less than `min_span_s`, the rate kept from before the last
        change of key, or None."""
        if self.span_s < self.min_span_s:
            return self.kept
        p = np.asarray(self._pairs)
        a, b = p[:, 0], p[:, 1]
        j = np.searchsorted(b, b + self.lag_s)
        i = np.nonzero(j < len(b))[0]
        j = j[i]
        return float(np.median((a[j] - a[i]) / (b[j] - b[i]))) - 1.0


def pair_rate_reference(pairs: list[tuple[float, float]], lag_s: float) -> float:
    """`PairRate.rate` of a window of pairs (ascending t_b), one pair at a time."""
    slopes = []
    for k, (a0, b0) in enumerate(pairs):
        for a1, b1 in pairs[k + 1 :]:
            if b1 >= b0 + lag_s:
                slopes.append((a1 - a0) / (b1 - b0))
                break
    return float(np.median(slopes)) - 1.0
