"""The interface between the service's I/O shell and the pure processors (engine, speech, status).

The service's event loop owns every socket. It decodes and validates each message, stamps the host arrival
time, and calls the stages in order; a stage returns the events it wants published and never touches a
socket, thread or clock of its own (time comes in as arguments). Host time is `time.time()` seconds.

A stage must not raise on data: bad data is the ingest layer's job to reject before a stage sees it. An
exception escaping a stage is logged and counted (`warpsync_stage_errors_total{stage}`) by the service, and
that call's events are lost, but the stage keeps being called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from warpsync_client.protocol import StreamMeta


@dataclass(frozen=True)
class Event:
    """One event to publish: `name` such as ``sync.offset``; `stream` ('' for session-wide events)."""

    name: str
    stream: str
    body: Mapping[str, Any] = field(default_factory=dict)
    payload: Any = None


@dataclass(frozen=True)
class Samples:
    """A validated chunk handed to stages.

    `data` is an ``(n, *shape)`` array (read-only view, do not keep it past the call without copying) or a
    ``str`` for text streams. `t_dev_s` is the device time of the first sample; `arrival_s` the host time the
    service received it; `seq` the sender's sequence number; `duration_s` is set on text chunks only.
    """

    stream: str
    seq: int
    t_dev_s: float
    arrival_s: float
    data: np.ndarray | str
    duration_s: float | None = None


class Stage(Protocol):
    """A processor the service runs. A stage may set ``wants_samples = False`` (a class attribute): the
    service then never builds `Samples` for it nor calls its ``samples`` (the per-chunk hot path), only
    ``open``/``close``/``tick``. Absent, it counts as True."""

    name: str

    def open(self, meta: StreamMeta, now_s: float) -> list[Event]: ...

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]: ...

    def close(self, stream: str, now_s: float) -> list[Event]: ...

    def tick(self, now_s: float) -> list[Event]: ...


class BufferUser(Protocol):
    """Optional, for stages that read the ingest ring buffers (the sync engine).

    Before any other call the service calls ``bind_buffers(lookup)``, where ``lookup(stream)`` returns the
    stream's buffer (`warpsync.ingest.ringbuffer.RingBuffer`, or `TextBuffer` for text streams) or ``None``.
    A stage that wants to consume a stream in order registers a reader on it in ``open``
    (``buffer.add_reader(self.name)``) and ``consume``s in ``samples``/``tick``; under the ``block`` full
    policy ingest then waits for that reader instead of overwriting what it has not read.
    """

    def bind_buffers(self, lookup: Callable[[str], Any]) -> None: ...
