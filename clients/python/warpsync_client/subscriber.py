"""`Subscriber` and `AsyncSubscriber`: receive the service's published events.

    with Subscriber("tcp://127.0.0.1:5556", topics=["stream.", "sync.offset/cam1"]) as sub:
        for ev in sub:                   # blocks; or sub.recv(timeout_s=1.0) -> Event | None
            print(ev.event, ev.stream, ev.header)

Topics are prefixes of ``event/stream`` (ZeroMQ SUB prefix matching): ``""`` is everything, ``"stream."`` every
stream event, ``"sync.offset/cam1"`` one event of one stream.

An event that cannot be decoded (wrong frame count, not msgpack, wrong version, a payload that does not match
its declared dtype and shape) is skipped, logged at WARNING and counted in `skipped` (the last failure is kept
in `last_error`): iteration never raises mid-stream because one message was bad.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

from .errors import ProtocolError
from .protocol import DEFAULT_LIMITS, Limits, decode_event, event_payload

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_ENDPOINT = "tcp://127.0.0.1:5556"


@dataclass(frozen=True)
class Event:
    """One received event. ``header`` is the whole decoded header map (``v``, ``event``, the event's fields);
    ``payload`` is a read-only numpy array when the header describes one (``payload_dtype``/``payload_shape``),
    raw ``bytes`` for an undescribed payload frame, or None."""

    topic: str
    event: str
    stream: str
    header: dict[str, Any] = field(repr=False)
    payload: np.ndarray | bytes | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.header[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


def decode(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> Event:
    """Decode one published message into an `Event`; raises `ProtocolError` if it is malformed."""
    topic, hdr, raw = decode_event(frames, limits)
    stream = hdr.get("stream")
    if not isinstance(stream, str):
        stream = topic.partition("/")[2]
    return Event(topic, hdr["event"], stream, hdr, event_payload(hdr, raw))


def _topics(topics: str | Iterable[str]) -> list[str]:
    return [topics] if isinstance(topics, str) else list(topics)


class _Base:
    def _setup(self, sock: zmq.Socket, endpoint: str, topics: str | Iterable[str], rcvhwm: int, limits: Limits) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self.skipped = 0
        self.received = 0
        self.last_error: ProtocolError | None = None
        self._sock = sock
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
        for t in _topics(topics):
            sock.setsockopt(zmq.SUBSCRIBE, t.encode("utf-8"))
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise ValueError(f"cannot connect to event endpoint {endpoint!r}: {exc}") from None

    def subscribe(self, topic: str) -> None:
        """Add a topic prefix."""
        self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))

    def unsubscribe(self, topic: str) -> None:
        """Remove a topic prefix added before."""
        self._sock.setsockopt(zmq.UNSUBSCRIBE, topic.encode("utf-8"))

    def _decode_or_skip(self, frames: list[bytes]) -> Event | None:
        try:
            ev = decode(frames, self.limits)
        except ProtocolError as exc:
            self.skipped += 1
            self.last_error = exc
            log.warning("skipped an undecodable event from %s (%d so far): %s", self.endpoint, self.skipped, exc)
            return None
        self.received += 1
        return ev

    @staticmethod
    def _timeout_ms(deadline: float | None) -> int | None:
        if deadline is None:
            return None
        return max(0, math.ceil((deadline - time.monotonic()) * 1000))


class Subscriber(_Base):
    """Blocking subscriber. ``context``: the process's `zmq.Context` (owned and terminated by `close` when
    None). ``rcvhwm``: messages queued before ZeroMQ drops new ones for this subscriber."""

    def __init__(
        self,
        endpoint: str = DEFAULT_PUBLISH_ENDPOINT,
        topics: str | Iterable[str] = ("",),
        *,
        context: zmq.Context | None = None,
        rcvhwm: int = 100_000,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        try:
            self._setup(self._ctx.socket(zmq.SUB), endpoint, topics, rcvhwm, limits)
        except BaseException:
            if self._own_ctx:
                self._ctx.term()
            raise

    def recv(self, timeout_s: float | None = None) -> Event | None:
        """The next decodable event, or None if none arrived within ``timeout_s`` (None: wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            ms = self._timeout_ms(deadline)
            if ms is not None and not self._sock.poll(ms, zmq.POLLIN):
                return None
            frames = self._sock.recv_multipart()
            ev = self._decode_or_skip(frames)
            if ev is not None:
                return ev

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.recv()
            if ev is not None:
                yield ev

    def close(self) -> None:
        """Close the socket (linger 0) and the context if this subscriber owns it. Idempotent."""
        if not self._sock.closed:
            self._sock.close(linger=0)
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> Subscriber:  # noqa: PYI034  Subscriber is not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscriber(_Base):
    """asyncio subscriber: ``async for ev in sub`` and ``await sub.recv(timeout_s)``.

    ``context``: a `zmq.asyncio.Context`, or the process's plain `zmq.Context` (shadowed, not copied); when
    None the subscriber owns one."""

    def __init__(
        self,
        endpoint: str = DEFAULT_PUBLISH_ENDPOINT,
        topics: str | Iterable[str] = ("",),
        *,
        context: zmq.Context | None = None,
        rcvhwm: int = 100_000,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._own_ctx = context is None
        if context is None:
            self._ctx = zmq.asyncio.Context()
        elif isinstance(context, zmq.asyncio.Context):
            self._ctx = context
        else:
            self._ctx = zmq.asyncio.Context.shadow(context.underlying)
        try:
            self._setup(self._ctx.socket(zmq.SUB), endpoint, topics, rcvhwm, limits)
        except BaseException:
            if self._own_ctx:
                self._ctx.term()
            raise

    async def recv(self, timeout_s: float | None = None) -> Event | None:
        """The next decodable event, or None if none arrived within ``timeout_s`` (None: wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            ms = self._timeout_ms(deadline)
            if ms is not None and not await self._sock.poll(ms, zmq.POLLIN):
                return None
            frames = await self._sock.recv_multipart()
            ev = self._decode_or_skip(frames)
            if ev is not None:
                return ev

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.recv()
            if ev is not None:
                yield ev

    def close(self) -> None:
        if not self._sock.closed:
            self._sock.close(linger=0)
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    async def __aenter__(self) -> AsyncSubscriber:  # noqa: PYI034  not meant to be subclassed
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> AsyncSubscriber:  # noqa: PYI034  not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
