"""An ingest worker: PULL from devices, decode and validate, forward batches to the service process.

A worker runs as its own process (``ingest.worker_mode = "process"``: `worker_main` runs `Worker.run`,
forwarding batches over ipc, large payloads through a shared-memory arena) or inside the service process
(``"inline"``: the service's event loop calls `Worker.collect` itself when the PULL socket has messages, so a
large payload reaches the ring buffer as the very frame libzmq received, never copied, and no batch is
serialised).

The worker binds its PULL address (``ZMQ_MAXMSGSIZE`` and ``RCVHWM`` set), decodes each message with
`warpsync_client.protocol` under explicit limits, validates it against its `StreamTable`, and forwards what
it saw — accepted chunks (their payload frames zero-copy), opens, closes and rejections — to the service
process as one multipart message per batch on an ipc PUSH socket. When the service process stops reading
(a ``block`` buffer is full), that PUSH reaches its high-water mark, the worker blocks, stops reading its
PULL, and the devices' PUSH sockets block in turn: lossless backpressure all the way back.

Nothing a peer sends can raise out of the loop: every message is decoded inside one ``try`` that turns any
failure into a counted rejection. The worker holds no Prometheus state: the service process derives every
metric from the forwarded records, so one scrape endpoint covers all workers.

Messages worker -> service (``up``): ``[msgpack(records), payload frames...]``; a record is a list whose
first item is its kind (`REC_*`). Messages service -> worker (``down``): one msgpack list, `CMD_*`.
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import signal
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from warpsync_client.protocol import Limits, decode_close, decode_ingest, decode_open

from ..errors import ProtocolError
from ..tuning import tune_process
from .finite import copy_check_finite
from .streams import SeqBackwards, StreamTable, has_nonfinite, meta_to_wire

log = logging.getLogger(__name__)

# records, worker -> service
REC_HELLO = 0  # [0, worker, endpoint, pid, error_or_None]
REC_CHUNK = 1  # [1, stream, seq, t_dev_s, n, arrival_s, duration_s|None, gap, time_jump, nonfinite, nbytes, frame, offset, arena_end]
REC_OPEN = 2  # [2, wire_meta, arrival_s, token|None, resume_seq] (token: a control open being answered)
REC_CLOSE = 3  # [3, stream, last_seq, arrival_s]
REC_REJECT = 4  # [4, stream, reason, message, seq, kind, token|None]
REC_BYE = 5  # [5, worker]
REC_BATCH = 6  # [6, generation]: first record of every batch (which worker incarnation wrote the arena)
#: payloads smaller than this are copied into one joined frame per batch (one frame for the service to
#: receive instead of hundreds); larger ones travel as their own frame, zero-copy
COALESCE_BYTES = 64 * 1024
BATCH_MAX_BYTES = 16 * 1024 * 1024
# commands, service -> worker
CMD_OPEN = 0  # [0, wire_meta, token, resume_seq]
CMD_CLOSE = 1  # [1, stream]
CMD_FORGET = 2  # [2, stream]
CMD_STOP = 3  # [3]
CMD_RELEASE = 4  # [4, arena_end]: the service is done with the arena up to this byte count
_unpackb = msgpack.unpackb


FRAME_ARENA = -1  # a chunk record's frame index when its payload lies in the shared-memory arena


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (picklable for the spawn start method)."""

    index: int
    endpoint: str
    up: str
    down: str
    rcvhwm: int
    max_message_bytes: int
    max_streams: int
    nan_policy: str
    max_time_jump_s: float
    batch_max_messages: int
    up_hwm: int = 64
    arena: str = ""
    """Name of the shared-memory arena for large payloads ('' = none)."""
    arena_bytes: int = 0
    generation: int = 0

    def limits(self) -> Limits:
        return Limits(max_payload_bytes=self.max_message_bytes)


