"""A camera's own capture latency step: how long the camera takes to be back within its quarter frame, with each
value of a content setting.

Run: .venv/bin/python tools/engine/camera_step.py [--seeds 1,3,5] [--step S] [--at S] [--duration S]
     [--content KEY=V1,V2 ...]

The latency rig (configs/rigs/latency.toml) with only one latency step, on its camera (`cam`), which the camera's
two sources (through the IMU's contact response, and the IMU itself) see alike; replayed through `EngineStage` as
`bench_engine.py` does, once per value of `--content` (default `source_memory=0.5,0`). Prints, per seed and value,
the time from the step to the camera's last event outside its quarter frame, and its largest |error| over the
last 10 s. docs/engine-log.md, "A source's last word" and "The last word in the wide search", have the numbers it gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _seeds import parse_seeds

from warpsync.config import parse_overrides
from warpsync.engine.config import ContentConfig, EngineConfig
from warpsync.engine.stage import EngineStage
from warpsync.sim import LatencyStepConfig, Simulator, load_rig
from warpsync.sim.run import replay_offline
from warpsync.sim.score import Scorer

RIG = pathlib.Path(__file__).resolve().parents[2] / "configs" / "rigs" / "latency.toml"


def back_within(seed: int, at_s: float, step_s: float, duration_s: float, content: dict) -> tuple[float, float]:
    """(seconds from the step to the camera's last error over its floor, its largest |error| over the last 10 s)."""
    rig = dataclasses.replace(
        load_rig(RIG), seed=seed, duration_s=duration_s, latency_steps=(LatencyStepConfig("cam", at_s, step_s),)
    )
    sim = Simulator(rig)
    stage = EngineStage(EngineConfig(content=dataclasses.replace(ContentConfig(), **content)), CollectorRegistry())
    scorer = Scorer(sim.truth)
    replay_offline(sim, stage, duration_s, on_events=lambda evs, _now: scorer.add_all(evs))
    obs, _ = scorer._relative("cam")
    floor = scorer.floor_s("cam")
    over = [o.t for o in obs if o.t >= at_s and abs(o.err_s) > floor]
    late = [abs(o.err_s) for o in obs if o.t >= duration_s - 10.0]
    return (over[-1] - at_s if over else 0.0), max(late)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1,3,5")
    ap.add_argument("--at", type=float, default=25.0, help="scene time of the step, s (default 25)")
    ap.add_argument("--step", type=float, default=0.03, help="the step, s (default 0.03)")
    ap.add_argument("--duration", type=float, default=50.0)
    ap.add_argument("--content", default="source_memory=0.5,0", help="KEY=V1,V2,...: one run per value")
    a = ap.parse_args(argv)
    key, _, values = a.content.partition("=")
    for seed in parse_seeds(a.seeds):
        for v in values.split(","):
            content = parse_overrides([f"{key}={v}"], ContentConfig, "--content")
            back, worst = back_within(seed, a.at, a.step, a.duration, content)
            print(
                f"seed {seed:3d} {key}={v:<6}: back within its quarter frame {back:4.1f} s after the step; "
                f"largest |error| over the last 10 s {worst * 1e3:.2f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
