"""A camera's network path that changes mid-run, on the test rigs: the camera microphone's error, published
uncertainty and coverage, per stretch of time.

Run: .venv/bin/python tools/engine/path_change.py [--seed N ...] [--at S] [--step S] [--duration S]

The rigs are `rig_for(seed, duration)` of tests/integration/test_engine_sim.py (two cameras with microphones and a
room microphone, the room as reference); cam1's path gets `--step` seconds slower (negative: faster) at `--at`
(`NetworkConfig.delay_step_at_s`). Timestamps see the change, the truth does not. Prints, per seed and stretch,
cam1.mic's |error| p95 (ms), its median published uncertainty (ms), and the share of its events whose error is
within twice that uncertainty (`in_2u`). docs/engine-log.md, "A young clock's refits", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))

from test_engine_sim import rig_for, run

from warpsync.sim import NetworkConfig


def stretches(rows, at: float, duration: float) -> list[tuple[float, float, str]]:
    edges = [at - 2, at, at + 2, at + 4, at + 7, at + 12, duration]
    out = []
    for a, b in itertools.pairwise(edges):
        sel = [r for r in rows if a <= r["t"] < b]
        if not sel:
            continue
        e = np.array([abs(r["err"]) for r in sel])
        u = np.array([r["uncertainty_s"] for r in sel])
        out.append((a, b, f"{np.percentile(e, 95) * 1e3:.3f} / {np.median(u) * 1e3:.3f} / {np.mean(e <= 2 * u):.2f}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[2, 5, 9])
    ap.add_argument("--at", type=float, default=6.0, help="scene time of the change, s (default 6)")
    ap.add_argument("--step", type=float, default=-0.0006, help="change of the path's delay, s (default -0.0006)")
    ap.add_argument("--duration", type=float, default=30.0)
    a = ap.parse_args(argv)
    print("cam1.mic: |error| p95 ms / median uncertainty ms / in_2u")
    for seed in a.seed:
        rig = rig_for(seed, a.duration, cam1_net=NetworkConfig(delay_step_at_s=a.at, delay_step_s=a.step))
        _truth, out, _, _ = run(rig)
        cells = "  ".join(f"{x:g}-{y:g} s: {s}" for x, y, s in stretches(out["cam1.mic"], a.at, a.duration))
        print(f"seed {seed}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
