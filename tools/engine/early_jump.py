"""A camera clock that jumps early, on the test rigs: the camera microphone's error after it and the largest rate
its content correction took.

Run: .venv/bin/python tools/engine/early_jump.py [--case SEED:JUMP_AT ...] [--step S] [--duration S]

The rigs are `rig_for(seed, duration)` of tests/integration/test_engine_sim.py (two cameras with microphones and a
room microphone, the room as reference); cam0's clock (80 ppm) steps by `--step` seconds at each case's scene time.
Prints, per case, cam0.mic's |error| p95 and max (ms) from 5 s after the jump to the end, and the largest |rate| of
its correction (ppm), sampled at every hop. docs/engine-log.md, "A clock that jumps young", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))

from test_engine_sim import rig_for, run

from warpsync.engine import session
from warpsync.sim import ClockConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", nargs="+", default=["5:10", "6:9", "7:12", "8:8"], help="SEED:JUMP_AT (scene s)")
    ap.add_argument("--step", type=float, default=1.7, help="the clock's step, s (default 1.7)")
    ap.add_argument("--duration", type=float, default=26.0)
    a = ap.parse_args(argv)
    rates: list[float] = []
    hold = session.SyncEngine._hold_mapping

    def traced(self, st):
        hold(self, st)
        if st.name == "cam0.mic" and st.filter is not None and st.filter.T is not None:
            rates.append(float(st.filter.x[1]) * 1e6)

    session.SyncEngine._hold_mapping = traced  # type: ignore[method-assign]
    for case in a.case:
        seed, jump_at = int(case.split(":")[0]), float(case.split(":")[1])
        rates.clear()
        clock = ClockConfig(offset_s=12.0, drift_ppm=80.0, jump_at_s=jump_at, jump_s=a.step)
        _truth, out, _, _ = run(rig_for(seed, a.duration, cam_clock=clock))
        err = np.array([abs(r["err"]) for r in out["cam0.mic"] if r["t"] >= jump_at + 5.0])
        print(
            f"seed {seed}, jump at {jump_at:g} s: cam0.mic |error| p95 {np.percentile(err, 95) * 1e3:.3f} ms, "
            f"max {err.max() * 1e3:.3f} ms; largest |rate| {max(map(abs, rates), default=0.0):.0f} ppm"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
