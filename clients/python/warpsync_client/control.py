"""`Control`: a client of the service's control socket (ROUTER): ``ping``, ``status``, ``streams``,
``open``, ``close``. The request/reply format is in PROTOCOL.md, "Control".

The client uses a DEALER socket, so a request that timed out never wedges the socket (as a REQ would): a
late reply to it is recognised by its ``id`` and dropped. One `Control` is not thread-safe (ZeroMQ sockets are
not); use one per thread.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import zmq

from .errors import ProtocolError, ServiceTimeout
from .protocol import (
    DEFAULT_LIMITS,
    Limits,
    StreamMeta,
    decode_reply,
    encode_close_request,
    encode_open_request,
    encode_request,
)

log = logging.getLogger(__name__)

RESEND_S = 0.5
"""A control request with no reply yet is sent again after this many seconds (see `Control._roundtrip`)."""

DEFAULT_CONTROL_ENDPOINT = "tcp://127.0.0.1:5557"


@dataclass(frozen=True)
class Pong:
    """Answer to ``ping``: the service's host time (``time.time()``, s) and the measured round trip, s."""

    t_host_s: float
    rtt_s: float


@dataclass(frozen=True)
class Opened:
    """Answer to ``open``: where to PUSH this stream's chunks, and the last seq the service holds (-1: new)."""

    endpoint: str
    resume_seq: int


@dataclass(frozen=True)
class CloseAck:
    """Answer to ``close``: chunks of the stream the service accepted and rejected, counted since it first saw
    the stream id (across reopenings)."""

    received: int
    rejected: int
    last_seq: int | None = None
    """The last seq the service holds for the stream (None if the service did not say)."""


_WILDCARD_HOSTS = {"*", "0.0.0.0", "::", "[::]"}
_TCP_RE = re.compile(r"^tcp://(?P<host>\[[^\]]*\]|[^:/]+):(?P<port>[0-9*]+)$")


def resolve_endpoint(endpoint: str, control_endpoint: str) -> str:
    """An endpoint the service reported, made connectable: a wildcard bind host (``*``, ``0.0.0.0``, ``::``)
    is replaced by the host of the control endpoint the client reached the service at."""
    m = _TCP_RE.match(endpoint)
    if not m or m["host"] not in _WILDCARD_HOSTS:
        return endpoint
    c = _TCP_RE.match(control_endpoint)
    host = c["host"] if c and c["host"] not in _WILDCARD_HOSTS else "127.0.0.1"
    return f"tcp://{host}:{m['port']}"


def _int_field(body: dict[str, Any], name: str, cmd: str) -> int:
    val = body.get(name)
    if isinstance(val, bool) or not isinstance(val, int):
        raise ProtocolError(
            "missing_field", f"the service's {cmd!r} reply has no integer {name!r}: is it a warpsync v1 service?"
        )
    return val


