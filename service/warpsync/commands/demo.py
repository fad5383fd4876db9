"""`warpsync demo`: the service on its embedded defaults, the default rig simulator publishing into it, a
speaking source (a talker's microphone and live captions, `warpsync.sim.talker`) whose words the speech stage
aligns live, and a subscriber printing the events and how far each stream's estimated offset is from the
simulator's truth, until Ctrl-C or ``--duration`` seconds; then the scorecard."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from ._signals import stop_on_signals
from .serve import add_service_flags, effective_config

log = logging.getLogger(__name__)


def rig_publisher(
    control: str,
    stop: threading.Event,
    context: zmq.Context,
    on_start: Callable[[Any], None] | None = None,
    send_log: Any = None,
) -> dict[str, int]:
    """Publish the default rig (configs/rigs/default.toml: cameras with their microphones, a room microphone,
    an IMU; each device with its own clock offset, drift, capture latency and network jitter, a clock jump and
    a publisher restart) in real time until `stop` is set; every stream is closed with an acknowledgement.
    ``on_start(truth)`` receives the simulator's ground truth; ``send_log`` (a `warpsync.sim.run.SendLog`)
    records when each chunk left, for the event latency. Returns the chunks sent per stream."""
    from ..sim.rig import load_rig
    from ..sim.run import publish_rig

    res = publish_rig(
        load_rig(),
        control,
        math.inf,
        realtime=True,
        stop_event=stop,
        context=context,
        on_start=on_start,
        send_log=send_log,
    )
    return res.chunks


_QUIET = ("sync.bundle", "stream.status", "sync.offset", "speech.status")


def format_event(ev: Any) -> str:
    """One line per event for people: name, stream and the fields that matter."""
    h = {k: v for k, v in ev.header.items() if k not in ("v", "event", "stream")}
    t = h.pop("t_host_s", None)
    if not isinstance(t, (int, float)):
        t = time.time()  # events without a host time (sync.*): when we received it
    stamp = time.strftime("%H:%M:%S", time.localtime(t))
    keys: tuple[str, ...] = ()
    if ev.event == "stream.status":
        keys = (
            "rate_measured_hz",
            "chunks",
            "samples",
            "gaps",
            "stalled",
            "closed",
            "buffer_fill",
            "settled",
            "method",
        )
    elif ev.event == "sync.offset":
        keys = ("reference", "offset_s", "drift_ppm", "uncertainty_s", "method", "settled", "confidence")
    elif ev.event == "sync.bundle":
        keys = ("t_ref_s", "incomplete")
    elif ev.event == "speech.word":
        keys = ("word", "index", "start_s", "end_s", "confidence")
    elif ev.event == "speech.status":
        keys = ("state", "words_received", "words_aligned", "window_s", "forced_commits", "dropped_audio_s")
    if keys:
        h = {k: (round(h[k], 6) if isinstance(h[k], float) else h[k]) for k in keys if k in h}
    return f"{stamp} {ev.event:<16} {ev.stream:<10} {json.dumps(h, separators=(',', ':'), default=str)}"


class _Display:
    """What the demo prints: every event once per `every_s` per (event, stream) for the frequent kinds, all
    others as they come, and every `every_s` a line of each stream's current |offset error| against the
    simulator's truth (relative to its partner stream, as the scorecard measures it). Each scored event's
    latency is its receipt time minus the time the chunk holding its newest sample was sent (`send_log`), as
    `warpsync simulate --score` measures it."""

    def __init__(self, every_s: float, verbose: bool) -> None:
        from ..sim.run import SendLog

        self.every_s = every_s
        self.verbose = verbose
        self.scorer: Any = None
        self.truth: Any = None
        self.send_log = SendLog()
        self._last: dict[tuple[str, str], float] = {}
        self._next_live = time.monotonic() + every_s

    def start(self, truth: Any) -> None:
        from ..sim.score import Scorer

        self.truth = truth
        self.scorer = Scorer(truth)

    def __call__(self, ev: Any) -> None:
        now = time.monotonic()
        if self.scorer is not None and ev.event in ("sync.offset", "sync.bundle"):
            from ..sim.run import attach_latency

            hdr = {**ev.header, "recv_s": time.time()}
            hdr.setdefault("stream", ev.stream)
            attach_latency([hdr], self.truth, self.send_log)
            self.scorer.add(hdr)
        key = (ev.event, ev.stream)
        if self.verbose or ev.event not in _QUIET or now - self._last.get(key, -1e9) >= self.every_s:
            self._last[key] = now
            print(format_event(ev), flush=True)
        if self.scorer is not None and now >= self._next_live:
            self._next_live = now + self.every_s
            print(f"live |offset error| vs truth: {self.scorer.live_line()}", flush=True)


def run_demo(args: argparse.Namespace, publisher: Callable[..., Any] = rig_publisher) -> int:
    from warpsync_client import Subscriber

    from ..server import Service

    cfg = effective_config(args)
    if not getattr(args, "no_talker", False) and cfg.speech.enabled:
        # the talker's captions will need the speech stage: build it before the rig starts, not mid-stream
        cfg = dataclasses.replace(cfg, speech=dataclasses.replace(cfg.speech, preload=True))
    service = Service(cfg)
    stop = threading.Event()
    errors: list[BaseException] = []
    display = _Display(args.every, args.verbose)

    def serve() -> None:
        try:
            service.run(lambda ep: print(ep.ready_line(), flush=True))
        except BaseException as exc:  # noqa: BLE001  surfaced below
            errors.append(exc)
        finally:
            service.ready.set()
            stop.set()

    stop_on_signals(stop)
    th = threading.Thread(target=serve, name="service", daemon=True)
    th.start()
    service.ready.wait()
    if errors:
        raise errors[0]
    assert service.endpoints is not None
    ctx = zmq.Context()
    sub = Subscriber(service.endpoints.publish, topics=("",), context=ctx)
    pub_thread: threading.Thread | None = None
    talk_thread: threading.Thread | None = None
    sent: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 10
        while service.subscribe_notices() == 0 and time.monotonic() < deadline and not stop.is_set():
            stop.wait(0.01)  # handshake: the service has seen our subscription, no event is lost

        def publish() -> None:
            try:
                sent.update(
                    publisher(service.endpoints.control, stop, ctx, on_start=display.start, send_log=display.send_log)
                )
            except BaseException as exc:  # noqa: BLE001  recorded and surfaced; stops the demo
                log.error("demo publisher failed: %s", exc)
                errors.append(exc)
                stop.set()

        def talk() -> None:
            from ..sim.talker import publish_talker

            try:
                sent.update(publish_talker(service.endpoints.control, stop, ctx))
            except BaseException as exc:  # noqa: BLE001  recorded and surfaced; stops the demo
                log.error("demo talker failed: %s", exc)
                errors.append(exc)
                stop.set()

        pub_thread = threading.Thread(target=publish, name="demo-publisher", daemon=True)
        pub_thread.start()
        if not getattr(args, "no_talker", False):
            talk_thread = threading.Thread(target=talk, name="demo-talker", daemon=True)
            talk_thread.start()
        end = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set():
            if end is not None and time.monotonic() >= end:
                stop.set()
                break
            ev = sub.recv(timeout_s=0.1)
            if ev is not None:
                display(ev)
        pub_thread.join(30)
        if talk_thread is not None:
            talk_thread.join(30)
        # the final stream.status (closed) events of the acknowledged closes
        display.verbose = True
        while True:
            ev = sub.recv(timeout_s=0.3)
            if ev is None:
                break
            if ev.event == "stream.status" and ev.header.get("closed"):
                display(ev)
    finally:
        sub.close()
        service.request_stop()
        th.join(60)
        ctx.term()
    for sid, n in sorted(sent.items()):
        print(f"published {sid}: {n} chunks, closed and acknowledged", flush=True)
    if display.scorer is not None:
        print(display.scorer.scorecard().format(), flush=True)
    if errors:
        print(f"warpsync demo: error: {errors[0]}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the service with the default rig simulator publishing into it")
    add_service_flags(p)
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    p.add_argument("--every", type=float, default=2.0, metavar="S", help="print frequent events and errors every S s")
    p.add_argument("--verbose", action="store_true", help="print every event")
    p.add_argument(
        "--no-talker",
        action="store_true",
        help="leave out the speaking source (a talker's microphone and live captions, aligned word by word)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """`run_demo` with BLAS on one thread, as `warpsync serve` runs (`warpsync.tuning`), and back after."""
    from ..tuning import single_threaded_blas

    limiter = single_threaded_blas()
    try:
        return run_demo(args)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
