"""The address flags the end-to-end tests start `warpsync serve` / `warpsync demo` with: every socket on an ipc
path under one directory, metrics on an ephemeral port, so parallel and repeated runs never collide."""

from __future__ import annotations


def ipc_flags(d: object) -> list[str]:
    """``--ingest/--publish/--control`` on ``ipc://{d}/in|pub|ctl`` and ``--metrics-port 0``."""
    return [
        "--ingest",
        f"ipc://{d}/in",
        "--publish",
        f"ipc://{d}/pub",
        "--control",
        f"ipc://{d}/ctl",
        "--metrics-port",
        "0",
    ]