class Control:
    """Client of the control socket at ``endpoint``.

    ``context``: the process's `zmq.Context` (one per process); when None, the client owns one and terminates it
    in `disconnect`. ``timeout_s``: how long each request waits for its reply before `ServiceTimeout`.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_CONTROL_ENDPOINT,
        *,
        context: zmq.Context | None = None,
        timeout_s: float = 5.0,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self.endpoint = endpoint
        self.timeout_s = float(timeout_s)
        self.limits = limits
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._ids = itertools.count(1)
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            self._sock.connect(endpoint)
        except zmq.ZMQError as exc:
            self.disconnect()
            raise ValueError(f"cannot connect to control endpoint {endpoint!r}: {exc}") from None

    # ------------------------------------------------------------------------------------------ requests

    def request(self, cmd: str, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and return the reply map. A failure reply raises `ProtocolError` with the
        service's reason (`ServiceTimeout` for reason ``timeout``); no reply in time raises `ServiceTimeout`."""
        if self._sock.closed:
            raise ProtocolError("bad_field", "this Control client was disconnected; create a new one")
        wait_s = self.timeout_s if timeout_s is None else float(timeout_s)
        rid = next(self._ids)
        frame = encode_request(cmd, rid, **fields)
        return self._roundtrip(cmd, rid, frame, wait_s)

    def _roundtrip(self, cmd: str, rid: int, frame: bytes, wait_s: float) -> dict[str, Any]:
        # A request sent while the service is restarting can be queued on the dead connection and lost, so it
        # is sent again every RESEND_S until a reply comes or the deadline passes. Every control command is
        # idempotent, and replies to earlier copies carry the same id (extra ones are dropped as late).
        now = time.monotonic()
        deadline = now + wait_s
        next_send = now
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                raise ServiceTimeout(self._no_reply(cmd, wait_s))
            if now >= next_send:
                try:
                    self._sock.send(frame, zmq.NOBLOCK)
                except zmq.Again:
                    pass  # nothing connected right now: try again at the next resend
                next_send = now + RESEND_S
            if not self._sock.poll(max(1, math.ceil(min(remaining, next_send - now) * 1000)), zmq.POLLIN):
                continue
            frames = self._sock.recv_multipart()
            reply = decode_reply(frames[-1], self.limits)
            if reply.id is not None and reply.id != rid:
                log.debug("dropping a late control reply (id %s, waiting for %s)", reply.id, rid)
                continue
            if reply.ok:
                return reply.body
            if reply.reason == "timeout":
                raise ServiceTimeout(f"the service timed out on {cmd!r}: {reply.message}")
            raise ProtocolError(reply.reason, f"the service refused {cmd!r}: {reply.message}")

    def _no_reply(self, cmd: str, wait_s: float) -> str:
        return (
            f"no reply to {cmd!r} from the control socket {self.endpoint} within {wait_s:g} s: is `warpsync serve` "
            f"running with [control] endpoint = {self.endpoint!r}, and reachable from here?"
        )

    def ping(self, timeout_s: float | None = None) -> Pong:
        t0 = time.monotonic()
        body = self.request("ping", timeout_s)
        rtt = time.monotonic() - t0
        t = body.get("t_host_s")
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ProtocolError("missing_field", "the service's 'ping' reply has no number 't_host_s'")
        return Pong(float(t), rtt)

    def status(self, timeout_s: float | None = None) -> dict[str, Any]:
        """``{version, uptime_s, streams, workers: [{id, alive, restarts, messages}]}`` (plus ``v, ok, id``)."""
        return self.request("status", timeout_s)

    def streams(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """One map per stream the service knows (fields in PROTOCOL.md, "streams")."""
        body = self.request("streams", timeout_s)
        streams = body.get("streams")
        if not isinstance(streams, list):
            raise ProtocolError("missing_field", "the service's 'streams' reply has no list 'streams'")
        return streams

    def open(self, meta: StreamMeta, timeout_s: float | None = None) -> Opened:
        """Register a stream; returns the ingest endpoint to PUSH its chunks to and the seq to resume from."""
        wait_s = self.timeout_s if timeout_s is None else float(timeout_s)
        rid = next(self._ids)
        body = self._roundtrip("open", rid, encode_open_request(meta, rid), wait_s)
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ProtocolError("missing_field", "the service's 'open' reply has no string 'endpoint'")
        return Opened(resolve_endpoint(endpoint, self.endpoint), _int_field(body, "resume_seq", "open"))

    def close(self, stream: str, seq: int, timeout_s: float = 5.0) -> CloseAck:
        """Wait (up to ``timeout_s`` on the service, plus this client's timeout for the network) until the
        service has processed every chunk of ``stream`` through ``seq``."""
        rid = next(self._ids)
        frame = encode_close_request(stream, seq, timeout_s, rid)
        body = self._roundtrip("close", rid, frame, float(timeout_s) + self.timeout_s)
        last = body.get("last_seq")
        return CloseAck(
            _int_field(body, "received", "close"),
            _int_field(body, "rejected", "close"),
            last if isinstance(last, int) and not isinstance(last, bool) else None,
        )

    # ------------------------------------------------------------------------------------------ lifetime

    def disconnect(self) -> None:
        """Close the socket (linger 0) and, if this client created it, terminate its context. Idempotent."""
        sock = getattr(self, "_sock", None)
        if sock is not None and not sock.closed:
            sock.close(linger=0)
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> Control:  # noqa: PYI034  Control is not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
