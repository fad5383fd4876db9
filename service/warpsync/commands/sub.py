"""`warpsync sub [--topic T ...] [--json]`: print the service's events, one per line, until SIGINT/SIGTERM
(exit 0), ``--count`` events or ``--duration-s`` seconds.

``--json`` prints JSON lines ``{"topic", "event", "stream", "header", "payload"}``: ``header`` is the whole
event header; bytes in it become hex strings and NaN/Inf become null (strict JSON). ``payload`` is null, a
summary ``{"dtype", "shape", "min", "max"}`` (default), the values as nested lists (``--payload list``), or
left out (``--payload none``). Without ``--json`` each line is ``topic key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from warpsync_client import Subscriber
from warpsync_client.control import resolve_endpoint
from warpsync_client.subscriber import Event

from .. import config
from ..errors import WarpsyncError
from ._signals import restore_signals, stop_on_signals


def jsonable(value: Any) -> Any:
    """A msgpack-decoded value as strict JSON: bytes -> hex, non-finite floats -> None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def payload_json(payload: Any, mode: str) -> Any:
    if payload is None:
        return None
    if isinstance(payload, bytes):
        return {"bytes": len(payload)} if mode == "summary" else payload.hex()
    if mode == "list":
        return jsonable(payload.tolist())
    out: dict[str, Any] = {"dtype": payload.dtype.str[1:], "shape": list(payload.shape)}
    finite = payload[np.isfinite(payload)] if payload.dtype.kind == "f" else payload
    if finite.size:
        out["min"] = jsonable(finite.min().item())
        out["max"] = jsonable(finite.max().item())
    return out


def format_event(ev: Event, as_json: bool, payload_mode: str) -> str:
    if as_json:
        rec: dict[str, Any] = {"topic": ev.topic, "event": ev.event, "stream": ev.stream, "header": jsonable(ev.header)}
        if payload_mode != "none":
            rec["payload"] = payload_json(ev.payload, payload_mode)
        return json.dumps(rec, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    fields = " ".join(
        f"{k}={json.dumps(jsonable(v), ensure_ascii=False, separators=(',', ':'))}"
        for k, v in ev.header.items()
        if k not in ("v", "event", "stream")
    )
    tail = ""
    if ev.payload is not None and payload_mode != "none":
        tail = " payload=" + json.dumps(payload_json(ev.payload, payload_mode), separators=(",", ":"))
    return f"{ev.topic} {fields}{tail}"


def _run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise WarpsyncError(f"--count must be >= 1, got {args.count}")
    endpoint = args.endpoint or config.load(args.config).publish.endpoint
    endpoint = resolve_endpoint(endpoint, "tcp://127.0.0.1:0")
    stop = threading.Event()
    previous = stop_on_signals(stop)
    deadline = None if args.duration_s is None else time.monotonic() + args.duration_s
    shown = 0
    try:
        with Subscriber(endpoint, topics=args.topic or [""]) as sub:
            while not stop.is_set():
                wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if wait <= 0:
                    break
                ev = sub.recv(timeout_s=wait)
                if ev is None:
                    continue
                print(format_event(ev, args.json, args.payload), flush=True)
                shown += 1
                if args.count is not None and shown >= args.count:
                    break
            if sub.skipped:
                print(
                    f"warpsync sub: skipped {sub.skipped} undecodable event(s); last: {sub.last_error}", file=sys.stderr
                )
    except BrokenPipeError:  # `warpsync sub | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        restore_signals(previous)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sub",
        help="print the service's events (JSON lines with --json)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--endpoint", help="event endpoint of the service (default: [publish] endpoint of the config)")
    p.add_argument("--config", help="config file for the default endpoint (default: embedded defaults)")
    p.add_argument(
        "--topic", action="append", help="topic prefix, e.g. 'stream.' or 'sync.offset/cam1' (repeatable; default all)"
    )
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument(
        "--payload", choices=["summary", "list", "none"], default="summary", help="how to print array payloads"
    )
    p.add_argument("--count", type=int, help="exit 0 after this many events")
    p.add_argument("--duration-s", type=float, help="exit 0 after this many seconds")
    p.set_defaults(func=_run)
