"""A live run's clock observations, recorded and replayed through clock models: the drift error each clock
model would publish, under any `[engine.clock]` settings, on the same arrivals.

Run: .venv/bin/python tools/engine/live_clocks.py record --seconds 120 --out FILE.npz
     .venv/bin/python tools/engine/live_clocks.py replay FILE.npz [--clock key=value,...] ...

`record` runs the default rig (configs/rigs/default.toml) through an in-process service in real time (ipc
sockets, as `bench_engine.py --live` does), keeps every (stream, device time, host arrival) pair the engine's
clock models were fed, prints the run's scorecard and writes the pairs with the simulator's ground truth.
`replay` feeds those pairs, in their order, to one `ClockModel` per device clock and prints, per clock, the p95
over the observations after 60 s of |slope error| in ppm, against the truth (abs) and relative to the room
microphone's clock (rel: what the scorecard's drift error is for a stream that follows its clock's slope), and
the clock events. One line per `--clock` setting (an empty string: the defaults). docs/engine-log.md, "Drift in a
live service", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import tempfile
import threading

import numpy as np

from warpsync.engine import clock as clock_mod
from warpsync.engine.config import ClockConfig
from warpsync.sim.truth import Truth

REFERENCE = "room"
AFTER_S = 60.0


def record(seconds: float, out: str) -> None:
    from warpsync.config import Config, ControlConfig, MetricsConfig
    from warpsync.server import Service
    from warpsync.sim import load_rig
    from warpsync.sim.run import EventCollector, publish_rig
    from warpsync.sim.score import Scorer

    seen: list[tuple[str, float, float]] = []
    observe = clock_mod.ClockModel.observe

    def logged(self, t_dev_s, arrival_s, source=""):
        seen.append((source, t_dev_s, arrival_s))
        return observe(self, t_dev_s, arrival_s, source)

    clock_mod.ClockModel.observe = logged  # type: ignore[method-assign]
    d = tempfile.mkdtemp(prefix="wslive", dir="/tmp")
    base = Config()
    cfg = dataclasses.replace(
        base,
        ingest=dataclasses.replace(base.ingest, endpoint=f"ipc://{d}/in"),
        publish=dataclasses.replace(base.publish, endpoint=f"ipc://{d}/pub"),
        control=ControlConfig(endpoint=f"ipc://{d}/ctl"),
        metrics=MetricsConfig(port=0),
    )
    svc = Service(cfg)
    th = threading.Thread(target=svc.run, name="service", daemon=True)
    th.start()
    if not svc.ready.wait(60):
        raise SystemExit("the service did not start")
    try:
        coll = EventCollector(svc.endpoints.publish).start()
        res = publish_rig(load_rig("configs/rigs/default.toml"), svc.endpoints.control, seconds, realtime=True)
        events = coll.stop(linger_s=1.0)
    finally:
        svc.request_stop()
        th.join(30)
    print(Scorer(res.truth).add_all(events).scorecard().format())
    np.savez_compressed(
        out,
        source=np.array([s for s, _, _ in seen]),
        t_dev=np.array([t for _, t, _ in seen]),
        arrival=np.array([a for _, _, a in seen]),
        truth=np.array(json.dumps(res.truth.to_json())),
    )
    print(f"{len(seen)} observations written to {out}")


def replay(path: str, overrides: str) -> str:
    f = np.load(path)
    truth = Truth.from_json(json.loads(str(f["truth"])))
    kw = {k: float(v) for k, v in (x.split("=", 1) for x in overrides.split(",") if x)}
    cfg = dataclasses.replace(ClockConfig(), **kw)
    models: dict[str, clock_mod.ClockModel] = {}
    errors: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    events: collections.Counter[str] = collections.Counter()
    for src, t_dev, arrival in zip(f["source"].tolist(), f["t_dev"].tolist(), f["arrival"].tolist(), strict=True):
        if src not in truth.streams:
            continue  # the talker's captions: not rendered by the simulator's truth
        st = truth.stream(src)
        m = models.setdefault(st.clock, clock_mod.ClockModel(cfg))
        ev = m.observe(t_dev, arrival, src)
        if ev:
            events[f"{st.clock} {ev}"] += 1
        if arrival - truth.t0_host_s > AFTER_S and m.ready:
            slope = 1.0 / (1.0 + st.drift_ppm * 1e-6) - 1.0  # d(host - device) / d(device)
            errors[st.clock].append((round(arrival, 1), (m.drift - slope) * 1e6))
    ref = dict(errors.get(truth.stream(REFERENCE).clock, []))
    cells = []
    for clock, v in sorted(errors.items()):
        e = np.array([x for _, x in v])
        rel = np.array([x - ref[t] for t, x in v if t in ref])
        cells.append(
            f"{clock}: abs {np.percentile(np.abs(e), 95):.2f} rel {np.percentile(np.abs(rel), 95) if rel.size else 0:.2f}"
        )
    return f"{overrides or '(defaults)'}: " + " | ".join(cells) + f"  events: {dict(events)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--seconds", type=float, default=120.0)
    r.add_argument("--out", required=True)
    p = sub.add_parser("replay")
    p.add_argument("file")
    p.add_argument("--clock", action="append", default=None, help="key=value,... of [engine.clock] (repeatable)")
    a = ap.parse_args(argv)
    if a.cmd == "record":
        record(a.seconds, a.out)
    else:
        for o in a.clock if a.clock is not None else [""]:
            print(replay(a.file, o))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
