"""What telling a stall from a jump costs the clock models, against models that ask no other clock, in one run.

    .venv/bin/python tests/benchmarks/bench_clock_stall.py [--clocks N] [--rate HZ] [--seconds S] [--backlog S]

N clock models observed in turn, `--rate` chunks a second each, for `--seconds`; from a third of the way in, for
`--backlog` seconds, every chunk arrives 0.2 s late (a service that fell behind). Run twice on the same
observations: with `peers` (what `SyncEngine` builds: the late chunks are checked against the other clocks, a
`stall`) and without (each clock alone: the same lateness is a jump of each after 0.75 s). Prints the CPU time of
each over the backlog and overall, their ratio, and the clock events each saw. The docs' figure
(docs/engine-log.md, "Stalls are not jumps"): 8 clocks at 500 chunks a second, a 10 s backlog.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from warpsync.engine.clock import ClockModel


def run(clocks: int, rate: float, seconds: float, backlog: float, with_peers: bool, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    models: list[ClockModel] = []
    models += [ClockModel(peers=(lambda: models) if with_peers else None) for _ in range(clocks)]
    start = seconds / 3.0
    total = in_backlog = 0.0
    events: dict[str, int] = {}
    for k in range(int(seconds * rate)):
        t = k / rate
        late = 0.2 if start <= t < start + backlog else 0.0
        delays = 0.002 + late + rng.exponential(5e-4, clocks)
        for i, m in enumerate(models):
            a = time.process_time()
            ev = m.observe(100.0 * (i + 1) + t, 1000.0 + t + delays[i])
            dt = time.process_time() - a
            total += dt
            if late:
                in_backlog += dt
            if ev:
                events[ev] = events.get(ev, 0) + 1
    return {"total_s": total, "backlog_s": in_backlog, "events": events}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clocks", type=int, default=8)
    ap.add_argument("--rate", type=float, default=500.0, help="chunks a second per clock")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--backlog", type=float, default=10.0)
    args = ap.parse_args(argv)
    alone = run(args.clocks, args.rate, args.seconds, args.backlog, with_peers=False)
    peers = run(args.clocks, args.rate, args.seconds, args.backlog, with_peers=True)
    print(f"{args.clocks} clocks, {args.rate:g} chunks/s each, {args.seconds:g} s, {args.backlog:g} s of it 0.2 s late")
    for name, r in (("alone (no peers)", alone), ("with peers", peers)):
        print(f"  {name:17s} CPU {r['total_s']:.2f} s, of it the backlog {r['backlog_s']:.2f} s; events {r['events']}")
    print(
        f"  ratio with / alone: backlog {peers['backlog_s'] / max(alone['backlog_s'], 1e-9):.2f}x, "
        f"overall {peers['total_s'] / max(alone['total_s'], 1e-9):.2f}x; "
        f"backlog CPU / its real time {peers['backlog_s'] / args.backlog:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
