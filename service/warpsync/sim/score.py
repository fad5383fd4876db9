"""The scorecard: compare the service's `sync.offset` / `sync.bundle` events with a run's ground truth.

Pure: feed decoded event headers (dicts, as `warpsync_client.Subscriber` yields them in ``Event.header``) to a
`Scorer` one by one, in any order, then call `scorecard()`.

Conventions (those of `sync.offset`): ``offset_s = t_local - t_ref`` at reference time ``t_s`` and
``drift_ppm = (d t_local / d t_ref - 1) * 1e6``. The error of an event is ``offset_s`` minus the true offset of
its sample, ``t_local_s`` minus the reference time of the scene that sample sensed (`Truth.error_of`; events
without ``t_local_s``: the true offset at ``t_s``, `Truth.offset_at`, which differs where ``t_s`` and the
sample lie on two sides of a clock step). It includes the capture latency and acoustic delay that timestamps
cannot see. Times below are scene seconds since the stream's first sample unless said otherwise.

Content sync can only see *relative* timing: against the host clock no data reveals the anchor stream's own
capture latency, so every stream's absolute error contains it. The floors are therefore scored per pair, as
the issue states them: each stream against its *partner* (audio and video against the anchor microphone,
an IMU against the fastest camera), using ``error_S(t) - error_partner(t)`` at the same hop. The absolute
error against the host reference is reported beside it (``abs_p95``).

What is measured, per stream (and per method):

* ``settle_s``: from stream start to the first event after which |error| stays within the stream's floor
  until the next disruption (true settling: no two consecutive events beyond it, at least 95 % within), and
  ``flag_settle_s``: to the first ``settled`` flag;
* steady-state |error| p50/p95/max over events flagged settled, outside the `grace_s` after any disruption
  (clock jump, publisher restart, capture latency change) and outside silence/stillness intervals;
* drift error: |drift_ppm - true| over events at least `drift_after_s` after stream start;
* calibration (``within_2u``): the fraction of steady-state events whose error against the anchor (what the
  published ``uncertainty_s`` is about) is within twice that uncertainty;
* recovery after each jump/restart (and, on its own line, each capture latency change): from the disruption to
  the first event after which |error| stays within the floor in the same sense (until the next disruption);
* event latency p50/p99 (from ``latency_s`` attached to an event by whoever measured it, e.g. receipt time
  minus the arrival of the data it covers);
* inside silence/stillness intervals: which methods were published and their mean confidence.

Floors (issue 5): audio streams 1 ms; video a quarter of their frame period; sensors a quarter of the fastest
camera's frame period; drift 5 ppm after 60 s; settle 10 s; recover 5 s; latency p99 100 ms.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .truth import HOST, Truth

OFFSET_EVENT = "sync.offset"
BUNDLE_EVENT = "sync.bundle"


@dataclass(frozen=True)
class ScoreConfig:
    audio_floor_s: float = 0.001
    """|offset error| floor of audio streams (p95 after settling), seconds. Default 0.001."""
    video_floor_frames: float = 0.25
    """Floor of video (and sensor) streams, in video frame periods. Default 0.25."""
    drift_floor_ppm: float = 5.0
    """Drift error floor after `drift_after_s`, ppm. Default 5."""
    drift_after_s: float = 60.0
    """Drift is scored on events this long after stream start, seconds. Default 60."""
    settle_floor_s: float = 10.0
    """Settling floor, seconds from stream start. Default 10."""
    recover_floor_s: float = 5.0
    """Recovery floor after a jump or restart, seconds. Default 5."""
    latency_floor_s: float = 0.1
    """Event latency p99 floor, seconds. Default 0.1."""
    grace_s: float = 5.0
    """Events this soon after a disruption are left out of the steady-state statistics, seconds. Default 5."""
    anchor: str = ""
    """Stream the others are scored against; empty: the first room microphone, else the first audio stream,
    else the first stream of the truth."""
    partners: Mapping[str, str] = field(default_factory=dict)
    """stream -> partner overrides (default: IMUs -> the fastest camera, everything else -> the anchor)."""
    pair_gap_s: float = 1.0
    """A stream's event is paired with the partner's event nearest in time, if within this, seconds. Default 1."""


@dataclass
class _Obs:
    t: float  # scene seconds
    err_s: float
    drift_err_ppm: float
    method: str
    settled: bool
    confidence: float
    uncertainty_s: float


@dataclass(frozen=True)
class StreamScore:
    stream: str
    modality: str
    reference: str
    partner: str
    """Stream the errors are relative to ('' for the anchor itself: absolute errors)."""
    floor_s: float
    events: int
    abs_p95_s: float | None
    """Steady-state |absolute error| p95 against the reference timeline, seconds."""
    settle_s: float | None
    """True settling time (error within floor from then on, until a disruption), seconds from stream start."""
    flag_settle_s: float | None
    """First ``settled`` flag, seconds from stream start."""
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    steady_events: int
    within_2u: float | None
    """Calibration of the published uncertainty: the fraction of steady-state events whose |error against the
    anchor| is at most twice their ``uncertainty_s`` (about 0.95 for an honest Gaussian 1-sigma; None for the
    anchor itself and for streams without steady-state events)."""
    drift_err_p95_ppm: float | None
    drift_err_max_ppm: float | None
    events_after_drift: int
    """Events at least `drift_after_s` after the stream's start (0: the run was too short to score drift)."""
    recoveries: tuple[tuple[str, float, float | None], ...]
    """(kind, scene time of the disruption, recovery seconds or None if never)."""
    by_method: Mapping[str, Mapping[str, float]]
    """method -> {events, p50_s, p95_s, mean_confidence}."""
    fallback: Mapping[str, Mapping[str, Any]]
    """``silence``/``still`` -> {events, methods: {method: count}, mean_confidence, p95_s} inside those
    intervals; ``active`` -> the same outside them."""


