"""`warpsync simulate`: publish a simulated rig into a running service (or run the engine offline on it),
write the ground truth, and optionally print the scorecard."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._signals import stop_on_signals

log = logging.getLogger(__name__)

DEFAULT_CONTROL = "tcp://127.0.0.1:5557"
DEFAULT_PUBLISH = "tcp://127.0.0.1:5556"


def _positive(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} is not a number of seconds") from None
    if not x > 0:
        raise argparse.ArgumentTypeError("must be > 0 seconds")
    return x


def _print_card(card: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(card.to_json(), indent=1))
    else:
        print(card.format())


def _run(args: argparse.Namespace) -> int:
    from ..sim import load_rig
    from ..sim.score import Scorer

    rig = load_rig(args.rig)
    duration = args.duration if args.duration is not None else rig.duration_s
    if args.offline:
        return _offline(args, rig, duration)
    from ..sim.run import EventCollector, SendLog, attach_latency, publish_rig

    truth_path = Path(args.truth) if args.truth else None
    if truth_path is not None and not truth_path.parent.exists():
        raise ConfigError(f"--truth {truth_path}: directory {truth_path.parent} does not exist")
    stop = threading.Event()
    stop_on_signals(stop)
    live = _LivePrinter(args.live_every) if args.score and args.live_every > 0 else None
    send_log = SendLog() if args.score else None
    collector = EventCollector(args.publish, on_event=live, send_log=send_log).start() if args.score else None

    def started(truth: Any) -> None:
        if live is not None:
            live.start(truth)
        if truth_path is not None:
            truth.write(truth_path)
        n = len(truth.streams)
        mode = "real time" if args.realtime else "as fast as the service takes it"
        print(
            f"warpsync simulate: rig {rig.name!r} ({n} streams) -> {args.control}, {duration:g} s, {mode}",
            file=sys.stderr,
            flush=True,
        )

    try:
        res = publish_rig(
            rig, args.control, duration, realtime=args.realtime, stop_event=stop, send_log=send_log, on_start=started
        )
    finally:
        events = collector.stop(linger_s=args.linger if not stop.is_set() else 0.0) if collector else []
    sent = sum(res.chunks.values())
    print(
        f"warpsync simulate: sent {sent} chunks of {len(res.chunks)} streams"
        f"{' (stopped early)' if res.stopped else ''}; {res.restarts} publisher restart(s)",
        file=sys.stderr,
    )
    if collector is None:
        return 0
    attach_latency(events, res.truth, send_log)
    card = Scorer(res.truth).add_all(events).scorecard()
    _print_card(card, args.json)
    return 1 if args.check and not card.ok else 0


class _LivePrinter:
    """Scores events as they come and prints one line of current errors every `every_s` seconds (stderr)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.scorer: Any = None
        self._next = 0.0

    def start(self, truth: Any) -> None:
        from ..sim.score import Scorer

        self.scorer = Scorer(truth)
        self._next = time.monotonic() + self.every_s

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.scorer is None:
            return
        self.scorer.add(ev)
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            print(f"live |error| vs partner: {self.scorer.live_line()}", file=sys.stderr, flush=True)


def _offline(args: argparse.Namespace, rig: Any, duration: float) -> int:
    """Feed the engine directly (no sockets) and score it: deterministic, faster than real time."""
    from prometheus_client import CollectorRegistry

    from .. import config as config_mod
    from ..engine.stage import EngineStage
    from ..sim import Simulator
    from ..sim.run import replay_offline
    from ..sim.score import Scorer

    cfg = config_mod.load(args.config)
    sim = Simulator(rig)
    if args.truth:
        sim.truth.write(args.truth)
    stage = EngineStage(cfg.engine, CollectorRegistry())
    scorer = Scorer(sim.truth)
    stats = replay_offline(sim, stage, duration, on_events=lambda evs, now: scorer.add_all(evs))
    print(
        f"warpsync simulate --offline: {stats['simulated_s']:.1f} s of rig {rig.name!r} in "
        f"{stats['compute_s']:.1f} s of engine compute (real-time factor {stats['realtime_factor']:.3f})",
        file=sys.stderr,
    )
    card = scorer.scorecard()
    if args.score or args.json:
        _print_card(card, args.json)
    return 1 if args.check and not card.ok else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="publish a simulated rig (cameras, mics, IMUs with their own clocks) and score the service",
        description="Render a rig (configs/rigs/*.toml) into streams with device clock offsets, drift, capture "
        "latency, jitter, drops, a clock jump and a publisher restart; publish them into a running service "
        "through warpsync_client.Publisher, write the ground truth, and with --score subscribe to the service's "
        "sync events and print the scorecard. --offline runs the engine in-process instead (no service).",
    )
    p.add_argument("--rig", default=None, metavar="FILE", help="rig TOML (default: configs/rigs/default.toml)")
    p.add_argument(
        "--duration", type=_positive, default=None, metavar="S", help="seconds of signal (default: the rig's)"
    )
    p.add_argument(
        "--control", default=DEFAULT_CONTROL, metavar="ADDR", help=f"service control address ({DEFAULT_CONTROL})"
    )
    p.add_argument(
        "--publish",
        default=DEFAULT_PUBLISH,
        metavar="ADDR",
        help=f"service event address, for --score ({DEFAULT_PUBLISH})",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=True,
        help="send each chunk at its simulated arrival time (default)",
    )
    pace.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="send as fast as the service takes it (clock sync then sees bursts, not clocks)",
    )
    p.add_argument("--truth", default=None, metavar="OUT.json", help="write the ground truth here")
    p.add_argument("--score", action="store_true", help="subscribe to sync events and print the scorecard")
    p.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a floor of the scorecard fails")
    p.add_argument(
        "--live-every",
        type=float,
        default=5.0,
        metavar="S",
        help="with --score: print the current errors every S seconds on stderr (0: never; default 5)",
    )
    p.add_argument(
        "--linger",
        type=float,
        default=1.0,
        metavar="S",
        help="keep collecting events this long after the last chunk (default 1)",
    )
    p.add_argument(
        "--offline", action="store_true", help="no service: feed the engine in-process (deterministic) and score it"
    )
    p.add_argument("--config", default=None, metavar="FILE", help="service config TOML, for --offline's [engine]")
    p.set_defaults(func=_run)
