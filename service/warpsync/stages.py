"""The processors the service runs, in order: `build_stages(cfg, registry)`.

1. the status stage: ``stream.open`` and periodic ``stream.status`` events (with the engine's per-stream
   additions: settled, jumped, method, session, when the engine runs);
2. the sync engine (`warpsync.engine.stage.EngineStage`): ``sync.offset``, ``sync.bundle``;
3. speech sync (`warpsync.speech.stage.SpeechStage`): ``speech.word``, ``speech.status``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from prometheus_client import CollectorRegistry
from warpsync_client.protocol import StreamMeta

from .config import Config
from .stage import Event, Samples, Stage

log = logging.getLogger(__name__)

StatusSource = Callable[[str, float], "Mapping[str, Any] | None"]


class StatusStage:
    """Announces streams and reports their health.

    ``open`` → a ``stream.open`` event with the stream's metadata; ``tick`` → one ``stream.status`` event
    per open stream every `interval_s`; ``close`` → a final ``stream.status`` with ``closed: true``. The
    numbers come from `status` (the service's stream table: ingest counts, buffer fill), called with the
    stream id and the current host time; the stage itself keeps only the set of streams and their timers.
    """

    name = "status"

    def __init__(self, interval_s: float, status: StatusSource) -> None:
        if not interval_s > 0:
            raise ValueError(f"status interval must be > 0 s, got {interval_s}")
        self.interval_s = float(interval_s)
        self._status = status
        self._due: dict[str, float] = {}

    def open(self, meta: StreamMeta, now_s: float) -> list[Event]:
        self._due[meta.stream] = now_s + self.interval_s
        body = {
            "t_host_s": now_s,
            "modality": meta.modality,
            "rate_hz": meta.rate_hz,
            "shape": list(meta.shape),
            "dtype": meta.dtype,
            "units": meta.units,
            "clock": meta.clock_id,
            "session": meta.session,
            "meta": dict(meta.meta),
        }
        return [Event("stream.open", meta.stream, body)]

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        return []

    def close(self, stream: str, now_s: float) -> list[Event]:
        self._due.pop(stream, None)
        body = self._status(stream, now_s)
        return [] if body is None else [Event("stream.status", stream, dict(body))]

    def tick(self, now_s: float) -> list[Event]:
        out: list[Event] = []
        for stream, due in list(self._due.items()):
            if now_s < due:
                continue
            self._due[stream] = max(due + self.interval_s, now_s)
            body = self._status(stream, now_s)
            if body is None:
                self._due.pop(stream, None)
            else:
                out.append(Event("stream.status", stream, dict(body)))
        return out


def build_stages(cfg: Config, registry: CollectorRegistry, status: StatusSource | None = None) -> list[Stage]:
    """Every stage, in the order the service calls them. `status` feeds the status stage (the service
    passes its stream table); without it the status stage is left out."""
    stages: list[Stage] = []
    engine: Any = None
    if cfg.engine.enabled:
        from .engine.stage import EngineStage

        engine = EngineStage(cfg.engine, registry)
    speech: Any = SpeechOnDemand(cfg, registry) if cfg.speech.enabled else None
    if status is not None and engine is not None:
        stages.append(StatusStage(cfg.publish.status_interval_s, _merged_status(status, engine)))
        stages.append(FullStatus(engine, status))
    else:
        if status is not None:
            stages.append(StatusStage(cfg.publish.status_interval_s, status))
        if engine is not None:
            stages.append(engine)
    if speech is not None:
        stages.append(speech)
    return stages


def _merged_status(status: StatusSource, engine: Any) -> StatusSource:
    """The ingest layer's status body, extended with the engine's fields for that stream."""

    def merged(stream: str, now_s: float) -> Mapping[str, Any] | None:
        body = status(stream, now_s)
        return None if body is None else {**body, **engine.status_fields(stream)}

    return merged


class FullStatus:
    """Wraps a stage that emits ``stream.status`` events of its own (the engine, the moment a stream settles,
    stalls or jumps) so that every ``stream.status`` a subscriber sees carries the full body: the ingest
    layer's fields underneath, the stage's on top. Everything else is passed through unchanged."""

    def __init__(self, stage: Any, status: StatusSource) -> None:
        self.stage = stage
        self.name = stage.name
        self._status = status
        if hasattr(stage, "bind_buffers"):
            self.bind_buffers = stage.bind_buffers

    def _full(self, events: list[Event], now_s: float) -> list[Event]:
        if not events:
            return events
        out = []
        for ev in events:
            if ev.name == "stream.status":
                base = self._status(ev.stream, now_s) or {}
                ev = Event(ev.name, ev.stream, {**base, **ev.body}, ev.payload)
            out.append(ev)
        return out

    def open(self, meta: StreamMeta, now_s: float) -> list[Event]:
        return self._full(self.stage.open(meta, now_s), now_s)

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        return self._full(self.stage.samples(meta, chunk), chunk.arrival_s)

    def close(self, stream: str, now_s: float) -> list[Event]:
        return self._full(self.stage.close(stream, now_s), now_s)

    def tick(self, now_s: float) -> list[Event]:
        return self._full(self.stage.tick(now_s), now_s)


class SpeechOnDemand:
    """The speech stage, built when the first ``text`` stream opens.

    Building it imports torch and loads the acoustic model (seconds), which a service whose rig has no
    transcript should not pay. Until then this keeps only the metadata of the open streams; when a text
    stream opens it builds `warpsync.speech.stage.SpeechStage` and replays the opens of the streams still
    open, then passes every call through. Audio received before the first text stream opened is not aligned.
    """

    name = "speech"

    def __init__(self, cfg: Config, registry: CollectorRegistry) -> None:
        self._cfg = cfg.speech
        self._registry = registry
        self._open: dict[str, StreamMeta] = {}
        self.stage: Any = None

    def open(self, meta: StreamMeta, now_s: float) -> list[Event]:
        if self.stage is not None:
            return self.stage.open(meta, now_s)
        self._open[meta.stream] = meta
        if meta.modality != "text":
            return []
        from .speech.stage import SpeechStage

        log.info("first text stream %r: loading the speech stage", meta.stream)
        self.stage = SpeechStage(self._cfg, self._registry)
        events: list[Event] = []
        for m in self._open.values():
            events += self.stage.open(m, now_s)
        self._open.clear()
        return events

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        return [] if self.stage is None else self.stage.samples(meta, chunk)

    def close(self, stream: str, now_s: float) -> list[Event]:
        if self.stage is None:
            self._open.pop(stream, None)
            return []
        return self.stage.close(stream, now_s)

    def tick(self, now_s: float) -> list[Event]:
        return [] if self.stage is None else self.stage.tick(now_s)
