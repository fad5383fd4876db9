"""The service process: one event loop owning every socket of this process.

    devices --PUSH--> worker PULL (N workers: decode, validate; inline in this loop, or processes)
                         --batches (a call, or ipc)--> [this loop] ring buffers -> stages -> XPUB events
                                              ^-- control ROUTER (ping, status, streams, open, close)
                                              `-- Prometheus HTTP (a thread; reads the registry)

Buffers and stages live here, in one process, because the sync engine reads across streams (every stream
of a session against the reference) and must see them in one address space. Workers do the per-message
work that does not need that (unpacking, validation, sequence/time/NaN checks): inline ones
(``ingest.worker_mode = "inline"``) when this loop calls them, with their received frames kept as they are;
worker processes in parallel, forwarding validated chunks in batches.

Backpressure: a chunk that does not fit its ``block`` buffer is held with the rest of its batch, and this
loop stops reading that worker until the buffer's slowest reader has consumed enough; an inline worker's
PULL then fills (a worker process blocks on its full ipc queue and stops reading its PULL), and the devices
block on theirs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import zmq
from prometheus_client import CollectorRegistry

from warpsync_client.protocol import (
    StreamMeta,
    decode_close_request,
    decode_open,
    decode_request,
    encode_error_reply,
    encode_reply,
    peek_request_id,
)

from .. import __version__
from ..config import Config
from ..errors import ConfigError, ProtocolError
from ..ingest.config import tcp_port
from ..ingest.ringbuffer import RingBuffer, TextBuffer
from ..ingest.streams import ALL_REASONS, meta_equal, meta_to_wire
from ..ingest.worker import (
    CMD_CLOSE,
    CMD_FORGET,
    CMD_OPEN,
    CMD_RELEASE,
    FRAME_ARENA,
    REC_BATCH,
    REC_BYE,
    REC_CHUNK,
    REC_CLOSE,
    REC_HELLO,
    REC_OPEN,
    REC_REJECT,
    SHARED_RELEASE,
)
from ..metrics import MetricsServer, ServiceMetrics
from ..publish.publisher import EventPublisher
from ..stage import Event, Samples, Stage
from ..stages import build_stages
from .registry import StreamEntry, StreamRegistry
from .workers import WorkerPool, WorkerSlot

log = logging.getLogger(__name__)

TICK_S = 0.05
FLUSH_S = 0.25
DRAIN_TIMEOUT_S = 10.0


@dataclass
class _Held:
    """A batch whose processing stopped at record `pos` because a ``block`` buffer was full."""

    records: list
    frames: list
    pos: int
    frame_pos: int  # unused (kept 0): payloads are located by their record
    since_s: float
    generation: int | None = None
    """The worker incarnation that wrote the batch (its REC_BATCH record)."""


class _Joined:
    """An inline worker's joined small payloads (or a payload it rewrote), read as a received frame is
    (``.buffer``)."""

    __slots__ = ("buffer",)

    def __init__(self, data: Any) -> None:
        self.buffer = memoryview(data)


@dataclass
class _PendingOpen:
    envelope: list
    req_id: int | None
    stream: str
    worker: int
    deadline_s: float


@dataclass
class _PendingClose:
    envelope: list
    req_id: int | None
    stream: str
    seq: int
    deadline_s: float


@dataclass
class _RejectSummary:
    count: int = 0
    last_published_s: float = -1e18
    message: str = ""
    pending: int = 0


@dataclass(frozen=True)
class Endpoints:
    ingest: tuple[str, ...]
    publish: str
    control: str
    metrics: str

    def ready_line(self) -> str:
        return (
            f"warpsync ready ingest={','.join(self.ingest)} publish={self.publish} control={self.control} "
            f"metrics={self.metrics or 'off'}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"ingest": list(self.ingest), "publish": self.publish, "control": self.control, "metrics": self.metrics}


@dataclass
class _Loop:
    next_tick_s: float = 0.0
    next_flush_s: float = 0.0
    stop_requested: bool = False
    stop_deadline_s: float = 0.0
    started_s: float = field(default_factory=time.time)


def _count_messages(records: list) -> int:
    """Chunk and rejection records in a batch (what `status.workers[].messages` counts)."""
    kinds = [r[0] for r in records]
    return kinds.count(REC_CHUNK) + kinds.count(REC_REJECT)


class Service:
    """``run()`` binds everything, starts the workers, serves until `request_stop()`, then drains and closes.

    `stages` defaults to `build_stages(cfg, registry, ...)`. `run` may be called in a thread (tests); all
    sockets are created, used and closed in that thread.
    """

    def __init__(
        self,
        cfg: Config,
        registry: CollectorRegistry | None = None,
        stages: list[Stage] | None = None,
    ) -> None:
        self.cfg = cfg
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry)
        self.streams = StreamRegistry(cfg.ingest)
        self.stages: list[Stage] = (
            list(stages) if stages is not None else build_stages(cfg, self.registry, self._status_body)
        )
        for st in self.stages:
            bind = getattr(st, "bind_buffers", None)
            if bind is not None:
                bind(self.buffer)
        self.endpoints: Endpoints | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._pool: WorkerPool | None = None
        self._pub: EventPublisher | None = None
        self._control: zmq.Socket | None = None
        self._metrics_http: MetricsServer | None = None
        self._pending_opens: dict[int, _PendingOpen] = {}
        self._pending_closes: list[_PendingClose] = []
        self._token = 0
        self._rejects: dict[tuple[str, str], _RejectSummary] = {}
        self._oldest_arrival: float | None = None
        self._loop = _Loop()
        self._slot: WorkerSlot | None = None  # the worker whose batch is being processed
        self._arena_ok = False
        self._samples_fns: list | None = None

    # ------------------------------------------------------------------------------------------ public
    def buffer(self, stream: str) -> RingBuffer | TextBuffer | None:
        e = self.streams.get(stream)
        return None if e is None else e.buffer

    def subscribe_notices(self) -> int:
        """Subscriptions the event socket has seen so far (grows only): a ready handshake for subscribers."""
        return self._pub.subscribe_notices if self._pub is not None else 0

    def request_stop(self) -> None:
        """Ask `run` to drain and return (thread- and signal-safe)."""
        self._stop.set()

    def run(self, on_ready: Callable[[Endpoints], None] | None = None) -> None:
        ctx = zmq.Context()
        try:
            self._setup(ctx)
            assert self.endpoints is not None
            if on_ready is not None:
                on_ready(self.endpoints)
            self.ready.set()
            self._serve()
        finally:
            self._teardown()
            ctx.term()

    # ------------------------------------------------------------------------------------------ setup
    def _setup(self, ctx: zmq.Context) -> None:
        cfg = self.cfg
        self.metrics.pre_register(ALL_REASONS, cfg.ingest.workers, [s.name for s in self.stages])
        self._control = ctx.socket(zmq.ROUTER)
        self._control.setsockopt(zmq.LINGER, 0)
        self._control.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
        try:
            self._control.bind(cfg.control.endpoint)
        except zmq.ZMQError as exc:
            raise ConfigError(
                f"cannot bind the control socket to {cfg.control.endpoint}: {exc}; "
                "choose another address with --control or [control] endpoint"
            ) from None
        control_ep = self._control.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._pub = EventPublisher(ctx, cfg.publish, self.metrics)
        if cfg.metrics.enabled:
            self._metrics_http = MetricsServer(self.registry, cfg.metrics.host, cfg.metrics.port)
        reserved = [tcp_port(cfg.publish.endpoint), tcp_port(cfg.control.endpoint)]
        if cfg.metrics.enabled:
            reserved.append(cfg.metrics.port or None)
        self._pool = WorkerPool(ctx, cfg.ingest, tuple(p for p in reserved if p))
        self._pool.start()
        self.metrics.worker_pids = self._pool.process_pids
        for slot in self._pool.slots:
            self.metrics.worker_up.labels(str(slot.index)).set(1)
        self.endpoints = Endpoints(
            ingest=tuple(s.endpoint for s in self._pool.slots),
            publish=self._pub.endpoint,
            control=control_ep,
            metrics=self._metrics_http.url if self._metrics_http else "",
        )

    def _teardown(self) -> None:
        if self._pool is not None:
            self._pool.close()
            for slot in self._pool.slots:
                self.metrics.worker_up.labels(str(slot.index)).set(0)
        if self._pub is not None:
            self._pub.close()
        if self._control is not None:
            self._control.close(linger=0)
        if self._metrics_http is not None:
            self._metrics_http.close()

    # ------------------------------------------------------------------------------------------ loop
    def _serve(self) -> None:
        assert self._pool is not None and self._pub is not None and self._control is not None
        pool, pub, control = self._pool, self._pub, self._control
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(pub.sock, zmq.POLLIN)
        registered: dict[int, zmq.Socket] = {}
        loop = self._loop
        while True:
            if self._stop.is_set() and not loop.stop_requested:
                loop.stop_requested = True
                loop.stop_deadline_s = time.monotonic() + DRAIN_TIMEOUT_S
                log.info("stopping: draining ingest workers")
                pool.request_stop()
            if loop.stop_requested and (pool.all_gone() or time.monotonic() > loop.stop_deadline_s):
                if not pool.all_gone():
                    log.warning("ingest workers did not drain within %.0f s", DRAIN_TIMEOUT_S)
                break
            for slot in pool.slots:
                want = slot.blocked is None and (slot.alive or not pool.inline)  # a process's hello comes on up
                sock = slot.inbox
                if want and slot.index not in registered:
                    poller.register(sock, zmq.POLLIN)
                    registered[slot.index] = sock
                elif slot.index in registered and (not want or registered[slot.index] is not sock):
                    poller.unregister(registered.pop(slot.index))
            now = time.time()
            timeout_ms = max(0, int((loop.next_tick_s - now) * 1000)) if loop.next_tick_s > now else 0
            if pool.inline and any(s.worker is not None and s.worker.commands for s in pool.slots):
                timeout_ms = 0  # commands for an inline worker are waiting
            events = dict(poller.poll(min(timeout_ms, int(TICK_S * 1000))))
            if control in events:
                self._control_requests()
            if pub.sock in events:
                pub.drain_subscriptions()
            for slot in pool.slots:
                if slot.blocked is not None:
                    self._resume(slot)
                elif pool.inline:
                    busy = slot.inbox in events or pool.stopping or slot.worker.commands  # type: ignore[union-attr]
                    if slot.alive and not slot.failed and busy:
                        self._drain_inline(slot)
                elif slot.up in events:
                    self._drain_worker(slot)
            now = time.time()
            if now >= loop.next_tick_s:
                self._tick(now)
                loop.next_tick_s = now + TICK_S

    def _tick(self, now: float) -> None:
        assert self._pool is not None
        self._publish(self._call_stages("tick", now))
        self._expire_pending(time.monotonic())
        self._flush_rejects(now)
        for slot in self._pool.dead():
            slot.alive = False
            self.metrics.worker_up.labels(str(slot.index)).set(0)
            self.metrics.worker_restarts.labels(str(slot.index)).inc()
            self._pool.restart(slot)
            if slot.worker is not None and slot.alive:  # inline: up again already
                self._worker_back(slot)
        if now >= self._loop.next_flush_s:
            self._loop.next_flush_s = now + FLUSH_S
            for e in self.streams:
                self.metrics.buffer_fill.labels(e.meta.stream).set(e.buffer.fill_ratio)
            self.metrics.streams_open.set(self.streams.n_open())
            self.metrics.flush()

    # ------------------------------------------------------------------------------------------ stages
    def _call_stages(self, method: str, *args: Any) -> list[Event]:
        out: list[Event] = []
        for st in self.stages:
            try:
                evs = getattr(st, method)(*args)
            except Exception:
                log.exception("stage %s.%s raised; its events are lost", st.name, method)
                self.metrics.stage_errors.labels(st.name).inc()
                continue
            if evs:
                out.extend(evs)
        return out

    def _samples_wanted(self) -> list:
        """(stage, bound samples method) of the stages that take chunks (`wants_samples`), looked up once."""
        fns = self._samples_fns
        if fns is None:
            fns = self._samples_fns = [(st, st.samples) for st in self.stages if getattr(st, "wants_samples", True)]
        return fns

    def _samples_call(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        """The stages' ``samples`` for one chunk (the per-chunk hot path)."""
        out: list[Event] = []
        for st, fn in self._samples_wanted():
            try:
                evs = fn(meta, chunk)
            except Exception:
                log.exception("stage %s.samples raised; its events are lost", st.name)
                self.metrics.stage_errors.labels(st.name).inc()
                continue
            if evs:
                out.extend(evs)
        return out

    def _publish(self, events: list[Event]) -> None:
        if events and self._pub is not None:
            self._pub.publish(events)

    def _status_body(self, stream: str, now_s: float) -> dict[str, Any] | None:
        e = self.streams.get(stream)
        return None if e is None else self.streams.status_body(e, now_s)

    # ------------------------------------------------------------------------------------------ workers
    def _drain_worker(self, slot: WorkerSlot, max_batches: int = 16) -> None:
        for _ in range(max_batches):
            try:
                frames = slot.up.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            records = msgpack.unpackb(frames[0].buffer, raw=False, use_list=True)
            gen = records[0][1] if records and records[0][0] == REC_BATCH else None
            if not self._take_batch(slot, _Held(records, frames, 0, 1, 0.0, gen), _count_messages(records)):
                return

    def _take_batch(self, slot: WorkerSlot, held: _Held, messages: int) -> bool:
        """Process one batch of a worker (forwarded or inline) and observe its latency. False when it was held
        back (``block`` policy, buffer full): read no more from that worker for now."""
        slot.messages += messages
        self._oldest_arrival = None
        self._process(slot, held)
        if self._oldest_arrival is not None:
            self.metrics.latency.observe(time.time() - self._oldest_arrival)
        return slot.blocked is None

    def _drain_inline(self, slot: WorkerSlot, max_batches: int = 16) -> None:
        """Run an inline worker: its pending commands and up to `max_batches` batches of what its PULL socket
        holds, each processed as it comes. While stopping, an empty socket means it is done (`bye`)."""
        w = slot.worker
        assert w is not None
        for _ in range(max_batches):
            try:
                count, records, joined, big = w.collect()
            except Exception:  # a bug, not a peer's doing (those are rejections): restart it, as a dead process
                log.exception("inline ingest worker %d failed", slot.index)
                slot.failed = True
                return
            if len(records) > 1:
                frames = [None, _Joined(joined)]
                frames += [f if type(f) is zmq.Frame else _Joined(f) for f in big]  # a zero-filled copy: not a frame
                if not self._take_batch(slot, _Held(records, frames, 0, 1, 0.0, records[0][1]), count):
                    return
            if count == 0:
                if self._pool is not None and self._pool.stopping and not w.commands:
                    slot.bye = True
                return

    def _resume(self, slot: WorkerSlot) -> None:
        held = slot.blocked
        assert isinstance(held, _Held)
        slot.blocked = None
        self._process(slot, held)
        if slot.blocked is None:
            self.metrics.blocked.inc(time.time() - held.since_s)

    def _process(self, slot: WorkerSlot, held: _Held) -> None:
        self._slot = slot
        self._arena_ok = held.generation == slot.generation
        try:
            self._process_records(slot, held)
        finally:
            if slot.released > slot.released_sent and slot.generation == held.generation:
                if SHARED_RELEASE and slot.release_word is not None:
                    slot.release_word[0] = slot.released  # after every read of those bytes: see PayloadArena
                else:
                    assert self._pool is not None
                    self._pool.send(slot.index, [CMD_RELEASE, slot.released])
                slot.released_sent = slot.released

    def _process_records(self, slot: WorkerSlot, held: _Held) -> None:
        records, frames = held.records, held.frames
        n_rec = len(records)
        i = held.pos
        while i < n_rec:
            rec = records[i]
            kind = rec[0]
            if kind == REC_CHUNK:
                nxt = self._chunk_run(records, i, frames)
                if nxt > i:
                    i = nxt
                    continue
                if not self._chunk(rec, frames):
                    if slot.blocked is None:  # block policy, buffer full: hold the rest of the batch
                        since = held.since_s or time.time()
                        slot.blocked = _Held(records, frames, i, 0, since, held.generation)
                    return
            elif kind == REC_OPEN:
                self._opened(slot, rec)
            elif kind == REC_REJECT:
                self._rejected(slot, rec)
            elif kind == REC_CLOSE:
                self._closed_by_marker(rec)
            elif kind == REC_HELLO:
                self._hello(slot, rec)
            elif kind == REC_BYE:
                slot.bye = True
            i += 1
        if self._pending_closes:
            self._check_closes()

    def _payload(self, rec: list, frames: list) -> Any:
        where, offset, nbytes = rec[11], rec[12], rec[10]
        if where == FRAME_ARENA:
            return self._slot.arena[offset : offset + nbytes]
        buf = frames[where].buffer
        return buf[offset : offset + nbytes] if where == 1 else buf

    def _chunk_run(self, records: list, i: int, frames: list) -> int:
        """Store a run of consecutive small chunks of one stream with one copy (`RingBuffer.write_many`), then
        run the stages on each. Returns the index after the run, or `i` when the per-chunk path must be
        taken (a single chunk, text, a buffer with readers, or a run larger than the buffer)."""
        rec = records[i]
        sid = rec[1]
        if rec[11] != 1:
            return i
        n_rec = len(records)
        j = i + 1
        while j < n_rec and j - i < 4096:
            r = records[j]
            if r[0] != REC_CHUNK or r[1] != sid or r[11] != 1:
                break
            j += 1
        k = j - i
        if k < 2:
            return i
        e = self.streams.get(sid)
        if e is None:
            return i
        buf = e.buffer
        if not isinstance(buf, RingBuffer) or buf.has_readers:
            return i
        run = records[i:j]
        counts = np.fromiter((r[4] for r in run), dtype=np.int64, count=k)
        total = int(counts.sum())
        if total > buf.capacity or k > 1 << 16:
            return i
        meta = e.meta
        start = rec[12]
        nbytes = sum(r[10] for r in run)
        joined = frames[1].buffer
        data = np.frombuffer(joined[start : start + nbytes], dtype=meta.np_dtype).reshape((total, *meta.shape))
        t_dev = np.fromiter((r[3] for r in run), dtype=np.float64, count=k)
        arrival = np.fromiter((r[5] for r in run), dtype=np.float64, count=k)
        buf.write_many(t_dev, arrival, counts, data)
        c = self.metrics.counts(sid)
        gaps = jumps = nonfinite = 0
        for r in run:
            gaps += r[7]
            jumps += r[8]
            nonfinite += r[9]
        last = run[-1]
        e.chunks += k
        e.samples += total
        e.bytes += nbytes
        e.gaps += gaps
        e.time_jumps += jumps
        e.nonfinite += nonfinite
        e.last_seq = max(e.last_seq, last[2])
        e.processed_seq = max(e.processed_seq, last[2])
        e.last_arrival_s = last[5]
        c.messages += k
        c.bytes += nbytes
        c.samples += total
        c.gaps += gaps
        c.time_jumps += jumps
        c.nonfinite += nonfinite
        first_arrival = float(arrival.min())
        if self._oldest_arrival is None or first_arrival < self._oldest_arrival:
            self._oldest_arrival = first_arrival
        if self._samples_wanted():
            off = 0
            for r in run:
                n = r[4]
                evs = self._samples_call(meta, Samples(sid, r[2], r[3], r[5], data[off : off + n], r[6]))
                off += n
                if evs:
                    self._publish(evs)
        return j

    def _chunk(self, rec: list, frames: list) -> bool:
        """Store one chunk and run the stages on it. False: held back (``block`` policy, buffer full)."""
        _, sid, seq, _t, _n, _arrival, _dur, _gap, _jump, _nonfinite, _nbytes, where, _offset, arena_end = rec
        e = self.streams.get(sid)
        if e is None:  # forgotten while in flight: nothing to attach it to
            self.metrics.reject("unknown_stream")
            return True
        if where == FRAME_ARENA:
            if not self._arena_ok:  # written by a worker that has since died: its arena may be reused
                self._count_reject(sid, "worker_restart", "chunk lost: its ingest worker died", time.time())
                e.note_processed(seq)
                return True
            stored = self._chunk_store(e, rec, frames)
            if stored:
                self._slot.released = arena_end
            return stored
        return self._chunk_store(e, rec, frames)

    def _chunk_store(self, e: StreamEntry, rec: list, frames: list) -> bool:
        _, sid, seq, t, n, arrival, dur, gap, jump, nonfinite, nbytes, where, _offset, _end = rec
        meta = e.meta
        buf = e.buffer
        payload = self._payload(rec, frames)
        if isinstance(buf, TextBuffer):
            data: Any = bytes(payload).decode("utf-8")
            buf.write(t, arrival, data, dur)
        else:
            if n > buf.capacity:
                e.rejected += 1
                e.note_processed(seq)
                self._reject_event(
                    sid,
                    "buffer_full",
                    f"a chunk of {n} samples is larger than the whole buffer ({buf.capacity} samples, "
                    f"ingest.buffer_s = {self.cfg.ingest.buffer_s} s); send smaller chunks",
                    time.time(),
                )
                self.metrics.reject("buffer_full")
                return True
            data = np.frombuffer(payload, dtype=meta.np_dtype).reshape((n, *meta.shape))
            dropped_before = buf.dropped_samples
            # a payload in its own frame is kept as that frame (no copy; nothing else writes to it); one in the
            # joined frame or the arena is copied (those are shared with other chunks or reused)
            keep = where >= 2
            if keep:
                data.flags.writeable = False
            stored = buf.write(t, arrival, data, keep=keep)
            if buf.dropped_samples != dropped_before:
                d = buf.dropped_samples - dropped_before
                e.dropped_samples += d
                self.metrics.counts(sid).dropped_samples += d
            if not stored:
                if buf.policy == "block":
                    return False
                e.note_chunk(seq, n, nbytes, arrival, gap)  # drop_newest: received, counted, not staged
                return True
        e.note_chunk(seq, n, nbytes, arrival, gap)
        c = self.metrics.counts(sid)
        c.messages += 1
        c.bytes += nbytes
        c.samples += n
        if gap:
            c.gaps += gap
        if jump:
            c.time_jumps += 1
            e.time_jumps += 1
        if nonfinite:
            c.nonfinite += 1
            e.nonfinite += 1
        if self._oldest_arrival is None or arrival < self._oldest_arrival:
            self._oldest_arrival = arrival
        if self._samples_wanted():
            self._publish(self._samples_call(meta, Samples(sid, seq, t, arrival, data, dur)))
        return True

    def _hello(self, slot: WorkerSlot, rec: list) -> None:
        """A restarted worker is up: give it back its streams, resuming their sequence numbers."""
        assert self._pool is not None
        try:
            self._pool.hello(slot, rec)
        except ConfigError as exc:
            log.error("%s", exc)
            return
        self._worker_back(slot)

    def _worker_back(self, slot: WorkerSlot) -> None:
        """A (re)started worker is up: give it back its streams, resuming their sequence numbers."""
        assert self._pool is not None
        self.metrics.worker_up.labels(str(slot.index)).set(1)
        for e in self.streams:
            if e.worker == slot.index and e.open:
                self._pool.send(slot.index, [CMD_OPEN, meta_to_wire(e.meta), None, e.last_seq])

    def _opened(self, slot: WorkerSlot, rec: list) -> None:
        _, wire, _arrival, token, _resume_seq = rec
        meta = decode_open(wire)
        now = time.time()
        pending = self._pending_opens.pop(token, None) if token is not None else None
        e = self.streams.get(meta.stream)
        if e is not None and (e.worker != slot.index or not meta_equal(e.meta, meta)):
            # opened over PUSH at a second worker, or with other metadata than the service holds
            assert self._pool is not None
            self._pool.send(slot.index, [CMD_FORGET, meta.stream])
            reason = "worker_mismatch" if e.worker != slot.index else "reopen_mismatch"
            msg = (
                f"stream {meta.stream!r} belongs to ingest worker {e.worker} ({self._endpoint_of(e.worker)}); "
                "push all its messages there"
                if reason == "worker_mismatch"
                else f"stream {meta.stream!r} is already known with different metadata; use a new stream id"
            )
            self._count_reject(meta.stream, reason, msg, now)
            if pending is not None:
                self._reply_error(pending.envelope, pending.req_id, reason, msg)
            return
        if e is None:
            if self.streams.full():
                assert self._pool is not None
                self._pool.send(slot.index, [CMD_FORGET, meta.stream])
                msg = f"{self.cfg.ingest.max_streams} streams are open (ingest.max_streams); close some first"
                self._count_reject(meta.stream, "too_many_streams", msg, now)
                if pending is not None:
                    self._reply_error(pending.envelope, pending.req_id, "too_many_streams", msg)
                return
            e = self.streams.add(meta, slot.index, now)
            self.metrics.stream_opened(meta.stream)
            self._publish(self._call_stages("open", meta, now))
        elif not e.open:
            e.open = True
            self._publish(self._call_stages("open", meta, now))
        if pending is not None:
            self._reply(
                pending.envelope, pending.req_id, {"endpoint": self._endpoint_of(e.worker), "resume_seq": e.last_seq}
            )

    def _rejected(self, slot: WorkerSlot, rec: list) -> None:
        _, sid, reason, message, seq, kind, token = rec
        now = time.time()
        if token is not None:
            pending = self._pending_opens.pop(token, None)
            if pending is not None:
                self._reply_error(pending.envelope, pending.req_id, reason, message)
        e = self.streams.get(sid) if sid else None
        if e is not None:
            if seq >= 0:
                e.note_processed(seq)
            if kind == "duplicate":
                e.duplicates += 1
                self.metrics.counts(sid).duplicates += 1
            elif kind == "reordered":
                e.reordered += 1
                self.metrics.counts(sid).reordered += 1
        self._count_reject(sid if e is not None else "", reason, message, now)

    def _count_reject(self, sid: str, reason: str, message: str, now: float) -> None:
        e = self.streams.get(sid) if sid else None
        if e is not None:
            e.rejected += 1
        self.metrics.reject(reason)
        self._reject_event(sid, reason, message, now)

    def _reject_event(self, sid: str, reason: str, message: str, now: float) -> None:
        """Publish ``stream.rejected``: the first of a (stream, reason) at once, then at most one per status
        interval carrying the count since the last one (a flood of bad messages is not a flood of events)."""
        key = (sid, reason)
        s = self._rejects.get(key)
        if s is None:
            if len(self._rejects) > 4 * self.cfg.ingest.max_streams:
                self._rejects.clear()  # bounded: forget summaries rather than grow
            s = self._rejects[key] = _RejectSummary()
        s.count += 1
        s.pending += 1
        s.message = message
        if now - s.last_published_s >= self.cfg.publish.status_interval_s:
            self._publish_reject(sid, reason, s, now)

    def _publish_reject(self, sid: str, reason: str, s: _RejectSummary, now: float) -> None:
        body = {"t_host_s": now, "reason": reason, "message": s.message, "count": s.pending, "total": s.count}
        if sid:
            body["stream"] = sid
        self._publish([Event("stream.rejected", sid, body)])
        s.pending = 0
        s.last_published_s = now

    def _flush_rejects(self, now: float) -> None:
        for (sid, reason), s in self._rejects.items():
            if s.pending and now - s.last_published_s >= self.cfg.publish.status_interval_s:
                self._publish_reject(sid, reason, s, now)

    def _closed_by_marker(self, rec: list) -> None:
        _, sid, last_seq, _arrival = rec
        e = self.streams.get(sid)
        if e is None:
            return
        e.note_processed(last_seq)
        self._close_stream(e, time.time())

    def _close_stream(self, e: StreamEntry, now: float) -> None:
        if not e.open:
            return
        e.open = False
        assert self._pool is not None
        self._pool.send(e.worker, [CMD_CLOSE, e.meta.stream])
        self._publish(self._call_stages("close", e.meta.stream, now))

    def _endpoint_of(self, worker: int) -> str:
        assert self._pool is not None
        return self._pool.slots[worker].endpoint

    # ------------------------------------------------------------------------------------------ control
    def _control_requests(self, max_requests: int = 256) -> None:
        assert self._control is not None
        for _ in range(max_requests):
            try:
                frames = self._control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue  # no identity and payload: nobody to answer
            if b"" in frames[1:]:
                d = frames.index(b"", 1)
                envelope, body = frames[: d + 1], frames[d + 1 :]
            else:
                envelope, body = frames[:1], frames[1:]
            if len(body) != 1:
                self.metrics.reject("frame_count")
                self._reply_error(envelope, None, "frame_count", f"a control request is 1 frame, got {len(body)}")
                continue
            try:
                self._control_request(envelope, body[0])
            except ProtocolError as exc:
                self.metrics.reject(exc.reason)  # counted like any rejected message
                self._reply_error(envelope, peek_request_id(body[0]), exc.reason, exc.detail)
            except Exception as exc:  # a bug: answer, log, keep serving
                log.exception("control request failed")
                self._reply_error(envelope, peek_request_id(body[0]), "internal", f"{type(exc).__name__}: {exc}")

    def _control_request(self, envelope: list, frame: bytes) -> None:
        req = decode_request(frame)
        hdr = req.header
        now = time.time()
        cmd = req.cmd
        assert self._pool is not None
        if cmd == "ping":
            self._reply(envelope, req.id, {"t_host_s": time.time()})
        elif cmd == "status":
            self._reply(
                envelope,
                req.id,
                {
                    "version": __version__,
                    "uptime_s": now - self._loop.started_s,
                    "streams": len(self.streams),
                    "workers": [
                        {
                            "id": s.index,
                            "alive": bool(s.alive),
                            "restarts": s.restarts,
                            "messages": s.messages,
                            "endpoint": s.endpoint,
                        }
                        for s in self._pool.slots
                    ],
                },
            )
        elif cmd == "streams":
            out = []
            for e in self.streams:
                d = e.summary()
                d["rate_measured_hz"] = e.rate_measured_hz(now)
                out.append(d)
            self._reply(envelope, req.id, {"streams": out})
        elif cmd == "open":
            self._control_open(envelope, req.id, hdr)
        elif cmd == "close":
            close, timeout_s = decode_close_request(hdr, self.cfg.control.max_close_timeout_s)
            e = self.streams.get(close.stream)
            if e is None:
                raise ProtocolError("unknown_stream", f"stream {close.stream!r} was never opened")
            pc = _PendingClose(envelope, req.id, close.stream, close.last_seq, time.monotonic() + timeout_s)
            if not self._try_close(pc):
                self._pending_closes.append(pc)
        self.metrics.control_requests.labels(cmd, "true").inc()

    def _control_open(self, envelope: list, req_id: int | None, hdr: dict) -> None:
        assert self._pool is not None
        meta: StreamMeta = decode_open(hdr)
        e = self.streams.get(meta.stream)
        if e is not None:
            if not meta_equal(e.meta, meta):
                raise ProtocolError(
                    "reopen_mismatch",
                    f"stream {meta.stream!r} is already known with different metadata; use a new stream id or "
                    "the same metadata",
                )
            worker = e.worker
        else:
            if self.streams.full():
                raise ProtocolError(
                    "too_many_streams",
                    f"{self.cfg.ingest.max_streams} streams are open (ingest.max_streams); close some first",
                )
            worker = self._pool.owner(meta.stream)
        self._token += 1
        token = self._token
        self._pending_opens[token] = _PendingOpen(
            envelope, req_id, meta.stream, worker, time.monotonic() + self.cfg.control.open_timeout_s
        )
        self._pool.send(worker, [CMD_OPEN, meta_to_wire(meta), token, None])

    def _try_close(self, pc: _PendingClose) -> bool:
        e = self.streams.get(pc.stream)
        if e is None:
            self._reply_error(pc.envelope, pc.req_id, "unknown_stream", f"stream {pc.stream!r} was forgotten")
            return True
        if pc.seq >= 0 and e.processed_seq < pc.seq:
            return False
        self._close_stream(e, time.time())
        self._reply(pc.envelope, pc.req_id, {"received": e.chunks, "rejected": e.rejected, "last_seq": e.last_seq})
        return True

    def _check_closes(self) -> None:
        self._pending_closes = [pc for pc in self._pending_closes if not self._try_close(pc)]

    def _expire_pending(self, mono: float) -> None:
        if self._pending_closes:
            self._check_closes()
            keep = []
            for pc in self._pending_closes:
                if mono >= pc.deadline_s:
                    e = self.streams.get(pc.stream)
                    got = e.processed_seq if e is not None else -1
                    self._reply_error(
                        pc.envelope,
                        pc.req_id,
                        "timeout",
                        f"stream {pc.stream!r}: processed through seq {got}, not yet {pc.seq}; chunks were lost "
                        "or are still queued (retry with a longer timeout_s)",
                    )
                else:
                    keep.append(pc)
            self._pending_closes = keep
        for token, po in list(self._pending_opens.items()):
            if mono >= po.deadline_s:
                del self._pending_opens[token]
                self._reply_error(
                    po.envelope,
                    po.req_id,
                    "timeout",
                    f"ingest worker {po.worker} did not install stream {po.stream!r} in time; retry",
                )

    def _reply(self, envelope: list, req_id: int | None, body: dict) -> None:
        assert self._control is not None
        self._control.send_multipart([*envelope, encode_reply(req_id, body)])

    def _reply_error(self, envelope: list, req_id: int | None, reason: str, message: str) -> None:
        assert self._control is not None
        self.metrics.control_requests.labels("error", "false").inc()
        self._control.send_multipart([*envelope, encode_error_reply(req_id, reason, message)])
