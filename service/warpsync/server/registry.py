"""The service process's view of every stream: metadata, owning worker, ring buffer and counters (pure).

Workers validate; this table keeps what the service reports (``streams``, ``stream.status``, metrics) and
what the control socket needs (``resume_seq``, end-of-stream acknowledgements).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from warpsync_client.protocol import StreamMeta

from ..ingest.config import IngestConfig
from ..ingest.ringbuffer import RingBuffer, TextBuffer, capacity_for

RATE_WINDOW_S = 10.0  # rate_measured_hz: samples per host second over about this long


@dataclass
class StreamEntry:
    meta: StreamMeta
    worker: int
    buffer: RingBuffer | TextBuffer
    opened_s: float
    open: bool = True
    last_seq: int = -1
    """Highest seq accepted."""
    processed_seq: int = -1
    """Highest seq the service has finished with (accepted or rejected): what ``close`` waits for."""
    chunks: int = 0
    samples: int = 0
    bytes: int = 0
    gaps: int = 0
    duplicates: int = 0
    reordered: int = 0
    time_jumps: int = 0
    nonfinite: int = 0
    rejected: int = 0
    dropped_samples: int = 0
    last_arrival_s: float | None = None
    last_status_s: float = 0.0
    _rate_marks: deque = field(default_factory=deque)

    def note_chunk(self, seq: int, n: int, nbytes: int, arrival_s: float, gap: int) -> None:
        self.chunks += 1
        self.samples += n
        self.bytes += nbytes
        self.gaps += gap
        self.last_seq = max(self.last_seq, seq)
        self.processed_seq = max(self.processed_seq, seq)
        self.last_arrival_s = arrival_s

    def note_processed(self, seq: int) -> None:
        self.processed_seq = max(self.processed_seq, seq)

    def rate_measured_hz(self, now_s: float) -> float:
        """Samples per second of host time over the last `RATE_WINDOW_S` (0 until two marks exist)."""
        marks = self._rate_marks
        marks.append((now_s, self.samples))
        while len(marks) > 2 and now_s - marks[1][0] >= RATE_WINDOW_S:
            marks.popleft()
        if len(marks) < 2:
            return 0.0
        t0, s0 = marks[0]
        return (self.samples - s0) / (now_s - t0) if now_s > t0 else 0.0

    def stalled(self, now_s: float, stall_s: float) -> bool:
        ref = self.last_arrival_s if self.last_arrival_s is not None else self.opened_s
        return self.open and now_s - ref > stall_s

    def summary(self) -> dict[str, Any]:
        m = self.meta
        return {
            "stream": m.stream,
            "modality": m.modality,
            "rate_hz": m.rate_hz,
            "shape": list(m.shape),
            "dtype": m.dtype,
            "session": m.session,
            "clock": m.clock_id,
            "worker": self.worker,
            "last_seq": self.last_seq,
            "chunks": self.chunks,
            "samples": self.samples,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "rejected": self.rejected,
            "state": "open" if self.open else "closed",
        }


class StreamRegistry:
    """All streams known to the service, bounded by ``ingest.max_streams`` (oldest closed ones forgotten)."""

    def __init__(self, cfg: IngestConfig) -> None:
        self.cfg = cfg
        self._streams: dict[str, StreamEntry] = {}

    def __contains__(self, stream: str) -> bool:
        return stream in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self):
        return iter(list(self._streams.values()))

    def get(self, stream: str) -> StreamEntry | None:
        return self._streams.get(stream)

    def n_open(self) -> int:
        return sum(1 for e in self._streams.values() if e.open)

    def make_buffer(self, meta: StreamMeta) -> RingBuffer | TextBuffer:
        if meta.modality == "text" or meta.rate_hz <= 0:
            return TextBuffer(self.cfg.text_buffer_captions)
        cap = capacity_for(meta.rate_hz, self.cfg.buffer_s)
        return RingBuffer(meta.rate_hz, meta.shape, meta.np_dtype, cap, self.cfg.full_policy, max_segments=1 << 16)

    def add(self, meta: StreamMeta, worker: int, now_s: float) -> StreamEntry:
        """A new stream (the caller has checked it is new). Forgets the oldest closed stream when full."""
        if len(self._streams) >= self.cfg.max_streams:
            for sid, e in self._streams.items():
                if not e.open:
                    del self._streams[sid]
                    break
        e = StreamEntry(meta, worker, self.make_buffer(meta), now_s, last_status_s=now_s)
        self._streams[meta.stream] = e
        return e

    def full(self) -> bool:
        return len(self._streams) >= self.cfg.max_streams and all(e.open for e in self._streams.values())

    def forget(self, stream: str) -> None:
        self._streams.pop(stream, None)

    def status_body(self, e: StreamEntry, now_s: float) -> dict[str, Any]:
        """The body of a ``stream.status`` event."""
        return {
            "t_host_s": now_s,
            "rate_hz": e.meta.rate_hz,
            "rate_measured_hz": e.rate_measured_hz(now_s),
            "chunks": e.chunks,
            "samples": e.samples,
            "gaps": e.gaps,
            "duplicates": e.duplicates,
            "reordered": e.reordered,
            "rejected": e.rejected,
            "dropped_samples": e.dropped_samples,
            "stalled": e.stalled(now_s, self.cfg.stall_s),
            "closed": not e.open,
            "buffer_fill": e.buffer.fill_ratio,
            "last_seq": e.last_seq,
        }
