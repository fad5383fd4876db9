"""The I/O shell of the simulator: publish a rig into a running service, and collect its events for scoring.

`publish_rig` sends every stream through its own `warpsync_client.Publisher` (one per stream, as separate
devices would), paced so each chunk leaves when the simulator says it arrives (``realtime``) or as fast as the
service takes them. A publisher restart in the rig aborts that stream's publisher (no end-of-stream marker, as
a crash; in a fast run, once the service has taken the chunks sent before it, as real time would have) and opens
a new one under the same stream id, which continues the seq numbering from the service's ``resume_seq``. Chunks
the rig drops are simply not sent (the client numbers chunks contiguously, so a drop shows as a gap in device
time, not in seq).

In ``--fast`` mode the service's arrival times are not the simulated ones, so clock sync sees a burst, not
the device clocks: score fast runs for content sync only, or use the offline benchmark.

`EventCollector` subscribes to ``sync.`` events in a background thread and stamps each with the receipt time
and, given the run's `SendLog`, the time the chunk holding the event's newest sample (``t_local_s``) was sent,
looked up as the event arrives (among the newest chunks: the log keeps a bounded number per stream, so a
lookup after a run of minutes would miss the early events, and scan the whole log for each one);
`attach_latency` turns that into the event latency the scorecard reports: receipt time minus send time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from warpsync_client import Control, Publisher, Subscriber

from .generator import Simulator
from .rig import RigConfig
from .scene import Scene
from .truth import Truth

log = logging.getLogger(__name__)

START_LEAD_S = 0.2
"""Scene time 0 is put this far after the call, so the first chunks are not already late."""


class SendLog:
    """Per stream, the device-time span and host send time of the most recent chunks (bounded)."""

    def __init__(self, maxlen: int = 20000) -> None:
        self._log: dict[str, deque[tuple[float, float, float]]] = {}
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def note(self, stream: str, t_first_s: float, t_end_s: float, sent_s: float) -> None:
        with self._lock:
            self._log.setdefault(stream, deque(maxlen=self._maxlen)).append((t_first_s, t_end_s, sent_s))

    def sent_at(self, stream: str, t_local_s: float) -> float | None:
        """Host time the chunk holding device time ``t_local_s`` was sent (None if not in the log)."""
        with self._lock:  # newest first: an event is about recent data, so this stops after a few entries
            for t0, t1, sent in reversed(self._log.get(stream, ())):
                if t0 - 1e-9 <= t_local_s <= t1 + 1e-9:
                    return sent
        return None


@dataclass
class PublishResult:
    truth: Truth
    chunks: dict[str, int] = field(default_factory=dict)
    """Chunks sent per stream."""
    restarts: int = 0
    late_s_max: float = 0.0
    """Largest lag of a send behind its simulated arrival time (realtime mode), seconds."""
    stopped: bool = False


def publish_rig(
    rig: RigConfig,
    control_endpoint: str,
    duration_s: float | None = None,
    *,
    realtime: bool = True,
    stop_event: threading.Event | None = None,
    context: zmq.Context | None = None,
    send_log: SendLog | None = None,
    on_start: Callable[[Truth], None] | None = None,
    timeout_s: float = 5.0,
) -> PublishResult:
    """Publish ``rig`` for ``duration_s`` (default the rig's; ``math.inf`` runs until ``stop_event``) into the
    service whose control socket is ``control_endpoint``; returns the truth (on the host clock) and what was
    sent. ``stop_event`` ends it early (streams are closed properly). ``on_start(truth)`` is called once scene time 0 is fixed on the host clock,
    before the first chunk is sent (e.g. to write the truth file)."""
    own = context is None
    ctx = zmq.Context() if own else context
    stop = stop_event or threading.Event()
    # numba compiles the scene's sound kernel on its first call (about a second on a fresh install), which
    # would send the first chunks that late: four streams' clocks took it for a jump in a fresh machine's demo
    Scene(rig.scene, rig.seed).sound(np.arange(64) / 48000.0)
    t0 = time.time() + START_LEAD_S
    sim = Simulator(rig, t0_host_s=t0)
    result = PublishResult(truth=sim.truth)
    if on_start is not None:
        on_start(sim.truth)
    pubs: dict[str, Publisher] = {}
    try:
        for c in sim.chunks(duration_s):
            if stop.is_set():
                result.stopped = True
                break
            if realtime:
                wait = c.arrival_s - time.time()
                if wait > 0 and stop.wait(wait):
                    result.stopped = True
                    break
                result.late_s_max = max(result.late_s_max, time.time() - c.arrival_s)
            pub = pubs.get(c.stream)
            if c.restarted and pub is not None:
                log.info("simulated publisher restart of %s", c.stream)
                if not realtime:
                    _wait_taken(control_endpoint, ctx, c.stream, pub.last_seq, timeout_s)
                pub.abort()
                pub = None
                result.restarts += 1
            if pub is None:
                pub = Publisher(
                    c.meta, control=control_endpoint, context=ctx, timeout_s=timeout_s, send_timeout_s=timeout_s
                )
                pubs[c.stream] = pub
            pub.send(c.samples, c.t_dev_s)
            if send_log is not None:
                send_log.note(c.stream, c.t_dev_s, c.t_dev_s + c.n / c.meta.rate_hz, time.time())
            result.chunks[c.stream] = result.chunks.get(c.stream, 0) + 1
    finally:
        errors = []
        for pub in pubs.values():
            try:
                pub.close(timeout_s)
            except Exception as exc:  # noqa: BLE001  close every stream even if one fails; report the first
                errors.append(exc)
        if own:
            ctx.term()
        if errors:
            raise errors[0]
    return result


def _wait_taken(control_endpoint: str, ctx: zmq.Context, stream: str, seq: int, timeout_s: float) -> None:
    """Wait until the service has taken `stream` through `seq` (its `streams` reply), at most `timeout_s`.

    A fast run's simulated crash comes after the chunks before it have reached the service, as in real time, where
    they left long before it: sent in a burst they can still be queued for a connection the publisher has not made
    yet, and aborting it would drop them (and the new publisher would number its chunks from 0 again)."""
    deadline = time.monotonic() + timeout_s
    with Control(control_endpoint, context=ctx, timeout_s=timeout_s) as ctl:
        while time.monotonic() < deadline:
            if any(s.get("stream") == stream and s.get("last_seq", -1) >= seq for s in ctl.streams()):
                return
            time.sleep(0.002)
    log.warning(
        "stream %s: the service had not taken seq %d within %g s of its simulated restart", stream, seq, timeout_s
    )


class EventCollector:
    """Subscribes to ``topics`` at ``endpoint`` in a background thread; ``events`` holds each event's header
    (a dict) with ``recv_s`` (host receipt time) added."""

    def __init__(
        self,
        endpoint: str,
        topics: tuple[str, ...] = ("sync.",),
        context: zmq.Context | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        send_log: SendLog | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.send_log = send_log
        self.topics = topics
        self.events: list[dict[str, Any]] = []
        self._ctx = context
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="warpsync-score-sub", daemon=True)

    def start(self, timeout_s: float = 5.0) -> EventCollector:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the event subscriber did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            sub = Subscriber(self.endpoint, self.topics, context=self._ctx)
        except BaseException as exc:  # noqa: BLE001  handed to the caller's thread, which re-raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                ev = sub.recv(timeout_s=0.1)
                if ev is not None:
                    hdr = dict(ev.header)
                    hdr["recv_s"] = time.time()
                    hdr.setdefault("stream", ev.stream)
                    tl = hdr.get("t_local_s")
                    if self.send_log is not None and isinstance(tl, (int, float)):
                        sent = self.send_log.sent_at(hdr["stream"], float(tl))
                        if sent is not None:
                            hdr["sent_s"] = sent
                    self.events.append(hdr)
                    if self.on_event is not None:
                        self.on_event(hdr)
        finally:
            sub.close()

    def stop(self, linger_s: float = 0.0) -> list[dict[str, Any]]:
        """Keep collecting for ``linger_s`` more seconds (trailing events), then stop; returns the events."""
        if linger_s > 0:
            self._stop.wait(linger_s)
        self._stop.set()
        self._thread.join(5.0)
        return self.events


def attach_latency(events: list[dict[str, Any]], truth: Truth, send_log: SendLog | None = None) -> None:
    """Set ``latency_s`` on each event that has ``recv_s``: receipt minus the send time of the chunk holding
    the event's newest sample, stamped at receipt (``sent_s``, `EventCollector`) or found in ``send_log``;
    otherwise receipt minus the host time that sample was stamped on its device (an upper bound: it adds the
    chunk's length and the network transit)."""
    for ev in events:
        recv = ev.get("recv_s")
        sid = ev.get("stream")
        if not isinstance(recv, float) or sid not in truth.streams:
            continue
        tl = ev.get("t_local_s")
        sent = ev.get("sent_s")
        if not isinstance(sent, float) and send_log is not None and isinstance(tl, (int, float)):
            sent = send_log.sent_at(sid, float(tl))
        if sent is not None:
            ev["latency_s"] = recv - sent
            continue
        t_s = ev.get("t_s")
        if isinstance(t_s, (int, float)) and math.isfinite(t_s):
            try:
                scene = truth.scene_of_ref(float(t_s), ev.get("reference") or "host")
            except Exception:  # noqa: BLE001, S112  a reference the truth does not know: no latency for this event
                continue
            ev["latency_s"] = recv - (truth.t0_host_s + scene + truth.stream(sid).delay_s)


def replay_offline(
    sim: Simulator,
    stage: Any,
    duration_s: float | None = None,
    *,
    tick_s: float = 0.05,
    on_events: Callable[[list[Any], float], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Feed a simulator's chunks straight into a `warpsync.stage.Stage` (no sockets), in arrival order, with
    ``tick(now)`` calls every ``tick_s`` of simulated host time. Each returned event gets a latency from a
    single-server queue model of real-time operation: a call starts when its chunk arrives or when the previous
    call finished (whichever is later) and takes the measured compute time; the event's latency is its finish
    time minus the chunk's arrival. ``on_events(events_as_dicts, now_s)`` receives them.

    Returns compute seconds, simulated seconds and the real-time factor (compute / simulated)."""
    from ..stage import Samples

    opened: set[str] = set()
    busy_until = -math.inf
    compute = 0.0
    next_tick = None
    last_arrival = 0.0

    def emit(evs: list[Any], arrival: float, dt: float) -> None:
        nonlocal busy_until
        start = max(arrival, busy_until)
        busy_until = start + dt
        if evs and on_events is not None:
            on_events([_event_dict(e, busy_until - arrival) for e in evs], arrival)

    for c in sim.chunks(duration_s):
        if next_tick is None:
            next_tick = c.arrival_s
        while next_tick <= c.arrival_s:
            t = clock()
            evs = stage.tick(next_tick)
            dt = clock() - t
            compute += dt
            emit(evs, next_tick, dt)
            next_tick += tick_s
        t = clock()
        evs = []
        if c.stream not in opened or c.restarted:  # a restarted publisher re-opens (no close: it crashed)
            evs += stage.open(c.meta, c.arrival_s)
            opened.add(c.stream)
        evs += stage.samples(c.meta, Samples(c.stream, c.seq, c.t_dev_s, c.arrival_s, c.samples))
        dt = clock() - t
        compute += dt
        emit(evs, c.arrival_s, dt)
        last_arrival = c.arrival_s
    sim_s = max(last_arrival - sim.t0_host_s, 1e-9)
    return {"compute_s": compute, "simulated_s": sim_s, "realtime_factor": compute / sim_s}


def _event_dict(ev: Any, latency_s: float) -> dict[str, Any]:
    body: Mapping[str, Any] = getattr(ev, "body", {}) or {}
    out = {"event": getattr(ev, "name", ""), "stream": getattr(ev, "stream", ""), **dict(body)}
    out.setdefault("stream", getattr(ev, "stream", ""))
    out["latency_s"] = latency_s
    return out