class Worker:
    """The loop of one worker. `run` returns when told to stop (after draining its PULL socket)."""

    def __init__(self, spec: WorkerSpec, ctx: zmq.Context, inline: bool = False) -> None:
        """`inline`: the service's event loop runs this worker itself (`collect`), handing it commands through
        `commands`; no ``up``/``down`` sockets and no arena."""
        self.spec = spec
        self.ctx = ctx
        self.limits = spec.limits()
        self.table = StreamTable(self.limits, spec.max_streams, spec.nan_policy, spec.max_time_jump_s)  # type: ignore[arg-type]
        self.inline = inline
        self.commands: collections.deque[list] = collections.deque()
        """Commands from the service (inline only), as unpacked lists."""
        self.pull = ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.setsockopt(zmq.RCVHWM, spec.rcvhwm)
        self.pull.setsockopt(zmq.MAXMSGSIZE, spec.max_message_bytes + self.limits.max_header_bytes)
        self.up: zmq.Socket | None = None
        self.down: zmq.Socket | None = None
        if not inline:
            self.up = ctx.socket(zmq.PUSH)
            self.down = ctx.socket(zmq.PULL)
            for s in (self.up, self.down):
                s.setsockopt(zmq.LINGER, 0)
            self.up.setsockopt(zmq.SNDHWM, spec.up_hwm)
            self.up.setsockopt(zmq.LINGER, 2000)  # the service process is local; let the last batch out
            self.up.connect(spec.up)
            self.down.connect(spec.down)
        self.bound = ""
        self._stop_seen = False
        self.arena: PayloadArena | None = (
            PayloadArena.attach(spec.arena, spec.arena_bytes) if spec.arena and not inline else None
        )

    def bind(self) -> str:
        """Bind the PULL socket; report the outcome to the service process either way (inline: the caller
        gets the address or the `zmq.ZMQError`)."""
        try:
            self.pull.bind(self.spec.endpoint)
        except zmq.ZMQError as exc:
            if self.up is not None:
                self.up.send(msgpack.packb([[REC_HELLO, self.spec.index, self.spec.endpoint, os.getpid(), str(exc)]]))
            raise
        self.bound = self.pull.getsockopt(zmq.LAST_ENDPOINT).decode()
        if self.up is not None:
            self.up.send(msgpack.packb([[REC_HELLO, self.spec.index, self.bound, os.getpid(), None]]))
        return self.bound

    def close(self) -> None:
        for s in (self.pull, self.down, self.up):
            if s is not None:
                s.close()
        if self.arena is not None:
            self.arena.close()

    # ------------------------------------------------------------------------------------------ loop
    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.down, zmq.POLLIN)
        stopping = False
        while True:
            events = dict(poller.poll(100))
            if self.down in events:
                stopping = self._commands() or stopping
            stopping = stopping or self._stop_seen
            if self.pull in events or stopping:
                n = self._batch()
                if stopping and n == 0:
                    break
        self.up.send(msgpack.packb([[REC_BYE, self.spec.index]]))

    def _commands(self) -> bool:
        records: list[list[Any]] = []
        stop = self._commands_into(records)
        if records:
            self.up.send(msgpack.packb([[REC_BATCH, self.spec.generation], *records]))
        return stop

    def _commands_into(self, records: list) -> bool:
        stop = False
        while True:
            if self.inline:
                if not self.commands:
                    break
                cmd = self.commands.popleft()
            else:
                assert self.down is not None
                try:
                    raw = self.down.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                cmd = msgpack.unpackb(raw, raw=False)  # from the service process itself: trusted
            kind = cmd[0]
            if kind == CMD_OPEN:
                self._open(cmd[1], time.time(), cmd[2], cmd[3], records)
            elif kind == CMD_CLOSE:
                if cmd[1] in self.table:
                    self.table.close(cmd[1])
            elif kind == CMD_FORGET:
                self.table.forget(cmd[1])
            elif kind == CMD_STOP:
                stop = True
            elif kind == CMD_RELEASE:  # noqa: SIM102  one dispatch arm per command kind
                if self.arena is not None:
                    self.arena.release(cmd[1])
        if stop:
            self._stop_seen = True
        return stop

    def _open(self, hdr: dict, arrival: float, token: Any, resume_seq: int | None, records: list) -> None:
        try:
            meta = decode_open(hdr, self.limits)
            st = self.table.open(meta, resume_seq)
        except ProtocolError as exc:
            sid = hdr.get("stream") if isinstance(hdr.get("stream"), str) else ""
            records.append([REC_REJECT, sid, exc.reason, exc.detail, -1, "", token])
            return
        records.append([REC_OPEN, meta_to_wire(meta), arrival, token, st.last_seq])

    def _batch(self) -> int:
        """Receive up to `batch_max_messages` waiting messages (and about `BATCH_MAX_BYTES`), forward them as
        one message ``[records, joined small payloads, large payload frames...]``; returns how many (`collect`)."""
        count, records, joined, big = self.collect()
        if len(records) > 1:
            assert self.up is not None
            self.up.send_multipart([msgpack.packb(records, use_bin_type=True), joined, *big], copy=False)
        return count

    def collect(self) -> tuple[int, list, Any, list]:
        """Take pending commands, then receive up to `batch_max_messages` waiting messages (and about
        `BATCH_MAX_BYTES`): ``(messages received, records, joined small payloads, large payload frames)``.
        The first record is ``[REC_BATCH, generation]``.

        A chunk record's last two fields locate its payload: the joined payloads (frame 1 of a forwarded
        batch) at an offset, or its own frame (index >= 2: ``big[index - 2]``) at offset 0, or the arena
        (`FRAME_ARENA`).

        Small chunks are accepted provisionally and their NaN/Inf check runs once over the run
        (`_Batch.flush`); see `StreamTable.begin_segment`."""
        b = _Batch(self, [[REC_BATCH, self.spec.generation]])
        waiting = bool(self.commands) if self.inline else self.arena is not None and self.down.poll(0)  # type: ignore[union-attr]
        if waiting:
            self._commands_into(b.records)  # arena releases first: they free space for this batch
            b._new_segment()  # the first segment starts after their records: a rollback must not undo them
        pull = self.pull
        count = 0
        self.table.begin_segment()
        try:
            for _ in range(self.spec.batch_max_messages):
                try:
                    first = pull.recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                frames = [first]
                f = first
                extra_parts = False
                while f.more:  # Frame.more: no getsockopt(RCVMORE) round trip per part
                    f = pull.recv(copy=False)
                    if len(frames) < 3:  # a message with more parts is rejected anyway: do not keep them
                        frames.append(f)
                    else:
                        frames[2] = f
                        extra_parts = True
                count += 1
                b.message(frames, extra_parts, time.time(), True)
                if b.total >= BATCH_MAX_BYTES:
                    break
            b.flush()
        finally:
            self.table.end_segment()
        joined = b.joined if b.joined is not None else (b"".join(b.small) if b.small else b"")
        return count, b.records, joined, b.big


