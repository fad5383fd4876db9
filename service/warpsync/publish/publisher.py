"""Events -> ZeroMQ XPUB (the thin I/O shell around `warpsync_client.protocol.encode_event`).

XPUB rather than PUB so that the service sees subscriptions (tests and the demo wait for a subscriber with
a handshake instead of sleeping) and can set ``XPUB_NODROP``: a subscriber whose queue (``publish.sndhwm``)
is full makes the send fail with ``EAGAIN`` and the event is counted as dropped, instead of vanishing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import zmq

from warpsync_client.protocol import encode_event

from ..errors import ConfigError
from ..metrics import ServiceMetrics
from ..stage import Event
from .config import PublishConfig

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(self, ctx: zmq.Context, cfg: PublishConfig, metrics: ServiceMetrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscribe notice, not only a topic's first
        try:
            self.sock.bind(cfg.endpoint)
        except zmq.ZMQError as exc:
            self.sock.close()
            raise ConfigError(
                f"cannot bind the event publisher to {cfg.endpoint}: {exc}; "
                "choose another address with --publish or [publish] endpoint"
            ) from None
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.subscriptions = 0
        """Subscribe notices minus unsubscribe notices seen (a subscriber with two topics counts twice)."""
        self.subscribe_notices = 0
        """Subscribe notices seen in total (grows only: a handshake for "my subscription has arrived")."""
        self.dropped = 0
        self.published = 0

    def publish(self, events: Iterable[Event]) -> None:
        sock = self.sock
        for ev in events:
            frames = encode_event(ev.name, ev.body, ev.payload, ev.stream)
            try:
                sock.send_multipart(frames, zmq.NOBLOCK, copy=ev.payload is None)
            except zmq.Again:
                self.dropped += 1
                if self.metrics is not None:
                    self.metrics.dropped(ev.name)
                continue
            self.published += 1
            if self.metrics is not None:
                self.metrics.published(ev.name)

    def drain_subscriptions(self) -> None:
        """Read the XPUB's subscription notices (they queue up otherwise)."""
        while True:
            try:
                msg = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self.subscriptions += 1
                self.subscribe_notices += 1
                log.debug("subscribe %r", msg[1:])
            elif msg[:1] == b"\x00":
                self.subscriptions = max(0, self.subscriptions - 1)

    def close(self) -> None:
        self.sock.close(linger=0)
