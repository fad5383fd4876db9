"""`warpsync demo`: the service on its embedded defaults, a built-in publisher of synthetic streams, and a
subscriber printing the events, until Ctrl-C or ``--duration`` seconds."""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

from .serve import add_service_flags, effective_config

log = logging.getLogger(__name__)


def synthetic_publisher(control: str, stop: threading.Event, context: zmq.Context, seed: int = 0) -> dict[str, Any]:
    """Publish three synthetic streams in real time until `stop` is set, then close them (acknowledged).

    * ``demo/mic``  audio, 16 kHz mono f4: a 220 Hz tone with a click every 0.7 s, 20 ms chunks;
    * ``demo/cam``  video features, 30 Hz, 16 f4 per frame: motion energy that peaks with each click;
    * ``demo/imu``  sensor, 200 Hz, 3-axis acceleration in m/s^2, a bump with each click.

    Each device has its own clock (offsets and, for the IMU, a 40 ppm drift), as real devices do: that is
    what the sync engine is for. Returns the close acknowledgements, keyed by stream id.
    """
    from warpsync_client import Publisher

    rng = np.random.default_rng(seed)
    period_s = 0.7
    specs = [
        # stream, modality, rate, shape, clock offset s, drift ppm, chunk samples, units
        ("demo/mic", "audio", 16000.0, (1,), 0.0, 0.0, 320, "pcm"),
        ("demo/cam", "video", 30.0, (16,), 0.25, 0.0, 1, "motion"),
        ("demo/imu", "sensor", 200.0, (3,), -1.5, 40.0, 4, "m/s^2"),
    ]
    pubs = []
    try:
        for sid, modality, rate, shape, _, _, _, units in specs:
            pubs.append(
                Publisher(sid, modality=modality, rate_hz=rate, shape=shape, dtype="f4", units=units, session="demo",
                          control=control, context=context)
            )
        t0 = time.monotonic()
        sent = [0] * len(specs)  # samples sent per stream
        while not stop.is_set():
            now = time.monotonic() - t0
            for i, (_sid, modality, rate, shape, offset_s, drift_ppm, chunk, _) in enumerate(specs):
                while (sent[i] + chunk) / rate <= now:
                    t = (sent[i] + np.arange(chunk)) / rate  # true time of each sample
                    phase = np.mod(t, period_s)
                    click = np.exp(-phase / 0.01)
                    if modality == "audio":
                        x = 0.2 * np.sin(2 * math.pi * 220 * t) + click * rng.standard_normal(chunk) * 0.8
                        block = x.reshape(chunk, 1)
                    elif modality == "video":
                        block = np.exp(-phase / 0.05)[:, None] * rng.uniform(0.5, 1.0, (chunk, *shape))
                    else:
                        block = np.stack([np.zeros(chunk), np.zeros(chunk), np.full(chunk, 9.81)], 1)
                        block += click[:, None] * 3.0 + rng.normal(0, 0.02, (chunk, 3))
                    t_dev = float(t[0]) * (1 + drift_ppm * 1e-6) + offset_s
                    pubs[i].send(block.astype(np.float32), t_dev_s=t_dev)
                    sent[i] += chunk
            stop.wait(0.01)  # pacing: real-time rate, not waiting on a socket
        return {p.stream: p.close(timeout_s=10.0) for p in pubs}
    finally:
        for p in pubs:
            if not p.closed:
                p.abort()


def format_event(ev: Any) -> str:
    """One line per event for people: name, stream and the fields that matter."""
    h = {k: v for k, v in ev.header.items() if k not in ("v", "event", "stream")}
    t = h.pop("t_host_s", None)
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "--:--:--"
    if ev.event == "stream.status":
        keys = ("rate_measured_hz", "chunks", "samples", "gaps", "duplicates", "reordered", "stalled", "closed", "buffer_fill")
        h = {k: (round(h[k], 3) if isinstance(h[k], float) else h[k]) for k in keys if k in h}
    return f"{stamp} {ev.event:<16} {ev.stream:<10} {json.dumps(h, separators=(',', ':'), default=str)}"


def run_demo(args: argparse.Namespace, publisher: Callable[..., Any] = synthetic_publisher) -> int:
    from warpsync_client import Subscriber

    from ..server import Service

    cfg = effective_config(args)
    service = Service(cfg)
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            service.run(lambda ep: print(ep.ready_line(), flush=True))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            service.ready.set()
            stop.set()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    th = threading.Thread(target=serve, name="service", daemon=True)
    th.start()
    service.ready.wait()
    if errors:
        raise errors[0]
    assert service.endpoints is not None
    ctx = zmq.Context()
    sub = Subscriber(service.endpoints.publish, topics=("",), context=ctx)
    pub_thread: threading.Thread | None = None
    acks: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 10
        while service.subscribe_notices() == 0 and time.monotonic() < deadline and not stop.is_set():
            stop.wait(0.01)  # handshake: the service has seen our subscription, no event is lost

        def publish() -> None:
            try:
                acks.update(publisher(service.endpoints.control, stop, ctx))
            except BaseException as exc:
                log.error("demo publisher failed: %s", exc)
                errors.append(exc)
                stop.set()

        pub_thread = threading.Thread(target=publish, name="demo-publisher", daemon=True)
        pub_thread.start()
        end = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set():
            if end is not None and time.monotonic() >= end:
                stop.set()
                break
            ev = sub.recv(timeout_s=0.1)
            if ev is not None:
                print(format_event(ev), flush=True)
        pub_thread.join(30)
        # the final stream.status (closed) events of the acknowledged closes
        while True:
            ev = sub.recv(timeout_s=0.3)
            if ev is None:
                break
            print(format_event(ev), flush=True)
    finally:
        sub.close()
        service.request_stop()
        th.join(60)
        ctx.term()
    for sid, ack in acks.items():
        print(f"closed {sid}: received {ack.received}, rejected {ack.rejected}", flush=True)
    if errors:
        print(f"warpsync demo: error: {errors[0]}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the service with a built-in synthetic publisher and print its events")
    add_service_flags(p)
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    p.set_defaults(func=run_demo)
