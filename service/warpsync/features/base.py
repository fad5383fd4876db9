"""The time axis shared by all features, and the streaming-extractor shell (segments, gaps, resets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import AlignmentError


@dataclass(frozen=True)
class Frames:
    """Feature frames with their times: ``values[k]`` describes the stream at ``times_s[k]`` (seconds on the
    stream's own clock). `values` is ``(n,)`` for envelopes or ``(n, d)`` for vectors."""

    times_s: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if len(self.times_s) != len(self.values):
            raise AlignmentError(f"Frames: {len(self.times_s)} times but {len(self.values)} values")

    def __len__(self) -> int:
        return len(self.times_s)

    @staticmethod
    def empty(dim: int | None = None) -> Frames:
        shape = (0,) if dim is None else (0, dim)
        return Frames(np.zeros(0), np.zeros(shape))

    @staticmethod
    def concat(parts: list[Frames]) -> Frames:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Frames.empty()
        return Frames(np.concatenate([p.times_s for p in parts]), np.concatenate([p.values for p in parts]))


class Extractor(Protocol):
    """A streaming extractor on one contiguous segment of samples."""

    def push(self, x: np.ndarray) -> Frames: ...


class SegmentedExtractor:
    """Feeds an `Extractor` chunk by chunk, starting a fresh one (new segment) whenever a chunk's device time
    does not continue the previous chunk's samples (a dropped chunk, a clock jump, a restart).

    Sample ``i`` of a segment is at ``segment_t0_s + i / rate_hz``: the sample clock, not per-chunk stamps,
    places samples inside a segment. A chunk whose stamp is off its expected time by more than `gap_tol_s`
    starts a new segment; the extractor's partial state (half a hop, the previous frame) is dropped there.
    The default tolerance is half a sample period, at least 5 ms (stamp jitter): a single dropped sample (one
    video frame sent per chunk) must start a new segment, or every later sample would be placed one sample
    period early (at 60 fps, 17 ms per dropped frame, accumulating).
    """

    def __init__(self, factory, rate_hz: float, gap_tol_s: float | None = None) -> None:
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise AlignmentError(f"a feature extractor needs a positive sample rate, got {rate_hz} Hz")
        self._factory = factory
        self.rate_hz = float(rate_hz)
        self.gap_tol_s = max(0.5 / rate_hz, 0.005) if gap_tol_s is None else gap_tol_s
        self._ext = None
        self._t0 = 0.0
        self._n = 0
        self.segments = 0

    def reset(self) -> None:
        self._ext = None

    def push(self, t_dev_s: float, x: np.ndarray) -> Frames:
        """Samples `x` (n, ...) whose first sample is at device time `t_dev_s`; returns the new frames."""
        if len(x) == 0:
            return Frames.empty()
        expected = self._t0 + self._n / self.rate_hz
        if self._ext is None or abs(t_dev_s - expected) > self.gap_tol_s:
            self._ext = self._factory(t_dev_s)
            self._t0 = t_dev_s
            self._n = 0
            self.segments += 1
        self._n += len(x)
        return self._ext.push(x)


def envelope_extractor(
    modality: str,
    rate_hz: float,
    shape: tuple[int, ...],
    *,
    audio_hop_ms: float = 1.0,
    sensor_highpass_hz: float = 0.5,
    units: str = "",
    kinetic: bool = False,
    cells: bool = False,
    motion_baseline_frames: int = 1,
    kinetic_from: str = "energy",
) -> SegmentedExtractor:
    """The streaming activity-envelope extractor for a stream of this modality, rate and sample shape.

    `units` ``motion`` marks video vectors as frame differences (stamped between their frames); `kinetic` makes
    video and sensor extractors return ``(n, 2)`` values: activity and kinetic envelope (audio ignores it); `cells`
    makes video extractors append the kinetic envelope's per-cell terms (``(n, 2 + d)``; others ignore it);
    `motion_baseline_frames` is the frame distance of raw frames' motion energy and `kinetic_from` what their
    kinetic envelope follows (`MotionEnvelope`)."""
    from .audio import AudioEnvelope
    from .sensor import SensorEnvelope
    from .video import MotionEnvelope

    if modality == "audio":
        return SegmentedExtractor(lambda t0: AudioEnvelope(rate_hz, t0, hop_ms=audio_hop_ms), rate_hz)
    if modality == "video":
        diff = units == "motion"
        return SegmentedExtractor(
            lambda t0: MotionEnvelope(
                rate_hz,
                t0,
                difference_vectors=diff,
                kinetic=kinetic,
                cells=cells,
                baseline_frames=motion_baseline_frames,
                kinetic_from=kinetic_from,
            ),
            rate_hz,
        )
    if modality == "sensor":
        return SegmentedExtractor(
            lambda t0: SensorEnvelope(rate_hz, t0, highpass_hz=sensor_highpass_hz, kinetic=kinetic), rate_hz
        )
    raise AlignmentError(f"no activity envelope for modality {modality!r} (audio, video and sensor have one)")