class _Batch:
    """The batch being built by `Worker._batch`: records, payloads, and the open segment of provisionally
    accepted small chunks whose NaN/Inf check is still due."""

    __slots__ = (
        "arena",
        "big",
        "joined",
        "limits",
        "max_header_bytes",
        "records",
        "seg_deferred",
        "seg_dtype",
        "seg_mark",
        "seg_msgs",
        "seg_pure",
        "small",
        "small_bytes",
        "table",
        "total",
        "w",
    )

    def __init__(self, worker: Worker, records: list) -> None:
        self.w = worker
        self.table = worker.table
        self.limits = worker.limits
        self.max_header_bytes = worker.limits.max_header_bytes
        self.arena = worker.arena
        self.records = records
        self.small: list[Any] = []
        self.small_bytes = 0
        self.big: list[Any] = []
        self.total = 0
        self.joined: bytes | None = None
        self._new_segment()

    def _new_segment(self) -> None:
        self.seg_msgs: list[tuple] = []
        self.seg_deferred: list[tuple] = []
        self.seg_dtype: Any = None
        self.seg_pure = True
        self.seg_mark = (len(self.records), len(self.small), self.small_bytes, len(self.big), self.total)

    def flush(self) -> None:
        """Check the segment's provisionally accepted chunks for NaN/Inf. All finite (the usual case): they
        stand. Otherwise undo the segment and handle its messages again one at a time, with the exact
        per-chunk check and `nan_policy`."""
        deferred = self.seg_deferred
        if deferred:
            bad = False
            n_rec, n_small, small_bytes, n_big, total = self.seg_mark
            if self.seg_pure and self.seg_dtype is not None and n_small == 0:
                # every small payload of the batch is a float chunk of one dtype: one check over the
                # joined frame that is sent anyway
                self.joined = b"".join(self.small)
                with np.errstate(over="ignore", invalid="ignore"):  # once per batch: cheap
                    bad = has_nonfinite(np.frombuffer(self.joined, dtype=self.seg_dtype))
            else:
                for dt, data in deferred:
                    if has_nonfinite(np.frombuffer(data, dtype=dt)):
                        bad = True
                        break
            if bad:
                self.joined = None
                self.table.rollback()
                msgs = self.seg_msgs
                del self.records[n_rec:]
                del self.small[n_small:]
                del self.big[n_big:]
                self.small_bytes, self.total = small_bytes, total
                self.table.end_segment()
                self._new_segment()
                for frames, extra, arrival in msgs:
                    self.message(frames, extra, arrival, False)
                self.table.begin_segment()
        self.table.end_segment()
        self.table.begin_segment()
        self._new_segment()

    def message(self, frames: list, extra_parts: bool, arrival: float, defer: bool) -> None:
        """Decode, validate and record one message. With `defer`, a small chunk joins the open segment."""
        if defer and len(frames) == 2 and not extra_parts and self._plain_chunk(frames, arrival):
            return
        records = self.records
        sid = ""
        hdr: Any = None
        solo = False
        if defer:
            self.seg_msgs.append((frames, extra_parts, arrival))
        try:
            if extra_parts:
                raise ProtocolError("frame_count", "ingest messages have 1 or 2 frames, got more than 3")
            kind, hdr, payload = decode_ingest([f.buffer for f in frames], self.limits)
            raw_sid = hdr.get("stream")
            sid = raw_sid if isinstance(raw_sid, str) and len(raw_sid) <= 128 else ""
            if kind == "chunk":
                nbytes = payload.nbytes
                if defer and nbytes < COALESCE_BYTES:
                    st, _, seq, t, n, data, dur, gap, jump = self.table.chunk_unchecked(hdr, payload)
                    self._defer_check(st.np_dtype, data)
                    self._small(sid, seq, t, n, arrival, dur, gap, jump, False, payload)
                    return
                if defer:  # not part of a segment: settle the segment first, then this message alone
                    self.seg_msgs.pop()
                    self.flush()
                    defer = False
                    solo = True
                if nbytes >= COALESCE_BYTES and self.arena is not None and self._large(hdr, payload, arrival):
                    return
                acc = self.table.chunk(hdr, payload)
                out = memoryview(acc.payload) if acc.modified else payload
                if out.nbytes < COALESCE_BYTES:
                    self._small(
                        acc.stream,
                        acc.seq,
                        acc.t_dev_s,
                        acc.n,
                        arrival,
                        acc.duration_s,
                        acc.gap,
                        acc.time_jump,
                        acc.nonfinite,
                        out,
                    )
                    self.seg_pure = False
                    return
                where = 2 + len(self.big)  # no arena or it is full: its own frame, zero-copy
                self.big.append(frames[1] if out is payload else out)
                self.total += out.nbytes
                records.append(
                    [
                        REC_CHUNK,
                        acc.stream,
                        acc.seq,
                        acc.t_dev_s,
                        acc.n,
                        arrival,
                        acc.duration_s,
                        acc.gap,
                        acc.time_jump,
                        acc.nonfinite,
                        out.nbytes,
                        where,
                        0,
                        0,
                    ]
                )
                return
            if defer:
                self.seg_msgs.pop()
                self.flush()
                solo = True
            if kind == "open":
                self.w._open(hdr, arrival, None, None, records)
            else:
                cl = decode_close(hdr)
                self.table.close(cl.stream)
                records.append([REC_CLOSE, cl.stream, cl.last_seq, arrival])
        except SeqBackwards as exc:
            records.append([REC_REJECT, sid, exc.reason, exc.detail, _seq_of(hdr), exc.kind, None])
        except ProtocolError as exc:
            records.append([REC_REJECT, sid, exc.reason, exc.detail, _seq_of(hdr) if sid else -1, "", None])
        except Exception as exc:  # a bug, not the peer's fault: count it, keep the worker alive
            log.exception("worker %d: unexpected error on a message", self.w.spec.index)
            records.append([REC_REJECT, sid, "internal", f"{type(exc).__name__}: {exc}", -1, "", None])
        if solo:  # the next segment starts after this message's records
            self._new_segment()

    def _plain_chunk(self, frames: list, arrival: float) -> bool:
        """The common message, handled in one function: a small array chunk of an open stream, well formed
        and in order (`StreamTable.chunk_fast`), joins the open segment. False, with nothing changed, for
        anything else (the general path then gives the exact outcome). The header is decoded from a bytes
        copy with msgpack's own limits (every length at most the header's size, itself bounded here): exactly
        the six fields of a plain chunk header are accepted, so nothing the protocol's stricter limits would
        refuse gets through."""
        payload = memoryview(frames[1])
        nbytes = payload.nbytes
        if nbytes >= COALESCE_BYTES:  # a large chunk: the general path, without unpacking the header twice
            return False
        hb = frames[0].bytes
        if len(hb) > self.max_header_bytes:
            return False
        try:
            hdr = _unpackb(hb)
        except Exception:  # noqa: BLE001  any malformed header: the general path reports it
            return False
        if type(hdr) is not dict or hdr.get("type") != "chunk":
            return False
        v = hdr.get("v")
        if type(v) is not int or v != 1:
            return False
        acc = self.table.chunk_fast(hdr, nbytes)
        if acc is None:
            return False
        st, sid, seq, t, n, gap, jump = acc
        self.seg_msgs.append((frames, False, arrival))
        self._defer_check(st.np_dtype, payload)
        self._small(sid, seq, t, n, arrival, None, gap, jump, False, payload)
        return True

    def _defer_check(self, dt: Any, data: Any) -> None:
        """A provisionally accepted small chunk's NaN/Inf check joins the open segment's (`flush`)."""
        if dt is not None and dt.kind == "f":
            self.seg_deferred.append((dt, data))
            if self.seg_dtype is None:
                self.seg_dtype = dt
            elif self.seg_dtype != dt:
                self.seg_pure = False
        else:
            self.seg_pure = False

    def _small(self, sid, seq, t, n, arrival, dur, gap, jump, nonfinite, data) -> None:
        nbytes = data.nbytes
        self.joined = None
        self.records.append(
            [REC_CHUNK, sid, seq, t, n, arrival, dur, gap, jump, nonfinite, nbytes, 1, self.small_bytes, 0]
        )
        self.small.append(data)
        self.small_bytes += nbytes
        self.total += nbytes

    def _large(self, hdr: Any, payload: Any, arrival: float) -> bool:
        """A large chunk into the arena: one pass copies it and checks it for NaN/Inf (`copy_check_finite`).
        False when the arena has no room (the caller sends it as a frame). Raises `ProtocolError`."""
        st, sid, seq, t, n, data, dur, gap, jump = self.table.validate(hdr, payload)
        dt = st.np_dtype
        if dt is None:
            return False
        arena = self.arena
        nbytes = data.nbytes
        spot = arena.reserve(nbytes)
        if spot is None:
            return False
        offset, end, before = spot
        dst = arena.buf[offset : offset + nbytes]
        nonfinite = copy_check_finite(data, dst, dt.str)
        if nonfinite:
            policy = self.table.nan_policy
            if policy == "reject":
                arena.cancel(before)
                raise self.table.non_finite_error(sid, seq)
            if policy == "zero":
                arr = dst.view(dt)
                arr[~np.isfinite(arr)] = 0
        self.table.commit(st, seq, t, n)
        self.total += nbytes
        self.records.append(
            [REC_CHUNK, sid, seq, t, n, arrival, dur, gap, jump, nonfinite, nbytes, FRAME_ARENA, offset, end]
        )
        return True


