"""`FakeService`: a minimal in-process stand-in for `warpsync serve`, for testing clients without the service.

It speaks the real v1 protocol on real sockets (a ROUTER for control, a PULL for ingest, both bound to
ephemeral ports unless told otherwise) from a background thread, keeps every chunk it receives, and can be
told to misbehave: never read ingest (backpressure), never acknowledge ``close``, or resume streams from a
given seq. It does no buffering, alignment or publishing: it is a protocol peer, nothing more.

    with FakeService(context) as svc:
        with Publisher("s1", modality="sensor", rate_hz=100, control=svc.control_endpoint, context=context) as pub:
            pub.send(np.zeros((10,), "f4"), t_dev_s=0.0)
        assert svc.streams["s1"].received == 1
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import zmq

from .errors import ProtocolError
from .protocol import (
    DEFAULT_LIMITS,
    Limits,
    StreamMeta,
    decode_chunk,
    decode_close,
    decode_close_request,
    decode_ingest,
    decode_open,
    decode_request,
    encode_error_reply,
    encode_reply,
    peek_request_id,
)

log = logging.getLogger(__name__)


@dataclass
class FakeStream:
    meta: StreamMeta
    last_seq: int = -1
    received: int = 0
    rejected: int = 0
    closed_seq: int | None = None
    chunks: list[tuple[int, float, int, bytes | str]] = field(default_factory=list)
    """(seq, t_dev_s, n, payload bytes or text) of every accepted chunk, in arrival order."""
    durations: list[float | None] = field(default_factory=list)
    """``dur`` of every accepted chunk (text streams), in arrival order."""


class FakeService:
    """See the module docstring. ``resume``: stream id -> seq the service pretends to hold (returned as
    ``resume_seq`` by ``open``). ``read_ingest=False``: never read the PULL socket. ``ack_close=False``: never
    acknowledge ``close`` (the client times out). ``rcvhwm``: the PULL socket's receive high-water mark."""

    def __init__(
        self,
        context: zmq.Context,
        *,
        control_endpoint: str = "tcp://127.0.0.1:*",
        ingest_endpoint: str = "tcp://127.0.0.1:*",
        resume: dict[str, int] | None = None,
        read_ingest: bool = True,
        ack_close: bool = True,
        rcvhwm: int = 1000,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._ctx = context
        self._want = (control_endpoint, ingest_endpoint)
        self.resume = dict(resume or {})
        self.read_ingest = read_ingest
        self.ack_close = ack_close
        self.rcvhwm = rcvhwm
        self.limits = limits
        self.streams: dict[str, FakeStream] = {}
        self.rejected: Counter[str] = Counter()
        self.requests: list[str] = []
        self.control_endpoint = ""
        self.ingest_endpoint = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="FakeService", daemon=True)

    def start(self) -> FakeService:
        self._thread.start()
        if not self._ready.wait(10.0) or self._error is not None:
            self._stop.set()
            raise RuntimeError(f"FakeService failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)
        if self._error is not None:
            raise RuntimeError("FakeService thread failed") from self._error

    def __enter__(self) -> FakeService:  # noqa: PYI034  test double, not meant to be subclassed
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> bool:
        """Poll ``predicate(self)`` under the lock until true or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            self._stop.wait(0.005)
        return False

    # ------------------------------------------------------------------------------------------ thread

    def _run(self) -> None:
        ctl = self._ctx.socket(zmq.ROUTER)
        pull = self._ctx.socket(zmq.PULL)
        try:
            for s in (ctl, pull):
                s.setsockopt(zmq.LINGER, 0)
            pull.setsockopt(zmq.RCVHWM, self.rcvhwm)
            ctl.bind(self._want[0])
            pull.bind(self._want[1])
            self.control_endpoint = ctl.getsockopt_string(zmq.LAST_ENDPOINT)
            self.ingest_endpoint = pull.getsockopt_string(zmq.LAST_ENDPOINT)
            poller = zmq.Poller()
            poller.register(ctl, zmq.POLLIN)
            if self.read_ingest:
                poller.register(pull, zmq.POLLIN)
            pending: list[tuple[list[bytes], int | None, str, int, float]] = []
            self._ready.set()
            while not self._stop.is_set():
                ready = dict(poller.poll(10))
                if pull in ready:
                    for _ in range(1000):
                        try:
                            frames = pull.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._ingest(frames)
                if ctl in ready:
                    while True:
                        try:
                            frames = ctl.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._control(ctl, frames, pending)
                self._answer_closes(ctl, pending)
        except BaseException as exc:  # noqa: BLE001  surfaced by start()/stop()
            self._error = exc
            self._ready.set()
        finally:
            ctl.close(linger=0)
            pull.close(linger=0)

    def _ingest(self, frames: list[bytes]) -> None:
        with self._lock:
            try:
                kind, hdr, payload = decode_ingest(frames, self.limits)
                if kind == "open":
                    meta = decode_open(hdr, self.limits)
                    self._open(meta)
                    return
                if kind == "close":
                    close = decode_close(hdr)
                    st = self.streams.get(close.stream)
                    if st is None:
                        raise ProtocolError("unknown_stream", f"stream {close.stream!r} was never opened")
                    st.closed_seq = close.last_seq
                    return
                sid = hdr.get("stream")
                st = self.streams.get(sid) if isinstance(sid, str) else None
                if st is None:
                    raise ProtocolError("unknown_stream", f"stream {sid!r} was never opened")
                try:
                    chunk = decode_chunk(hdr, payload, st.meta, self.limits)
                    if chunk.seq <= st.last_seq:
                        raise ProtocolError("seq_backwards", f"seq {chunk.seq} after {st.last_seq}")
                except ProtocolError:
                    st.rejected += 1
                    seq = hdr.get("seq")
                    if isinstance(seq, int) and seq > st.last_seq:
                        st.last_seq = seq
                    raise
                data = chunk.payload if isinstance(chunk.payload, str) else bytes(chunk.payload)
                st.chunks.append((chunk.seq, chunk.t_dev_s, chunk.n, data))
                st.durations.append(chunk.duration_s)
                st.received += 1
                st.last_seq = chunk.seq
            except ProtocolError as exc:
                self.rejected[exc.reason] += 1

    def _open(self, meta: StreamMeta) -> FakeStream:
        st = self.streams.get(meta.stream)
        if st is None:
            st = self.streams[meta.stream] = FakeStream(meta, last_seq=self.resume.get(meta.stream, -1))
        elif st.meta != meta:
            raise ProtocolError("reopen_mismatch", f"stream {meta.stream!r} is open with different metadata")
        st.closed_seq = None
        return st

    def _control(self, ctl: zmq.Socket, frames: list[bytes], pending: list) -> None:
        # [identity, request] from a DEALER, [identity, b"", request] from a REQ: answer in the same envelope.
        if len(frames) < 2:
            return
        envelope, body = frames[:-1], frames[-1]
        rid = peek_request_id(body)
        with self._lock:
            try:
                req = decode_request(body, self.limits)
                self.requests.append(req.cmd)
                if req.cmd == "ping":
                    reply = encode_reply(rid, {"t_host_s": time.time()})
                elif req.cmd == "status":
                    reply = encode_reply(
                        rid, {"version": "fake", "uptime_s": 0.0, "streams": len(self.streams), "workers": []}
                    )
                elif req.cmd == "streams":
                    reply = encode_reply(
                        rid,
                        {
                            "streams": [
                                {
                                    "stream": s.meta.stream,
                                    "modality": s.meta.modality,
                                    "last_seq": s.last_seq,
                                    "chunks": s.received,
                                }
                                for s in self.streams.values()
                            ]
                        },
                    )
                elif req.cmd == "open":
                    st = self._open(decode_open(req.header, self.limits))
                    reply = encode_reply(rid, {"endpoint": self.ingest_endpoint, "resume_seq": st.last_seq})
                else:  # close
                    close, timeout_s = decode_close_request(req.header)
                    if close.stream not in self.streams:
                        raise ProtocolError("unknown_stream", f"stream {close.stream!r} was never opened")
                    pending.append((envelope, rid, close.stream, close.last_seq, time.monotonic() + timeout_s))
                    return
            except ProtocolError as exc:
                reply = encode_error_reply(rid, exc.reason, exc.detail)
        ctl.send_multipart([*envelope, reply])

    def _answer_closes(self, ctl: zmq.Socket, pending: list) -> None:
        now = time.monotonic()
        with self._lock:
            for item in list(pending):
                envelope, rid, sid, seq, deadline = item
                st = self.streams[sid]
                if self.ack_close and st.last_seq >= seq:
                    reply = encode_reply(
                        rid, {"received": st.received, "rejected": st.rejected, "last_seq": st.last_seq}
                    )
                elif now >= deadline:
                    reply = encode_error_reply(rid, "timeout", f"stream {sid!r} not processed through seq {seq}")
                else:
                    continue
                pending.remove(item)
                ctl.send_multipart([*envelope, reply])
