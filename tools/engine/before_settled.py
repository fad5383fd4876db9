"""What a stream publishes before its first settled event, with leads and without (`content.publish_lead`).

Run: .venv/bin/python tools/engine/before_settled.py [--seeds 1-56] [--duration 20] [--rig F]

Replays each seed of the rig through `EngineStage` twice (as `bench_engine.py` does), with `publish_lead` on and
off; nothing the engine measures differs between the two, only what it publishes before a stream's first lock.
For each camera and sensor, over the events before its first settled flag (on the run with leads; both runs
publish at the same hops), it compares the |error| against the stream's scored partner: how often it is within
the stream's floor, its median, p95 and max, and in how many events the lead was worse than the clock's mapping
at the same hop (by more than 20 ms, and the worst). Last, the seeds on which every stream is within its floor by
10 s (`settle_s`), and on which every stream is flagged settled by 10 s, for both. docs/engine-log.md, "Leads
before the first lock", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "benchmarks"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _seeds import parse_seeds
from bench_engine import _engine_card

from warpsync.engine.config import ContentConfig, EngineConfig
from warpsync.sim import load_rig


def _run(rig, lead: bool, duration: float):
    cfg = EngineConfig(content=dataclasses.replace(ContentConfig(), publish_lead=lead))
    card, stats = _engine_card(rig, cfg, duration)
    return card, stats["scorer"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-56", help="seeds, e.g. 1-56 or 1,7,9 (default 1-56)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of each run (default 20)")
    ap.add_argument("--rig", default=None, help="rig TOML (default configs/rigs/default.toml)")
    a = ap.parse_args(argv)
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)  # stream -> (|err| with, without)
    floors: dict[str, float] = {}
    settled = {True: [0, 0], False: [0, 0]}  # lead -> [within floor by 10 s, flagged by 10 s]
    seeds = parse_seeds(a.seeds)
    for seed in seeds:
        rig = dataclasses.replace(load_rig(a.rig), seed=seed)
        runs = {lead: _run(rig, lead, a.duration) for lead in (True, False)}
        for lead, (card, _) in runs.items():
            floor = next(f for f in card.floors if f.name.startswith("settle"))
            flag = max((s.flag_settle_s if s.flag_settle_s is not None else np.inf) for s in card.streams.values())
            settled[lead][0] += bool(floor.ok)
            settled[lead][1] += flag <= 10.0
        (card, with_), (_, without) = runs[True], runs[False]
        for sid, s in card.streams.items():
            if with_.truth.stream(sid).modality not in ("video", "sensor"):
                continue
            floors[sid] = with_.floor_s(sid)
            first = s.flag_settle_s if s.flag_settle_s is not None else np.inf
            on, _ = with_._relative(sid)
            off, _ = without._relative(sid)
            for o, p in zip(on, off):
                if o.t < first:
                    pairs[sid].append((abs(o.err_s), abs(p.err_s)))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    print(f"rig {a.rig or 'default'}, seeds {a.seeds}, {a.duration:g} s: |error| before the first settled event")
    print("with leads / clock only; the last column: events where the lead was more than 20 ms worse, and the worst")
    print("stream  events  within floor  median ms    p95 ms   max ms     lead worse")
    for sid, v in sorted(pairs.items()):
        x = np.array(v) * 1e3
        w, c = x[:, 0], x[:, 1]
        fl = floors[sid] * 1e3
        print(
            f"{sid:7} {len(x):6}  {np.mean(w <= fl):.2f} / {np.mean(c <= fl):.2f}  {np.median(w):5.1f} / "
            f"{np.median(c):<5.1f} {np.percentile(w, 95):3.0f} / {np.percentile(c, 95):<3.0f} {w.max():4.0f} / "
            f"{c.max():<4.0f} {int(np.sum(w - c > 20))}, +{(w - c).max():.0f} ms"
        )
    n = len(seeds)
    for lead in (True, False):
        within, flagged = settled[lead]
        print(
            f"publish_lead={str(lead).lower():5}: every stream within its floor by 10 s on {within} of {n} seeds; "
            f"every stream flagged settled by 10 s on {flagged} of {n}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
