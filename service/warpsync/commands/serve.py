"""`warpsync serve`: run the service until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError

log = logging.getLogger(__name__)


def add_service_flags(p: argparse.ArgumentParser) -> None:
    """The flags `serve` and `demo` share: every address can be overridden."""
    p.add_argument("--config", default=None, metavar="FILE", help="TOML config (default: embedded defaults)")
    p.add_argument("--ingest", default=None, metavar="ADDR", help="ingest PULL address (overrides [ingest] endpoint)")
    p.add_argument("--publish", default=None, metavar="ADDR", help="event XPUB address ([publish] endpoint)")
    p.add_argument("--control", default=None, metavar="ADDR", help="control ROUTER address ([control] endpoint)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="N", help="Prometheus port (0: ephemeral)")
    p.add_argument("--metrics-host", default=None, metavar="HOST", help="Prometheus bind address ([metrics] host)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="ingest workers ([ingest] workers)")
    p.add_argument(
        "--worker-mode",
        choices=("inline", "process"),
        default=None,
        help="ingest workers in the service's loop or as processes ([ingest] worker_mode)",
    )


def effective_config(args: argparse.Namespace) -> Config:
    cfg = config_mod.load(args.config)
    worker_mode = getattr(args, "worker_mode", None)
    if args.ingest is not None or args.workers is not None or worker_mode is not None:
        try:
            cfg = dataclasses.replace(
                cfg,
                ingest=dataclasses.replace(
                    cfg.ingest,
                    **({"endpoint": args.ingest} if args.ingest is not None else {}),
                    **({"workers": args.workers} if args.workers is not None else {}),
                    **({"worker_mode": worker_mode} if worker_mode is not None else {}),
                ),
            )
        except ValueError as exc:
            raise ConfigError(f"command line: {exc}") from None
    if args.publish is not None:
        cfg = dataclasses.replace(cfg, publish=dataclasses.replace(cfg.publish, endpoint=args.publish))
    if args.control is not None:
        cfg = dataclasses.replace(cfg, control=dataclasses.replace(cfg.control, endpoint=args.control))
    if args.metrics_host is not None:
        cfg = dataclasses.replace(cfg, metrics=dataclasses.replace(cfg.metrics, host=args.metrics_host))
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port {args.metrics_port} is not a TCP port (0-65535)")
        cfg = dataclasses.replace(cfg, metrics=dataclasses.replace(cfg.metrics, port=args.metrics_port))
    return cfg


def install_stop_handlers(stop: Any) -> None:
    def handler(signum: int, frame: Any) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def write_ready_file(path: str, endpoints: Any) -> None:
    """Atomically write the endpoints as JSON (a reader never sees a half-written file)."""
    p = Path(path)
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({**endpoints.as_dict(), "pid": os.getpid()}) + "\n")
    os.replace(tmp, p)


def _run(args: argparse.Namespace) -> int:
    from ..server import Service
    from ..tuning import tune_process

    cfg = effective_config(args)
    service = Service(cfg)
    install_stop_handlers(service.request_stop)

    def on_ready(endpoints: Any) -> None:
        if args.ready_file:
            write_ready_file(args.ready_file, endpoints)
        print(endpoints.ready_line(), flush=True)

    tune_process()  # start-up is done (stages built, torch not yet loaded): see warpsync.tuning
    service.run(on_ready)
    log.info("stopped")
    sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the service (ingest workers, event publisher, control, metrics)")
    add_service_flags(p)
    p.add_argument("--ready-file", default=None, metavar="PATH", help="write the endpoints here (JSON) once up")
    p.set_defaults(func=_run)