@dataclass(frozen=True)
class Floor:
    name: str
    value: float | None
    limit: float
    unit: str
    ok: bool | None
    """None: nothing to measure (no such stream or event)."""
    detail: str = ""


@dataclass(frozen=True)
class Scorecard:
    streams: Mapping[str, StreamScore]
    floors: tuple[Floor, ...]
    latency_p50_s: float | None
    latency_p99_s: float | None
    bundles: Mapping[str, Any]
    ignored: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(f.ok is not False for f in self.floors)

    def to_json(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, Mapping):
                return {str(k): clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            if hasattr(x, "__dataclass_fields__"):
                return {k: clean(getattr(x, k)) for k in x.__dataclass_fields__}
            return x

        return clean(
            {
                "ok": self.ok,
                "floors": self.floors,
                "streams": self.streams,
                "latency_p50_s": self.latency_p50_s,
                "latency_p99_s": self.latency_p99_s,
                "bundles": self.bundles,
                "ignored": self.ignored,
            }
        )

    def format(self) -> str:
        """The printed scorecard (plain text, fixed-width)."""
        lines = [
            "errors vs partner (steady state; abs = against the reference timeline, incl. the anchor's latency)",
            (
                "stream          modality vs          events settle_s flag_s  p50_ms  p95_ms  max_ms floor_ms abs_p95_ms "
                "drift_p95_ppm recover_s in_2u"
            ),
        ]
        for s in self.streams.values():
            rec = ",".join("-" if r is None else f"{r:.1f}" for _, _, r in s.recoveries) or "."
            lines.append(
                f"{s.stream:<15} {s.modality:<8} {(s.partner or '(anchor)')[:11]:<11} {s.events:>6} "
                f"{_f(s.settle_s, 1):>8} {_f(s.flag_settle_s, 1):>6} {_ms(s.p50_s):>7} {_ms(s.p95_s):>7} "
                f"{_ms(s.max_s):>7} {s.floor_s * 1e3:>8.2f} {_ms(s.abs_p95_s):>10} {_f(s.drift_err_p95_ppm, 2):>13} "
                f"{rec:>9} {_f(s.within_2u, 2):>5}"
            )
        lines.append("")
        lines.append("by method (steady state)       events  p50_ms  p95_ms  confidence")
        for s in self.streams.values():
            for m, st in sorted(s.by_method.items()):
                lines.append(
                    f"  {s.stream:<15} {m:<12} {int(st['events']):>7} {_ms(st['p50_s']):>7} {_ms(st['p95_s']):>7} "
                    f"{_f(st['mean_confidence'], 2):>10}"
                )
        fb = [
            (s.stream, k, v)
            for s in self.streams.values()
            for k, v in s.fallback.items()
            if k != "active" and v["events"]
        ]
        if fb:
            lines.append("")
            lines.append(
                "fallback: silence / no motion         events  methods                      confidence  p95_ms"
            )
            for sid, kind, v in fb:
                methods = " ".join(f"{m}:{c}" for m, c in sorted(v["methods"].items()))
                lines.append(
                    f"  {sid:<15} {kind:<8} {v['events']:>18}  {methods:<28} {_f(v['mean_confidence'], 2):>10} "
                    f"{_ms(v['p95_s']):>7}"
                )
            for s in self.streams.values():
                a = s.fallback.get("active")
                if a and a["events"] and any(v["events"] for k, v in s.fallback.items() if k != "active"):
                    methods = " ".join(f"{m}:{c}" for m, c in sorted(a["methods"].items()))
                    lines.append(
                        f"  {s.stream:<15} {'active':<8} {a['events']:>18}  {methods:<28} "
                        f"{_f(a['mean_confidence'], 2):>10} {_ms(a['p95_s']):>7}"
                    )
        if self.bundles.get("events"):
            b = self.bundles
            lines.append("")
            lines.append(
                f"bundles: {b['events']} sets, {b['incomplete']} incomplete, member |error| p95 "
                f"{_ms(b['p95_s'])} ms, within half a sample + floor: {b['within_frac'] * 100:.1f}%, "
                f"members reused: {b['reused']}"
            )
        lines.append("")
        lines.append(f"event latency p50 {_ms(self.latency_p50_s)} ms, p99 {_ms(self.latency_p99_s)} ms")
        lines.append("")
        lines.append("floors")
        for f in self.floors:
            mark = "n/a " if f.ok is None else ("ok  " if f.ok else "FAIL")
            val = "-" if f.value is None else f"{f.value:.4g}"
            lines.append(f"  [{mark}] {f.name:<42} {val:>10} {f.unit:<4} (limit {f.limit:g}) {f.detail}")
        if self.ignored:
            lines.append("")
            lines.append("ignored events: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.ignored.items())))
        return "\n".join(lines)


def _f(x: float | None, nd: int) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def _ms(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 1e3:.3f}"


def _pct(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if x.size else None


def _inside(t: float, intervals: Iterable[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in intervals)


class Scorer:
    """Accumulates events against one truth. ``add(header)`` takes one decoded event header."""

    def __init__(self, truth: Truth, cfg: ScoreConfig | None = None) -> None:
        self.truth = truth
        self.cfg = cfg or ScoreConfig()
        self._obs: dict[str, list[_Obs]] = defaultdict(list)
        self._ref: dict[str, str] = {}
        self._latency: list[float] = []
        self._ignored: dict[str, int] = defaultdict(int)
        self._bundle_err: list[float] = []
        self._bundle_within: list[bool] = []
        self._bundle_events = 0
        self._bundle_incomplete = 0
        self._bundle_used: dict[str, set] = defaultdict(set)
        self._bundle_reused = 0
        streams = truth.streams
        self.anchor = self.cfg.anchor or self._auto_anchor()
        if self.anchor not in streams:
            raise ConfigError(f"score anchor {self.anchor!r} is not a stream of the truth ({', '.join(streams)})")
        cams = sorted((s for s in streams.values() if s.modality == "video"), key=lambda s: -s.rate_hz)
        self.partners: dict[str, str] = {}
        for sid, st in streams.items():
            if sid == self.anchor:
                continue
            p = self.cfg.partners.get(sid)
            if p is None:
                p = cams[0].stream if st.modality == "sensor" and cams else self.anchor
            if p not in streams or p == sid:
                raise ConfigError(f"score partner {p!r} of {sid!r} is not another stream of the truth")
            self.partners[sid] = p

    def _auto_anchor(self) -> str:
        streams = list(self.truth.streams.values())
        for pick in (lambda s: s.device == "room_mic", lambda s: s.modality == "audio", lambda s: True):
            for st in streams:
                if pick(st):
                    return st.stream
        raise ConfigError("the truth has no streams to score")

    def floor_s(self, sid: str) -> float:
        st = self.truth.stream(sid)
        if st.modality == "audio":
            return self.cfg.audio_floor_s
        if st.modality == "video":
            return self.cfg.video_floor_frames / st.rate_hz
        partner = self.truth.streams.get(self.partners.get(sid, ""))
        if partner is not None and partner.modality == "video":
            return self.cfg.video_floor_frames / partner.rate_hz
        return self.cfg.video_floor_frames / 30.0

    def add(self, ev: Mapping[str, Any]) -> None:
        name = ev.get("event")
        lat = ev.get("latency_s")
        if isinstance(lat, (int, float)) and math.isfinite(lat) and name in (OFFSET_EVENT, BUNDLE_EVENT):
            self._latency.append(float(lat))
        if name == OFFSET_EVENT:
            self._add_offset(ev)
        elif name == BUNDLE_EVENT:
            self._add_bundle(ev)
        else:
            self._ignored[str(name)] += 1

    def add_all(self, events: Iterable[Mapping[str, Any]]) -> Scorer:
        for ev in events:
            self.add(ev)
        return self

    def _add_offset(self, ev: Mapping[str, Any]) -> None:
        sid = ev.get("stream")
        if sid not in self.truth.streams:
            self._ignored[f"{OFFSET_EVENT} (stream not in truth)"] += 1
            return
        try:
            t_ref = float(ev["t_s"])
            offset = float(ev["offset_s"])
            drift = float(ev.get("drift_ppm", math.nan))
        except (KeyError, TypeError, ValueError):
            self._ignored[f"{OFFSET_EVENT} (malformed)"] += 1
            return
        ref = ev.get("reference") or HOST
        if ref != HOST and ref not in self.truth.streams:
            self._ignored[f"{OFFSET_EVENT} (reference not in truth)"] += 1
            return
        self._ref[sid] = ref
        truth = self.truth
        t_scene = truth.scene_of_ref(t_ref, ref)
        t_local = ev.get("t_local_s")
        if isinstance(t_local, (int, float)) and math.isfinite(t_local):
            # the truth of the sample the estimate is about: at t_ref, an estimate of the last sample before a
            # clock step, late by the anchor's latency (which nothing can see), was scored against the clock
            # after the step: 1500 ms off in one `make demo` event of three
            err = truth.error_of(sid, float(t_local), t_ref, offset, ref)
        else:
            err = offset - truth.offset_at(sid, t_ref, ref)
        derr = drift - truth.drift_ppm_of(sid, ref)
        conf = ev.get("confidence", math.nan)
        unc = ev.get("uncertainty_s", math.nan)
        self._obs[sid].append(
            _Obs(
                t=t_scene,
                err_s=err,
                drift_err_ppm=derr,
                method=str(ev.get("method", "?")),
                settled=bool(ev.get("settled", False)),
                confidence=float(conf) if isinstance(conf, (int, float)) else math.nan,
                uncertainty_s=float(unc) if isinstance(unc, (int, float)) else math.nan,
            )
        )

    def _add_bundle(self, ev: Mapping[str, Any]) -> None:
        """A set: ``t_s`` and ``members`` (a list of maps with ``stream``, ``index`` and ``t_local_s``, or a map
        stream -> such a map). Each member's error is the reference time its sample sensed minus ``t_s``,
        taken relative to the anchor's error in the same set when the anchor is a member; it is within bounds
        when below half a sample of the member (and of the anchor) plus the member's floor."""
        try:
            t_ref = float(ev["t_s"])
        except (KeyError, TypeError, ValueError):
            self._ignored[f"{BUNDLE_EVENT} (malformed)"] += 1
            return
        members = ev.get("members", [])
        if isinstance(members, Mapping):
            members = [{"stream": k, **v} for k, v in members.items() if isinstance(v, Mapping)]
        ref = ev.get("reference") or HOST
        self._bundle_events += 1
        if ev.get("incomplete"):
            self._bundle_incomplete += 1
        if ref != HOST and ref not in self.truth.streams:
            return
        errs: dict[str, float] = {}
        for m in members:
            if not isinstance(m, Mapping):
                continue
            sid = m.get("stream")
            tl = m.get("t_local_s")
            if sid not in self.truth.streams or not isinstance(tl, (int, float)):
                continue
            idx = m.get("index")
            if idx is not None:
                if idx in self._bundle_used[sid]:
                    self._bundle_reused += 1
                self._bundle_used[sid].add(idx)
            # when the member's sample was sensed, against the tick (as `_add_offset`: the member's own truth, on
            # its side of a clock step)
            errs[sid] = self.truth.ref_of_sample(sid, float(tl), t_ref, ref) - t_ref
        base = errs.get(self.anchor)
        for sid, e in errs.items():
            if sid == self.anchor and len(errs) > 1:
                continue
            half = 0.5 / self.truth.stream(sid).rate_hz
            if base is not None and sid != self.anchor:
                e -= base
                half += 0.5 / self.truth.stream(self.anchor).rate_hz
            self._bundle_err.append(abs(e))
            self._bundle_within.append(abs(e) <= half + self.floor_s(sid))

    def live_line(self) -> str:
        """One line: each stream's newest |error| against its partner (ms), method and settled flag, for a
        live display of offsets converging (``warpsync simulate --score`` prints it every few seconds)."""
        parts = []
        for sid in self.truth.streams:
            own = self._obs.get(sid)
            if not own:
                continue
            o = own[-1]
            partner = self.partners.get(sid)
            err = o.err_s
            if partner and self._obs.get(partner):
                err -= self._obs[partner][-1].err_s
            flag = "*" if o.settled else " "
            parts.append(f"{sid} {abs(err) * 1e3:.2f}ms {o.method}{flag}")
        return " | ".join(parts) if parts else "(no sync.offset events yet)"

    # ------------------------------------------------------------------------------------ results

    def _relative(self, sid: str, partner: str | None = None) -> tuple[list[_Obs], int]:
        """The stream's observations with the partner's error at the same hop subtracted; (obs, unpaired).
        `partner` defaults to the stream's scored partner."""
        obs = sorted(self._obs.get(sid, []), key=lambda o: o.t)
        partner = self.partners.get(sid) if partner is None else partner
        if partner is None:
            return obs, 0
        pobs = sorted(self._obs.get(partner, []), key=lambda o: o.t)
        if not pobs:
            if self._ref.get(sid) == partner:
                return obs, 0  # the partner is the reference: errors are relative to it already
            return [], len(obs)
        pt = np.array([o.t for o in pobs])
        out: list[_Obs] = []
        unpaired = 0
        for o in obs:
            i = int(np.searchsorted(pt, o.t))
            cands = [j for j in (i - 1, i) if 0 <= j < pt.size]
            j = min(cands, key=lambda j: abs(pt[j] - o.t))
            if abs(pt[j] - o.t) > self.cfg.pair_gap_s:
                unpaired += 1
                continue
            p = pobs[j]
            out.append(
                _Obs(
                    o.t,
                    o.err_s - p.err_s,
                    o.drift_err_ppm - p.drift_err_ppm,
                    o.method,
                    o.settled and p.settled,
                    o.confidence,
                    o.uncertainty_s,
                )
            )
        return out, unpaired

    def _stream_score(self, sid: str) -> StreamScore:
        cfg = self.cfg
        truth = self.truth
        st = truth.stream(sid)
        floor = self.floor_s(sid)
        partner = self.partners.get(sid, "")
        obs, _ = self._relative(sid)
        t = np.array([o.t for o in obs])
        err = np.abs(np.array([o.err_s for o in obs]))
        disruptions = sorted(truth.events_s(sid) + (truth.events_s(partner) if partner else []), key=lambda e: e[1])
        start = st.start_s
        first_d = disruptions[0][1] if disruptions else math.inf
        settle = _stay_within(t, err, floor, start, first_d)
        flag = next((o.t - start for o in obs if o.settled), None)
        quiet = list(truth.silence) + list(truth.still)

        def steady(o: _Obs) -> bool:
            if not o.settled or _inside(o.t, quiet):
                return False
            return not any(d <= o.t < d + cfg.grace_s for _, d in disruptions)

        sel = np.array([steady(o) for o in obs], dtype=bool) if obs else np.zeros(0, dtype=bool)
        es = err[sel] if obs else np.zeros(0)
        own = sorted(self._obs.get(sid, []), key=lambda o: o.t)
        abs_err = np.array([abs(o.err_s) for o in own if steady(o)])
        dr = np.array(
            [abs(o.drift_err_ppm) for o in obs if o.t - start >= cfg.drift_after_s and math.isfinite(o.drift_err_ppm)]
        )
        recs = []
        t_last = float(t[-1]) if t.size else -math.inf
        for i, (kind, d) in enumerate(disruptions):
            if d >= t_last:
                break  # the run (or its events) ended before this disruption: nothing to score
            nxt = disruptions[i + 1][1] if i + 1 < len(disruptions) else math.inf
            recs.append((kind, d, _stay_within(t, err, floor, d, nxt)))
        # calibration: the published uncertainty is against the anchor (content sync cannot see the anchor's own
        # latency), so the error it should cover is the one against the anchor at the same hop
        cal_obs = self._relative(sid, self.anchor)[0] if sid != self.anchor else []
        cal = [abs(o.err_s) <= 2.0 * o.uncertainty_s for o in cal_obs if steady(o) and math.isfinite(o.uncertainty_s)]
        by_method: dict[str, dict[str, float]] = {}
        for m in sorted({o.method for o in obs}):
            msel = np.array([o.method == m for o in obs]) & sel
            e = err[msel]
            conf = np.array([o.confidence for o, s in zip(obs, msel) if s])
            by_method[m] = {
                "events": int(msel.sum()),
                "p50_s": _pct(e, 50),
                "p95_s": _pct(e, 95),
                "mean_confidence": float(np.nanmean(conf)) if conf.size and np.isfinite(conf).any() else None,
            }
        fallback: dict[str, dict[str, Any]] = {}
        for kind, ivs in (("silence", truth.silence), ("still", truth.still), ("active", None)):
            if ivs is None:
                pick = [o for o in obs if o.settled and not _inside(o.t, quiet)]
            else:
                pick = [o for o in obs if _inside(o.t, ivs)]
            methods: dict[str, int] = defaultdict(int)
            for o in pick:
                methods[o.method] += 1
            conf = np.array([o.confidence for o in pick])
            fallback[kind] = {
                "events": len(pick),
                "methods": dict(methods),
                "mean_confidence": float(np.nanmean(conf)) if conf.size and np.isfinite(conf).any() else None,
                "p95_s": _pct(np.abs(np.array([o.err_s for o in pick])), 95),
            }
        return StreamScore(
            stream=sid,
            modality=st.modality,
            reference=self._ref.get(sid, HOST),
            partner=partner,
            floor_s=floor,
            events=len(own),
            abs_p95_s=_pct(abs_err, 95),
            settle_s=settle,
            flag_settle_s=flag,
            p50_s=_pct(es, 50),
            p95_s=_pct(es, 95),
            max_s=float(es.max()) if es.size else None,
            steady_events=int(es.size),
            within_2u=float(np.mean(cal)) if cal else None,
            drift_err_p95_ppm=_pct(dr, 95),
            drift_err_max_ppm=float(dr.max()) if dr.size else None,
            events_after_drift=sum(1 for o in obs if o.t - start >= cfg.drift_after_s),
            recoveries=tuple(recs),
            by_method=by_method,
            fallback=fallback,
        )

    def scorecard(self) -> Scorecard:
        cfg = self.cfg
        streams = {sid: self._stream_score(sid) for sid in self.truth.streams if sid in self._obs}
        scored = [s for s in streams.values() if s.partner and s.reference != s.stream]
        floors: list[Floor] = []

        def worst(vals: list[tuple[str, float | None]], limit: float, name: str, unit: str, scale: float = 1.0) -> None:
            have = [(sid, v) for sid, v in vals if v is not None]
            missing = [sid for sid, v in vals if v is None]
            if not vals:
                floors.append(Floor(name, None, limit * scale, unit, None, "no such stream scored"))
                return
            if missing:
                floors.append(Floor(name, None, limit * scale, unit, False, "never reached: " + ", ".join(missing)))
                return
            sid, v = max(have, key=lambda x: x[1])
            floors.append(Floor(name, v * scale, limit * scale, unit, v <= limit, f"worst: {sid}"))

        audio = [(s.stream, s.p95_s) for s in scored if s.modality == "audio"]
        worst(audio, cfg.audio_floor_s, "audio<->audio |offset error| p95", "ms", 1e3)
        for mod, label in (("video", "video<->audio"), ("sensor", "IMU<->video")):
            rows = [s for s in scored if s.modality == mod]
            if not rows:
                floors.append(Floor(f"{label} p95 / quarter frame", None, 1.0, "x", None, "no such stream scored"))
                continue
            ratios = [(s.stream, None if s.p95_s is None else s.p95_s / s.floor_s) for s in rows]
            worst(ratios, 1.0, f"{label} p95 / quarter frame", "x")
        long_enough = [s for s in scored if s.events_after_drift > 0]
        if scored and not long_enough:
            floors.append(
                Floor(
                    f"drift error p95 after {cfg.drift_after_s:g} s",
                    None,
                    cfg.drift_floor_ppm,
                    "ppm",
                    None,
                    f"no events {cfg.drift_after_s:g} s after a stream's start: run longer",
                )
            )
        else:
            worst(
                [(s.stream, s.drift_err_p95_ppm) for s in long_enough],
                cfg.drift_floor_ppm,
                f"drift error p95 after {cfg.drift_after_s:g} s",
                "ppm",
            )
        worst([(s.stream, s.settle_s) for s in scored], cfg.settle_floor_s, "settle time (error within floor)", "s")
        # the recovery floor names clock jumps and publisher restarts; a capture latency change, which only
        # content can see, gets its own line when the run has one, held to the same limit
        for latency, name in ((False, "recovery after jump/restart"), (True, "recovery after a latency change")):
            recs = [
                (f"{s.stream}:{kind}@{d:.1f}", r)
                for s in scored
                for kind, d, r in s.recoveries
                if (kind == "latency") == latency
            ]
            if recs or not latency:
                worst(recs, cfg.recover_floor_s, name, "s")
        lat = np.array(self._latency)
        p99 = _pct(lat, 99)
        floors.append(
            Floor(
                "event latency p99",
                None if p99 is None else p99 * 1e3,
                cfg.latency_floor_s * 1e3,
                "ms",
                None if p99 is None else p99 <= cfg.latency_floor_s,
                "" if lat.size else "no latencies measured",
            )
        )
        berr = np.array(self._bundle_err)
        bundles = {
            "events": self._bundle_events,
            "incomplete": self._bundle_incomplete,
            "p95_s": _pct(berr, 95),
            "within_frac": float(np.mean(self._bundle_within)) if self._bundle_within else 0.0,
            "reused": self._bundle_reused,
        }
        return Scorecard(streams, tuple(floors), _pct(lat, 50), p99, bundles, dict(self._ignored))


def _stay_within(t: np.ndarray, err: np.ndarray, floor: float, t_from: float, t_until: float) -> float | None:
    """Seconds from ``t_from`` to the first event in [t_from, t_until) that is within ``floor`` and after which
    the error *stays* within it: no two consecutive events beyond it and at least 95 % of them within (the
    floors are p95s, so an isolated outlier does not undo settling). None if never (or no event in range)."""
    sel = (t >= t_from) & (t < t_until)
    if not sel.any():
        return None
    tt, ee = t[sel], err[sel]
    good = ee <= floor
    n = good.size
    pair = np.nonzero(~good[:-1] & ~good[1:])[0]
    first = int(pair[-1]) + 2 if pair.size else 0
    suffix_good = np.cumsum(good[::-1])[::-1]
    frac = suffix_good / (n - np.arange(n))
    for i in range(first, n):
        if good[i] and frac[i] >= 0.95:
            return float(tt[i] - t_from)
    return None


def score(truth: Truth, events: Iterable[Mapping[str, Any]], cfg: ScoreConfig | None = None) -> Scorecard:
    """One-shot: score all ``events`` against ``truth``."""
    return Scorer(truth, cfg).add_all(events).scorecard()
