"""`warpsync score --truth FILE`: subscribe to a service's sync events and score them against a run's truth."""

from __future__ import annotations

import argparse
import json
import sys
import threading

from ._signals import stop_on_signals
from .simulate import DEFAULT_PUBLISH


def _run(args: argparse.Namespace) -> int:
    from ..sim import Truth
    from ..sim.run import EventCollector, attach_latency
    from ..sim.score import Scorer

    truth = Truth.read(args.truth)
    scorer = Scorer(truth)  # validates anchor/partners before subscribing
    stop = threading.Event()
    stop_on_signals(stop)
    collector = EventCollector(args.publish).start()
    print(
        f"warpsync score: scoring events from {args.publish} against {args.truth}"
        f"{f' for {args.duration:g} s' if args.duration else ' until interrupted'}",
        file=sys.stderr,
        flush=True,
    )
    stop.wait(args.duration)
    events = collector.stop()
    # no send log here: latency is measured from the moment the newest sample was stamped (an upper bound)
    attach_latency(events, truth)
    card = scorer.add_all(events).scorecard()
    if args.json:
        print(json.dumps(card.to_json(), indent=1))
    else:
        print(card.format())
    return 1 if args.check and not card.ok else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a service's sync events against a simulated run's truth",
        description="Subscribe to sync.offset/sync.bundle events, compare them with the truth "
        "written by `warpsync simulate --truth`, and print the scorecard on SIGINT or after "
        "--duration. Event latency here is measured from the stamp time of the newest sample "
        "(an upper bound: it includes the chunk's length and the network).",
    )
    p.add_argument("--truth", required=True, metavar="FILE", help="truth JSON from `warpsync simulate --truth`")
    p.add_argument(
        "--publish", default=DEFAULT_PUBLISH, metavar="ADDR", help=f"service event address ({DEFAULT_PUBLISH})"
    )
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: SIGINT)")
    p.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when a floor fails")
    p.set_defaults(func=_run)
