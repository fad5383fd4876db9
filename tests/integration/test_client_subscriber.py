"""Subscriber and AsyncSubscriber over real sockets: an XPUB in the test plays the service's publisher and waits
for the subscription notice (no sleeps)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import zmq

from warpsync_client import AsyncSubscriber, Subscriber
from warpsync_client.protocol import encode_event


@pytest.fixture
def xpub(zctx):
    sock = zctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(linger=0)


def _await_subscriptions(sock: zmq.Socket, topics: set[bytes], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen: set[bytes] = set()
    while not topics <= seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and sock.poll(int(remaining * 1000)), f"subscriptions seen: {seen}, want {topics}"
        msg = sock.recv()
        if msg[:1] == b"\x01":
            seen.add(msg[1:])


def _publish_mixture(sock: zmq.Socket, arr: np.ndarray) -> None:
    sock.send_multipart(encode_event("sync.offset", {"offset_s": 0.1}, stream="cam1"))  # not subscribed
    sock.send_multipart([b"stream.open/x", b"\xc1not msgpack"])  # undecodable: skipped
    sock.send_multipart([b"stream.open/x"])  # wrong frame count: skipped
    sock.send_multipart(encode_event("stream.open", {"modality": "audio", "rate_hz": 48000.0}, stream="mic1"))
    sock.send_multipart(encode_event("stream.status", {"chunks": 3}, payload=arr, stream="mic1"))


def test_subscriber_filters_decodes_and_skips_bad_events(zctx, xpub, rng):
    sock, endpoint = xpub
    arr = rng.standard_normal((3, 2)).astype(np.float32)
    with Subscriber(endpoint, topics=["stream."], context=zctx) as sub:
        _await_subscriptions(sock, {b"stream."})
        assert sub.recv(timeout_s=0.05) is None
        _publish_mixture(sock, arr)
        ev = sub.recv(timeout_s=5.0)
        assert (ev.topic, ev.event, ev.stream) == ("stream.open/mic1", "stream.open", "mic1")
        assert ev["rate_hz"] == 48000.0 and ev.payload is None
        ev2 = next(iter(sub))
        assert ev2.event == "stream.status" and ev2.get("chunks") == 3
        np.testing.assert_array_equal(ev2.payload, arr)
        assert sub.skipped == 2 and sub.received == 2
        assert sub.last_error.reason == "frame_count"


def test_recv_timeout_returns_none_in_time(zctx, xpub):
    _, endpoint = xpub
    with Subscriber(endpoint, context=zctx) as sub:
        t0 = time.monotonic()
        assert sub.recv(timeout_s=0.2) is None
        assert 0.15 <= time.monotonic() - t0 < 2.0


def test_async_subscriber(zctx, xpub, rng):
    sock, endpoint = xpub
    arr = rng.integers(0, 255, size=(4,)).astype(np.uint8)

    async def main() -> list:
        with AsyncSubscriber(endpoint, topics=("stream.open", "stream.status/mic1"), context=zctx) as sub:
            _await_subscriptions(sock, {b"stream.open", b"stream.status/mic1"})
            assert await sub.recv(timeout_s=0.05) is None
            _publish_mixture(sock, arr)
            got = []
            async for ev in sub:
                got.append(ev)
                if len(got) == 2:
                    break
            assert sub.skipped == 2
            return got

    got = asyncio.run(main())
    assert [e.event for e in got] == ["stream.open", "stream.status"]
    np.testing.assert_array_equal(got[1].payload, arr)
