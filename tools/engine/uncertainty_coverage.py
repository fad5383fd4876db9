"""How far each locked estimate's published uncertainty is from its error, by time since the stream's first lock.

Run: .venv/bin/python tools/engine/uncertainty_coverage.py [--seeds 1-56] [--duration 25] [--rig F]

Replays each seed of the rig through `EngineStage` (as `bench_engine.py` does) and scores every `sync.offset` of
the cameras and sensors with `Scorer`: the error against the session's anchor (what the published uncertainty is
about: content sync cannot see the anchor's own latency) beside `uncertainty_s`, for the events whose method is
`content` or `fused`. Per stream and 2 s bin since its first locked event it prints the median |error|, the
median uncertainty, the share within twice the uncertainty, the share within the stream's floor (against its scored
partner, as the scorecard counts it), the share flagged settled, and the settled events beyond the floor. Last,
per stream, percentiles of |error| / uncertainty over all those events, and the seeds whose share within twice the
uncertainty would fall under 0.9 if every uncertainty were scaled by 0.7 or 0.5: whether the uncertainty (and the
`settled` flag that waits for it) has room to shrink. docs/engine-log.md, "How far the published uncertainty is
from the error", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections import defaultdict

import numpy as np
from prometheus_client import CollectorRegistry

from warpsync.engine.config import EngineConfig
from warpsync.engine.stage import EngineStage
from warpsync.sim import Simulator, load_rig
from warpsync.sim.run import replay_offline
from warpsync.sim.score import Scorer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _seeds import parse_seeds

LOCKED = ("content", "fused")
BIN_S = 2.0


def locked_events(rig, duration_s: float) -> list[dict]:
    """Every locked `sync.offset` of the rig's cameras and sensors: stream, seconds since its first locked event,
    uncertainty, settled, |error| against the anchor and against the scored partner, the stream's floor."""
    sim = Simulator(rig)
    stage = EngineStage(EngineConfig(), CollectorRegistry())
    scorer = Scorer(sim.truth)
    replay_offline(sim, stage, duration_s, on_events=lambda evs, _now: scorer.add_all(evs))
    rows = []
    for sid, st in sim.truth.streams.items():
        if st.modality not in ("video", "sensor") or sid == scorer.anchor:
            continue
        against_anchor = {o.t: o for o in scorer._relative(sid, scorer.anchor)[0]}
        locked = [o for o in scorer._relative(sid)[0] if o.method in LOCKED and o.t in against_anchor]
        if not locked:
            continue
        t_lock = locked[0].t
        for o in locked:
            rows.append(
                {
                    "seed": rig.seed,
                    "stream": sid,
                    "since_lock_s": o.t - t_lock,
                    "unc_s": o.uncertainty_s,
                    "settled": o.settled,
                    "err_anchor_s": abs(against_anchor[o.t].err_s),
                    "err_s": abs(o.err_s),
                    "floor_s": scorer.floor_s(sid),
                }
            )
    return rows


def report(rows: list[dict], max_since_s: float = 16.0) -> None:
    by_bin: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in rows:
        if r["since_lock_s"] < max_since_s:
            by_bin[(r["stream"], int(r["since_lock_s"] // BIN_S))].append(r)
    print("stream   since lock  events  |err| med  unc med  within 2u  within floor  settled  settled beyond floor")
    for (sid, b), rs in sorted(by_bin.items()):
        e = np.array([r["err_anchor_s"] for r in rs])
        u = np.array([r["unc_s"] for r in rs])
        ef = np.array([r["err_s"] for r in rs])
        fl = np.array([r["floor_s"] for r in rs])
        st = np.array([r["settled"] for r in rs])
        print(
            f"{sid:8} {b * BIN_S:4.0f}-{(b + 1) * BIN_S:<4.0f} s {len(rs):7d} {np.median(e) * 1e3:8.2f} ms "
            f"{np.median(u) * 1e3:6.2f} ms {np.mean(e <= 2 * u):9.2f} {np.mean(ef <= fl):13.2f} {st.mean():8.2f} "
            f"{int(np.sum(st & (ef > fl))):21d}"
        )
    for sid in sorted({r["stream"] for r in rows}):
        rs = [r for r in rows if r["stream"] == sid]
        q = np.array([r["err_anchor_s"] / r["unc_s"] for r in rs])
        p = np.percentile(q, [50, 90, 95, 99, 100])
        print(
            f"{sid}: |error| / uncertainty over {len(rs)} events: p50 {p[0]:.2f} p90 {p[1]:.2f} p95 {p[2]:.2f} "
            f"p99 {p[3]:.2f} max {p[4]:.2f}"
        )
        for scale in (1.0, 0.7, 0.5):
            per: dict[int, list[bool]] = defaultdict(list)
            for r in rs:
                per[r["seed"]].append(r["err_anchor_s"] <= 2 * scale * r["unc_s"])
            low = sorted(s for s, v in per.items() if np.mean(v) < 0.9)
            print(f"   uncertainty x {scale}: seeds within 2u on less than 0.9 of their events: {low or 'none'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-56", help="seeds, e.g. 1-56 or 1,4,9 (default 1-56)")
    ap.add_argument("--duration", type=float, default=25.0, help="seconds of signal per seed (default 25)")
    ap.add_argument("--rig", default=None, help="rig TOML (default configs/rigs/default.toml)")
    args = ap.parse_args()
    base = load_rig(args.rig)
    rows: list[dict] = []
    for seed in parse_seeds(args.seeds):
        rows += locked_events(dataclasses.replace(base, seed=seed), args.duration)
        print(f"seed {seed}: {len(rows)} locked events so far", file=sys.stderr)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
