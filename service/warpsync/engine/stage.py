"""`EngineStage`: the sync engine behind the service's `Stage` interface (pure: no sockets, no clock).

Per chunk it updates the stream's clock model, features and buffers; when the session's hop is due (every
`content.hop_s` of host time, checked on each chunk and tick) it runs content sync for every stream of the
session and returns one ``sync.offset`` per stream; ``sync.bundle`` events are returned as soon as a reference
tick is complete (or `bundle.max_wait_s` after it could first have been); ``stream.status`` events carry the
``settled``, ``stalled`` and ``jumped`` flags when they change. Bodies are documented field by field in
clients/protocol/EVENTS-sync.md.
"""

from __future__ import annotations

import logging
import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from warpsync_client.protocol import StreamMeta

from ..stage import Event, Samples
from .bundle import Bundler, MemberView
from .config import EngineConfig
from .session import Estimate, StreamState, SyncEngine

log = logging.getLogger(__name__)

BUNDLE_POLL_S = 0.005
"""Bundles of a session are looked for at most this often (host time), seconds: 5 ms adds at most that much to a
bundle's latency and keeps the per-chunk cost flat however many chunks arrive."""


def offset_body(e: Estimate) -> dict:
    return {
        "stream": e.stream,
        "session": e.session,
        "reference": e.reference,
        "t_s": e.t_s,
        "t_local_s": e.t_local_s,
        "offset_s": e.offset_s,
        "drift_ppm": e.drift_ppm,
        "uncertainty_s": e.uncertainty_s,
        "method": e.method,
        "settled": e.settled,
        "confidence": e.confidence,
        "content": e.content_reason or "ok",
        "partner": e.partner,
    }


