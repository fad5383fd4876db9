"""Every window content sync measures on a simulated rig, beside the lag the truth says it should have found.

Run: .venv/bin/python tools/engine/trace_windows.py [--rig FILE] [--seed N] [--duration S] [--stream NAME ...]
     [--content KEY=VALUE ...] [--out FILE.jsonl] [--until-lock] [--every-window] [--events]

The rig is replayed through `EngineStage` as `tests/benchmarks/bench_engine.py` does; `SyncEngine.on_window` hands
over each window a hop measures (`WindowTrace`). The true lag of a window is what would put the stream where the
truth has it relative to its partner: minus the difference of their published errors (offset minus
`Truth.offset_at`) at the last `sync.offset` event of each at or before the window's end (with `publish_lead` off,
whatever `--content` says: leads move what is published before a lock, not what is measured). A window is `right`
when its lag is within the floor of that (a quarter frame of the camera for a pair with one, 1 ms otherwise). Prints, per stream, the windows by reason and prominence, right or not; `--out` writes every window as a
JSON line (stream, partner, window, search range, lag and its sigma, correlation, prominence, reason, outcome, the
coincidence bound `chance` of a sensor's impact window before its first lock, true lag, and `true_lag_anchor_s`: the
lag that would put the stream right against the session's content anchor, which differs from the true lag while
the partner's own mapping is off, e.g. a sensor still on its clock).
`--until-lock` keeps only the windows before each stream's first lock (what acquisition saw). `--every-window`
also measures the sources a hop did not need (a camera on a sensor that has learned its contact response stops at
the first informative of its window through the response and its window against the sensor), written with
`used` false and left out of the printed table: what each source would have said at every hop.
A locked camera's window measured one event at a time (`content.event_lags`) carries its events: `--out` writes
each one's time, lag, correlation and error against the window's true lag, and `--events` prints them beside the
kick nearest each (its object, launch or stop, how far from the kick's middle with the camera's own error in it,
and whether the window's camera sees it, `warpsync.sim.visibility.seen_kicks`): an event the camera does not see,
kept, is what pulls a window off
(docs/engine-log.md, "A locked camera's two sources and its events: eight variants, none kept").

What an acquisition rule is measured on (docs/engine-log.md, "Two hops of new data"; earlier rules were measured the
same way with scripts that were not kept): which windows it would have taken, and whether they were right.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import dataclasses
import json
import sys

from prometheus_client import CollectorRegistry

from warpsync.config import parse_overrides
from warpsync.engine.config import ContentConfig, EngineConfig
from warpsync.engine.hop import WindowTrace
from warpsync.engine.stage import EngineStage
from warpsync.errors import ConfigError
from warpsync.sim import Simulator, load_rig
from warpsync.sim.run import replay_offline
from warpsync.sim.truth import HOST
from warpsync.sim.visibility import seen_kicks


def trace(
    sim: Simulator, duration_s: float, cfg: EngineConfig, every_window: bool = False
) -> tuple[list[WindowTrace], dict[str, tuple], dict[str, str], dict[str, str]]:
    """The simulator's rig replayed through the engine: every window measured, each stream's published errors
    ``(times, errors)`` against the truth, each stream's session anchor, and the reference timeline each stream's
    events are on (``host`` or a stream id)."""
    stage = EngineStage(cfg, CollectorRegistry())
    windows: list[WindowTrace] = []
    stage.engine.on_window = windows.append
    stage.engine.trace_every_window = every_window
    errors: dict[str, tuple[list, list]] = collections.defaultdict(lambda: ([], []))
    references: dict[str, str] = {}

    def on_events(evs, _now):
        for ev in evs:
            sid = ev.get("stream")
            if ev.get("event") != "sync.offset" or sid not in sim.truth.streams:
                continue
            ref = ev.get("reference") or HOST
            references[sid] = ref
            ts, es = errors[sid]
            ts.append(float(ev["t_s"]))
            es.append(float(ev["offset_s"]) - sim.truth.offset_at(sid, float(ev["t_s"]), ref))

    replay_offline(sim, stage, duration_s, on_events=on_events)
    eng = stage.engine
    anchors = {name: eng.sessions[st.session].anchor for name, st in eng.streams.items()}
    return windows, dict(errors), anchors, references


def tolerance_s(truth, w: WindowTrace) -> float:
    """The floor a window's lag is judged by: a quarter frame of the pair's camera, else 1 ms."""
    hz = [truth.streams[s].rate_hz for s in (w.stream, w.partner) if truth.streams[s].modality == "video"]
    return 0.25 / min(hz) if hz else 0.001


def true_lag(errors: dict[str, tuple[list, list]], w: WindowTrace, against: str | None = None) -> float | None:
    """The lag that would put `w.stream` where the truth has it against its partner (or against the stream
    `against`), at the window's end."""
    at = [error_at(errors, sid, w.T_end) for sid in (w.stream, w.partner if against is None else against)]
    return None if None in at else -(at[0] - at[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default=None, help="rig TOML (default configs/rigs/default.toml)")
    ap.add_argument("--seed", type=int, default=None, help="the rig's seed (default: the rig file's)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of signal (default 30)")
    ap.add_argument("--stream", action="append", default=[], help="only these streams (repeatable)")
    ap.add_argument("--content", action="append", default=[], metavar="KEY=VALUE", help="an [engine.content] setting")
    ap.add_argument("--out", default=None, help="write every window as a JSON line here")
    ap.add_argument("--until-lock", action="store_true", help="only the windows before each stream's first lock")
    ap.add_argument(
        "--every-window", action="store_true", help="also measure the sources a hop did not need (written, not counted)"
    )
    ap.add_argument(
        "--events", action="store_true", help="print each event of a locked camera's windows beside the nearest kick"
    )
    args = ap.parse_args()
    rig = load_rig(args.rig)
    if args.seed is not None:
        rig = dataclasses.replace(rig, seed=args.seed)
    try:
        content = parse_overrides(args.content, ContentConfig, "--content")
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    # the true lags are read off the published errors, which must be those of the engine's own mapping: a lead
    # (`publish_lead`) moves what is published before a lock, never what is measured
    cfg = EngineConfig(content=dataclasses.replace(ContentConfig(), **{**content, "publish_lead": False}))
    sim = Simulator(rig)
    windows, errors, anchors, references = trace(sim, args.duration, cfg, args.every_window)
    locked_once: set[str] = set()
    rows = []
    for w in windows:
        if args.stream and w.stream not in args.stream:
            continue
        if w.locked:
            locked_once.add(w.stream)
        if args.until_lock and w.stream in locked_once:
            continue
        m, truth = w.measurement, true_lag(errors, w)
        right = None if truth is None else abs(m.lag_s - truth) <= tolerance_s(sim.truth, w)
        rows.append((w, truth, right))
    if args.out:
        with open(args.out, "w") as fh:
            for w, truth, right in rows:
                m = w.measurement
                row = {"stream": w.stream, "partner": w.partner, "against": w.against}
                row |= {"T_start": w.T_start, "T_end": w.T_end}
                row |= {"search_s": w.search_s, "lag_s": m.lag_s, "sigma_s": m.sigma_s}
                row |= {"corr": m.corr, "prominence": m.prominence}
                row |= {"informative": m.informative, "reason": m.reason, "locked": w.locked, "outcome": w.outcome}
                row |= {"chance": m.chance}
                row |= {"true_lag_s": truth, "right": right, "used": w.used}
                row |= {"true_lag_anchor_s": true_lag(errors, w, anchors.get(w.stream) or w.partner)}
                row |= {"events": [_event_row(e, truth) for e in m.events]}
                fh.write(json.dumps(row) + "\n")
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for w, _truth, right in rows:
        if not w.used:
            continue
        m = w.measurement
        prom = "<0.1" if m.prominence < 0.1 else "<0.2" if m.prominence < 0.2 else ">=0.2"
        table[w.stream][(m.reason or "informative", prom, "locked" if w.locked else "unlocked", right)] += 1
    print(f"rig {rig.name!r}, seed {rig.seed}, {args.duration:g} s: {sum(w.used for w in windows)} windows")
    print(f"{'stream':10} {'reason':12} {'prom':6} {'state':9} {'right':>6} {'wrong':>6} {'no truth':>8}")
    for sid in sorted(table):
        keys = sorted({k[:3] for k in table[sid]})
        for k in keys:
            c = table[sid]
            print(f"{sid:10} {k[0]:12} {k[1]:6} {k[2]:9} {c[k + (True,)]:6} {c[k + (False,)]:6} {c[k + (None,)]:8}")
    if args.events:
        print_events(sim, rig, args.duration, rows, errors, anchors, references)
    return 0


def _event_row(e: tuple[float, float, float], truth: float | None) -> dict:
    t, lag, corr = e
    return {"t": t, "lag_s": lag, "corr": corr, "err_s": None if truth is None else lag - truth}


def nearest_kicks(sim: Simulator, camera, duration_s: float):
    """Every kick of every object of the scene as (its middle in scene seconds, the object, whether it is a launch,
    whether `camera` sees it), sorted by the middle. Objects start at rest, so launches and stops alternate."""
    scene = sim.scene
    rows = []
    for obj in range(sim.rig.scene.objects):
        kt, seen = seen_kicks(scene, camera, obj, 0.0, duration_s + 1.0)
        for j, (k, v) in enumerate(zip(kt, seen, strict=True)):
            rows.append((float(k) + scene.cfg.kick_s / 2, obj, j % 2 == 0, bool(v)))
    rows.sort()
    return rows


def scene_time(sim: Simulator, T: float, anchor: str, errors: dict, references: dict) -> float | None:
    """The scene time at reference time `T` of the engine's timeline. That timeline is the session anchor's: on
    the host clock, where the anchor's capture latency (and its network path) puts it, which the anchor's published
    error says; or on a reference stream's own clock. None before the anchor has published."""
    at = error_at(errors, anchor, T, earliest=True)
    if at is None:
        return None
    return sim.truth.scene_of_ref(T, references.get(anchor, HOST)) + at


def error_at(errors: dict, sid: str, T: float, earliest: bool = False) -> float | None:
    """`sid`'s published error at its last event at or before `T`; before its first one, None (`earliest`: that
    first one's)."""
    ts, es = errors.get(sid, ((), ()))
    i = bisect.bisect_right(ts, T) - 1
    if i < 0 and earliest and ts:
        i = 0
    return es[i] if i >= 0 else None


def print_events(sim: Simulator, rig, duration_s: float, rows, errors, anchors, references) -> None:
    """Each event of each used window that has them, beside the kick nearest it."""
    cameras = {c.name: c for c in rig.cameras}
    kicks: dict[str, list] = {}
    mids: dict[str, list[float]] = {}
    print(
        "events: window end, source; per event its time, error (ms), correlation, the nearest kick (object, launch"
        " or stop, event minus the kick's middle in ms with the camera's own error in it, seen by the camera)"
    )
    for w, truth, _right in rows:
        m = w.measurement
        cam = next((x for x in (w.stream, w.partner) if x in cameras), None)
        if not (w.used and m.events and cam):
            continue
        if cam not in kicks:
            kicks[cam] = nearest_kicks(sim, cameras[cam], duration_s)
            mids[cam] = [k[0] for k in kicks[cam]]
        err = "-" if truth is None else f"{1e3 * (m.lag_s - truth):+.2f} ms"
        print(f"{w.stream:8} {w.T_end:7.2f} s  {w.against or w.partner:9} window error {err}")
        for t, lag, corr in m.events:
            s = scene_time(sim, t, anchors.get(w.stream, ""), errors, references)
            near = None
            if s is not None:
                cam_mids = mids[cam]
                i = bisect.bisect_left(cam_mids, s)
                near = min(
                    (j for j in (i - 1, i) if 0 <= j < len(cam_mids)), key=lambda j: abs(cam_mids[j] - s), default=None
                )
            e = "-" if truth is None else f"{1e3 * (lag - truth):+7.2f}"
            if near is None:
                print(f"    {t:7.2f} s  {e} ms  {corr:.2f}")
                continue
            _, obj, launch, seen = kicks[cam][near]
            kind = "launch" if launch else "stop"
            print(
                f"    {t:7.2f} s  {e} ms  {corr:.2f}  object {obj} {kind:6} {1e3 * (s - mids[cam][near]):+7.1f} ms"
                f"  {'seen' if seen else 'not seen'}"
            )


if __name__ == "__main__":
    sys.exit(main())