ARENA_HEADER = 64
"""Bytes before an arena's payload ring: word 0 is the byte count the service is done with (int64)."""
SHARED_RELEASE = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
"""The service hands arena space back by writing the header word, not with a command. Safe where stores are
not reordered with earlier loads (x86's total store order): once the worker sees the count, the service has
finished reading those bytes. Elsewhere (ARM and other weakly ordered machines) it sends ``CMD_RELEASE``."""


class PayloadArena:
    """A byte ring in shared memory, written by one worker and read by the service process.

    The worker allocates at a monotonically growing byte count (`put`: one copy); the service reads the
    payload where the record says and, once it has stored it, hands back the count it is done with: it
    writes it to the header word (`SHARED_RELEASE`; a store per batch, where a command costs a wake-up of
    the worker, measured at about 110 µs per send on a busy 2-core host) or sends ``CMD_RELEASE``. A
    payload that does not fit in the free space is not waited for: it travels as a socket frame instead, so
    a slow service never blocks a worker here (backpressure stays on the sockets).
    """

    def __init__(self, shm: Any, size: int) -> None:
        self.shm = shm
        self.size = int(size)
        self.buf, self.shared_released = self.views(shm.buf, self.size)
        self.head = 0
        self.released = 0

    @staticmethod
    def shm_bytes(size: int) -> int:
        """Bytes of shared memory an arena of `size` payload bytes needs."""
        return ARENA_HEADER + int(size)

    @staticmethod
    def views(buf: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The arena's layout over its shared memory `buf`, as the worker and the service both see it:
        ``(payload bytes, released word)``."""
        return (
            np.frombuffer(buf, dtype=np.uint8, count=int(size), offset=ARENA_HEADER),
            np.frombuffer(buf, dtype=np.int64, count=1),
        )

    @classmethod
    def attach(cls, name: str, size: int) -> PayloadArena:
        from multiprocessing import shared_memory

        # The service process created it and unlinks it at exit. Attaching registers the name with the
        # resource tracker this spawned process shares with the service (a set: no second entry), so the
        # service's unlink leaves nothing behind and a worker's exit unlinks nothing.
        shm = shared_memory.SharedMemory(name=name)
        return cls(shm, size)

    def reserve(self, n: int) -> tuple[int, int, int] | None:
        """Room for `n` bytes: ``(offset, end, head_before)``, or ``None`` when it does not fit now. The
        caller writes ``buf[offset:offset + n]``; `cancel(head_before)` gives the room back (nothing may
        have been reserved since)."""
        if n > self.size // 4:
            return None
        pos = self.head % self.size
        pad = self.size - pos if pos + n > self.size else 0
        if self.head + pad + n - self.released > self.size:
            self.release(int(self.shared_released[0]))  # what the service has handed back since
            if self.head + pad + n - self.released > self.size:
                return None
        before = self.head
        self.head += pad + n
        return (0 if pad else pos), self.head, before

    def cancel(self, head_before: int) -> None:
        self.head = head_before

    def put(self, payload: Any) -> tuple[int, int] | None:
        """Copy `payload` in; ``(offset, end)`` or ``None`` when it does not fit now."""
        n = memoryview(payload).nbytes
        spot = self.reserve(n)
        if spot is None:
            return None
        offset, end, _ = spot
        self.buf[offset : offset + n] = np.frombuffer(payload, dtype=np.uint8)
        return offset, end

    def release(self, end: int) -> None:
        if end > self.released:
            self.released = min(end, self.head)

    def close(self) -> None:
        del self.buf, self.shared_released
        self.shm.close()


def _seq_of(hdr: Any) -> int:
    try:
        seq = hdr.get("seq")
    except AttributeError:
        return -1
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**63 else -1


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process (multiprocessing target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the service stops us
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s worker %(name)s: %(message)s")
    ctx = zmq.Context(1)
    worker = Worker(spec, ctx)
    try:
        try:
            worker.bind()
        except zmq.ZMQError:
            return
        tune_process()  # start-up is done: see warpsync.tuning
        worker.run()
    finally:
        worker.close()
        ctx.term()