class EngineStage:
    """The engine stage. `registry` is where its metrics live (never the global default)."""

    name = "engine"

    def __init__(self, cfg: EngineConfig, registry: CollectorRegistry) -> None:
        self.cfg = cfg
        self.engine = SyncEngine(cfg)
        self.bundlers: dict[str, Bundler] = {}
        self.last: dict[str, Estimate] = {}
        self._views: dict[str, MemberView] = {}  # per stream, rebuilt when its estimate changes
        self._next_bundle_s: dict[str, float] = {}
        self._bundler_key: dict[str, int] = {}
        self._m_offset = Gauge(
            "warpsync_engine_offset_seconds",
            "Offset estimate t_local - t_ref per stream",
            ["stream"],
            registry=registry,
        )
        self._m_drift = Gauge(
            "warpsync_engine_drift_ppm", "Drift estimate per stream, ppm", ["stream"], registry=registry
        )
        self._m_unc = Gauge(
            "warpsync_engine_uncertainty_seconds",
            "One-sigma offset uncertainty per stream",
            ["stream"],
            registry=registry,
        )
        self._m_settled = Gauge(
            "warpsync_engine_settled", "1 when the stream's estimate has settled", ["stream"], registry=registry
        )
        self._m_hop = Histogram(
            "warpsync_engine_hop_seconds",
            "Compute time of one content hop of a session",
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
        )
        self._m_jumps = Counter(
            "warpsync_engine_clock_events_total",
            "Clock jumps, device restarts, rebases (a young clock model's first observations were late) and stale "
            "chunks (stamped before a jump another stream on the clock reported, dropped)",
            ["stream", "kind"],
            registry=registry,
        )
        self._m_windows = Counter(
            "warpsync_engine_content_windows_total",
            "Content windows by outcome (ok, silent, low_corr, ambiguous, edge, outlier, ...)",
            ["stream", "outcome"],
            registry=registry,
        )
        self._m_bundles = Counter(
            "warpsync_engine_bundles_total", "sync.bundle events published", ["session", "complete"], registry=registry
        )
        self._m_method = Gauge(
            "warpsync_engine_method",
            "1 for the method currently producing the stream's estimate",
            ["stream", "method"],
            registry=registry,
        )

    # ------------------------------------------------------------------------------------------ Stage API
    def open(self, meta: StreamMeta, now_s: float) -> list[Event]:
        st = self.engine.open(meta, now_s)
        return self._status(st, force=True)

    def samples(self, meta: StreamMeta, chunk: Samples) -> list[Event]:
        st = self.engine.streams.get(meta.stream)
        if st is None or st.meta != meta:
            st = self.engine.open(meta, chunk.arrival_s)
        events: list[Event] = []
        if isinstance(chunk.data, str):
            return events
        ev = self.engine.add(meta.stream, chunk.t_dev_s, chunk.arrival_s, chunk.data)
        if ev:
            self._m_jumps.labels(meta.stream, ev).inc()
        if ev in ("jump", "restart"):
            for other in self.engine.streams.values():
                if other.clock is st.clock:
                    events += self._status(other)
                    other.jumped = False
        if st.stalled:
            st.stalled = False
        events += self._status(st)
        events += self._run(st.session, chunk.arrival_s)
        return events

    def close(self, stream: str, now_s: float) -> list[Event]:
        self.engine.close(stream, now_s)
        return []

    def tick(self, now_s: float) -> list[Event]:
        events: list[Event] = []
        for st in list(self.engine.streams.values()):
            if st.open and not st.stalled and now_s - st.last_arrival_s > self.cfg.stall_s:
                st.stalled = True
                events += self._status(st)
        for name in list(self.engine.sessions):
            events += self._run(name, now_s)
        return events

    def status_fields(self, stream: str) -> dict:
        """The engine's additions to the periodic ``stream.status`` of the ingest layer (empty for a stream the
        engine does not know): ``settled``, ``jumped`` (a clock jump or device restart since the last status
        of the engine), ``method``, ``session``."""
        st = self.engine.streams.get(stream)
        if st is None:
            return {}
        e = self.last.get(stream)
        return {
            "settled": bool(e.settled) if e is not None else False,
            "jumped": st.jumped,
            "method": e.method if e is not None else "clock",
            "session": st.session,
        }

    # ------------------------------------------------------------------------------------------ internals
    def _run(self, session: str, now_s: float) -> list[Event]:
        events: list[Event] = []
        if self.engine.due(session, now_s):
            t0 = time.perf_counter()
            ests = self.engine.hop(session, now_s)
            self._m_hop.observe(time.perf_counter() - t0)
            for e in ests:
                self.last[e.stream] = e
                self._views.pop(e.stream, None)
                events.append(Event("sync.offset", e.stream, offset_body(e)))
                self._m_offset.labels(e.stream).set(e.offset_s)
                self._m_drift.labels(e.stream).set(e.drift_ppm)
                self._m_unc.labels(e.stream).set(e.uncertainty_s if math.isfinite(e.uncertainty_s) else -1.0)
                self._m_settled.labels(e.stream).set(1.0 if e.settled else 0.0)
                for m in ("clock", "lead", "content", "fused"):
                    self._m_method.labels(e.stream, m).set(1.0 if m == e.method else 0.0)
                st = self.engine.streams[e.stream]
                if not self.engine.is_anchor(st) and st.extractor is not None:
                    self._m_windows.labels(e.stream, e.content_reason or "ok").inc()
                events += self._status(st)
        # bundles: at most every BUNDLE_POLL_S per session (a tick waits for its slowest member anyway)
        if self.cfg.bundle.enabled and now_s >= self._next_bundle_s.get(session, -math.inf):
            self._next_bundle_s[session] = now_s + BUNDLE_POLL_S
            events += self._bundles(session, now_s)
        return events

    def _status(self, st: StreamState, force: bool = False) -> list[Event]:
        e = self.last.get(st.name)
        settled = bool(e.settled) if e is not None else False
        key = (settled, st.stalled, st.jumped)
        if not force and key == st.last_status:
            return []
        st.last_status = key
        body = {
            "settled": settled,
            "stalled": st.stalled,
            "jumped": st.jumped,
            "session": st.session,
            "method": e.method if e is not None else "clock",
        }
        return [Event("stream.status", st.name, body)]

    def _bundler(self, session: str, members: list[MemberView]) -> Bundler | None:
        b = self.bundlers.get(session)
        key = len(members)
        if b is not None and self._bundler_key.get(session) == key:
            return b
        self._bundler_key[session] = key
        sess = self.engine.sessions[session]
        bc = self.cfg.bundle
        hz = bc.tick_hz if bc.tick_hz > 0 else min(min(m.rate_hz for m in members), bc.max_tick_hz)
        if b is not None and b.tick_hz == hz:
            return b
        # first bundle, or the slowest member changed: a fresh tick grid (sets already published stay valid)
        nb = Bundler(bc, session, sess.reference or "host", tick_hz=hz)
        if b is not None:
            nb.last_used = b.last_used
        self.bundlers[session] = nb
        return nb

    def _bundles(self, session: str, now_s: float) -> list[Event]:
        sess = self.engine.sessions[session]
        members: list[MemberView] = []
        for name in sess.members:
            st = self.engine.streams.get(name)
            e = self.last.get(name)
            if st is None or e is None or st.meta.rate_hz <= 0 or not st.open or not math.isfinite(st.last_t_end_s):
                continue
            v = self._views.get(name)
            if v is None:
                v = self._views[name] = self._member(st, e)
            v.covered_until_s = v.to_ref(st.last_t_end_s - 1.0 / st.meta.rate_hz)
            members.append(v)
        if not members:
            return []
        b = self._bundler(session, members)
        if b is None:
            return []
        out = []
        for body in b.ready(members, now_s):
            self._m_bundles.labels(session, "false" if body["incomplete"] else "true").inc()
            out.append(Event("sync.bundle", "", body))
        return out

    @staticmethod
    def _member(st: StreamState, e: Estimate) -> MemberView:
        k = 1.0 + e.drift_ppm * 1e-6
        t_ref0, t_loc0 = e.t_s, e.t_local_s

        def to_local(T: float) -> float:
            return t_loc0 + (T - t_ref0) * k

        def to_ref(t: float) -> float:
            return t_ref0 + (t - t_loc0) / k

        last_sample_local = st.last_t_end_s - 1.0 / st.meta.rate_hz
        return MemberView(
            st.name, st.meta.rate_hz, to_ref(last_sample_local), to_local, st.local_to_index, to_ref, e.confidence
        )
