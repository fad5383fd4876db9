"""Helpers for in-process pipeline tests: the real service (worker processes, sockets) in a thread."""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq
from prometheus_client import CollectorRegistry

from warpsync.config import Config
from warpsync.ingest.config import IngestConfig
from warpsync.server import Service
from warpsync_client import protocol as P

_ids = itertools.count()


class RunningService:
    """A `Service` running in a background thread, plus helpers to talk to it over real sockets."""

    def __init__(self, service: Service, thread: threading.Thread, ctx: zmq.Context) -> None:
        self.service = service
        self.thread = thread
        self.ctx = ctx
        ep = service.endpoints
        assert ep is not None
        self.endpoints = ep
        self.registry: CollectorRegistry = service.registry
        self._req_id = itertools.count(1)
        self.control = ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(ep.control)

    def push(self, endpoint: str | None = None, sndhwm: int = 1000) -> zmq.Socket:
        s = self.ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, sndhwm)
        s.connect(endpoint or self.endpoints.ingest[0])
        return s

    def sub(self, topic: bytes = b"") -> zmq.Socket:
        """A SUB connected and subscribed; returns once the service has seen the subscription (ping probe)."""
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, topic)
        before = self.service._pub.subscribe_notices if self.service._pub else 0
        s.connect(self.endpoints.publish)
        try:
            wait_for(
                lambda: (self.service._pub.subscribe_notices if self.service._pub else 0) > before, 5.0, "subscription"
            )
        except BaseException:
            s.close()
            raise
        return s

    def request(self, cmd: str, wait_s: float = 10.0, **fields: Any) -> dict:
        rid = next(self._req_id)
        self.control.send(P.encode_request(cmd, rid, **fields))
        return self.reply(rid, wait_s)

    def send_raw_control(self, frames: list[bytes]) -> None:
        self.control.send_multipart(frames)

    def reply(self, rid: int | None, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.control.poll(int(left * 1000)):
                raise TimeoutError(f"no control reply to request {rid}")
            msg = msgpack.unpackb(self.control.recv_multipart()[-1], raw=False)
            if rid is None or msg.get("id") == rid:
                return msg

    def open(self, meta: P.StreamMeta) -> dict:
        rid = next(self._req_id)
        self.control.send(P.encode_open_request(meta, rid))
        return self.reply(rid)

    def metric(self, name: str, **labels: str) -> float:
        self.flush()
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v

    def flush(self) -> None:
        """Wait for one more tick of the service loop (metrics are flushed in ticks)."""
        rep = self.request("ping")
        assert rep["ok"]
        t = time.monotonic()
        while time.monotonic() - t < 0.3:  # flush runs every 0.25 s of loop time
            self.request("ping")

    def close(self) -> None:
        self.control.close(linger=0)


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.01) -> Any:
    """Poll `pred` until truthy or raise (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        threading.Event().wait(interval_s)


def recv_events(sub: zmq.Socket, pred: Callable[[str, dict], bool], timeout_s: float = 5.0) -> tuple[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sub.poll(int(left * 1000)):
            raise TimeoutError("no matching event")
        topic, hdr, _ = P.decode_event(sub.recv_multipart())
        if pred(topic, hdr):
            return topic, hdr


def ipc_cfg(tmp_path, **ingest: Any) -> Config:
    """A config on unique ipc:// addresses in `tmp_path` (no port collisions with other test runs)."""
    n = next(_ids)
    base = Config()
    short = f"/tmp/ws-{os.getpid()}-{n}"
    os.makedirs(short, exist_ok=True)
    return dataclasses.replace(
        base,
        ingest=dataclasses.replace(IngestConfig(), endpoint=f"ipc://{short}/ingest", **ingest),
        publish=dataclasses.replace(base.publish, endpoint=f"ipc://{short}/pub", status_interval_s=0.2),
        control=dataclasses.replace(base.control, endpoint=f"ipc://{short}/control"),
        metrics=dataclasses.replace(base.metrics, port=0),
    )
