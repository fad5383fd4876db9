"""The processors the service runs, in order: `build_stages(cfg, registry)`.

1. the status stage: ``stream.open`` and periodic ``stream.status`` events (with the engine's per-stream
   additions: settled, jumped, method, session, when the engine runs);
2. the sync engine (`warpsync.engine.stage.EngineStage`): ``sync.offset``, ``sync.bundle``;
3. speech sync (`warpsync.speech.stage.SpeechStage`): ``speech.word``, ``speech.status``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter

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

    wants_samples = False
    """Status comes from the stream table on ``tick``: the service skips this stage on every chunk."""

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
    """The speech stage, built when the first ``text`` stream opens, in the background.

    Building it imports torch and loads the acoustic model (seconds), which a service whose rig has no
    transcript should not pay, and which must not stall the service loop (control replies, other streams).
    Until a text stream opens this keeps only the metadata of the open streams. The first text stream starts
    a loader thread that builds `warpsync.speech.stage.SpeechStage`; meanwhile the chunks of audio and text
    streams are queued (copied, at most `MAX_PENDING_BYTES` in all; beyond that they are dropped and counted
    in `dropped_while_loading` and `warpsync_speech_dropped_while_loading_total`). Once built, the opens of the streams
    still open and the queued calls are replayed in order, at most `REPLAY_BUDGET_S` of them per service call (a
    backlog of 215 calls replayed at once held the loop for 63 ms in the demo, and every other stage's events
    with it); calls arriving meanwhile join the queue behind them, and the stage's ``tick`` waits until the
    queue is empty. Then every call passes through. Audio received before the first text stream opened
    is not aligned. If the build fails (no torch, a bad model file) the error is logged once and speech sync
    stays off; the other stages are unaffected. With ``speech.preload`` the stage is built at construction
    instead (the service's startup), and every call passes through from the start.
    """

    name = "speech"
    MAX_PENDING_BYTES = 64 * 2**20
    """Payload bytes queued while the stage loads (about 4 minutes of one 48 kHz float32 microphone)."""
    REPLAY_BUDGET_S = 0.005
    """Most time one service call spends replaying queued calls once the stage is built (at least two calls
    are replayed per call, so the queue shrinks whatever the budget), seconds."""

    def __init__(self, cfg: Config, registry: CollectorRegistry, build: Callable[[], Any] | None = None) -> None:
        self._cfg = cfg.speech
        self._registry = registry
        self._build = build or self._build_stage
        self._open: dict[str, StreamMeta] = {}
        self._pending: deque[tuple[str, Any, Any]] = deque()
        self._pending_bytes = 0
        self._loader: threading.Thread | None = None
        self._built: Any = None
        self._error: BaseException | None = None
        self.failed = False
        self.dropped_while_loading = 0
        self.stage: Any = None
        self._m_dropped = Counter(
            "warpsync_speech_dropped_while_loading_total",
            "Audio/text chunks not queued for the speech stage while it loaded (queue full)",
            registry=registry,
        )
        if self._cfg.preload:  # at startup, before any stream (`SpeechConfig.preload`)
            log.info("loading the speech stage (speech.preload)")
            self._load()
            if self._error is not None:
                self._fail()
            else:
                self.stage = self._built

    def _build_stage(self) -> Any:
        from .speech.stage import SpeechStage

        stage = SpeechStage(self._cfg, self._registry)
        log.info("speech stage: model and aligner warmed up in %.2f s", stage.warm_up())
        return stage

    def _load(self) -> None:
        try:
            self._built = self._build()
        except BaseException as exc:  # noqa: BLE001  reported by the service loop in _poll
            self._error = exc

    @property
    def loading(self) -> bool:
        return self._loader is not None and self.stage is None and not self.failed

    def wait_loaded(self, timeout_s: float | None = None) -> bool:
        """Block until the background build has finished (tests and tools); True if it has."""
        if self._loader is not None:
            self._loader.join(timeout_s)
        return self._loader is not None and not self._loader.is_alive()

    def _poll(self, now_s: float) -> list[Event]:
        """Install the stage once the loader has finished, replaying the open streams and the queued calls."""
        if self.stage is not None or self._loader is None or self.failed or self._loader.is_alive():
            return []
        if self._error is not None:
            self._fail()
            return []
        self.stage = self._built
        log.info(
            "speech stage loaded; replaying %d open streams and %d queued calls", len(self._open), len(self._pending)
        )
        events: list[Event] = []
        for m in self._open.values():
            events += self.stage.open(m, now_s)
        self._open.clear()
        return events + self._drain()

    def _fail(self) -> None:
        """The build failed: speech sync stays off, nothing is kept for it."""
        self.failed = True
        log.error("speech sync is off: building the speech stage failed: %s", self._error)
        self._open.clear()
        self._pending.clear()
        self._pending_bytes = 0

    def _drain(self) -> list[Event]:
        """Replay queued calls in order for at most `REPLAY_BUDGET_S` (and at least two calls)."""
        events: list[Event] = []
        t0 = time.perf_counter()
        done = 0
        while self._pending and (done < 2 or time.perf_counter() - t0 < self.REPLAY_BUDGET_S):
            kind, a, b = self._pending.popleft()
            done += 1
            if kind == "samples":
                self._pending_bytes -= _payload_bytes(b.data)
                events += self.stage.samples(a, b)
            elif kind == "open":
                events += self.stage.open(a, b)
            else:
                events += self.stage.close(a, b)
        if not self._pending:
            self._pending_bytes = 0
        return events

    def _queue_samples(self, meta: StreamMeta, chunk: Samples) -> None:
        data = chunk.data if isinstance(chunk.data, str) else np.array(chunk.data, copy=True)
        size = _payload_bytes(data)
        if self._pending_bytes + size > self.MAX_PENDING_BYTES:
            self.dropped_while_loading += 1
            self._m_dropped.inc()
            if self.dropped_while_loading == 1:
                log.warning("speech stage still loading: %d bytes queued, dropping further chunks", self._pending_bytes)
        else:
            self._pending.append(("samples", meta, dataclasses.replace(chunk, data=data)))
            self._pending_bytes += size

    def open(self, meta: StreamMeta, now_s: float) -> list[Event]:
        events = self._poll(now_s)
        if self.stage is not None and self._pending:
            self._pending.append(("open", meta, now_s))
            return events + self._drain()
        if self.stage is not None:
            return events + self.stage.open(meta, now_s)
        if self.failed:
            return events
        self._open[meta.stream] = meta
        if meta.modality == "text" and self._loader is None:
            log.info("first text stream %r: loading the speech stage in the background", meta.stream)
            self._loader = threading.Thread(target=self._load, name="speech-loader", daemon=True)
            self._loader.start()
        return events

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        if self.stage is not None and not self._pending:  # the per-chunk path once loaded: straight through
            return self.stage.samples(meta, chunk)
        events = self._poll(time.time())
        if self.stage is not None:
            if self._pending and meta.modality in ("audio", "text"):  # behind the queued calls
                self._queue_samples(meta, chunk)
                return events + self._drain()
            if self._pending:
                events += self._drain()
            return events + self.stage.samples(meta, chunk)
        if self.loading and meta.modality in ("audio", "text") and meta.stream in self._open:
            self._queue_samples(meta, chunk)
        return events

    def close(self, stream: str, now_s: float) -> list[Event]:
        events = self._poll(now_s)
        if self.stage is not None and self._pending:
            self._pending.append(("close", stream, now_s))
            return events + self._drain()
        if self.stage is not None:
            return events + self.stage.close(stream, now_s)
        if (
            self.loading
            and stream in self._open
            and any(k == "samples" and m.stream == stream for k, m, _ in self._pending)
        ):
            self._pending.append(("close", stream, now_s))  # its queued chunks are replayed first
        else:
            self._open.pop(stream, None)
        return events

    def tick(self, now_s: float) -> list[Event]:
        events = self._poll(now_s)
        if self.stage is None:
            return events
        if self._pending:  # the stage's clock waits for the calls that came before it
            events += self._drain()
            if self._pending:
                return events
        return events + self.stage.tick(now_s)


def _payload_bytes(data: Any) -> int:
    return len(data.encode()) if isinstance(data, str) else int(data.nbytes)
