"""Stopping a command on SIGINT / SIGTERM without deadlocking in the signal handler."""

from __future__ import annotations

import signal
import threading
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """Make SIGINT and SIGTERM set `stop`, once; returns the previous handlers (for `restore_signals`).

    A handler runs in the main thread between two bytecodes, and `Event.set` takes the event's lock. A second
    signal arriving while the first handler was inside `set` (Ctrl-C pressed twice; `make` and `timeout` both
    passing SIGTERM on) called `set` again and waited for a lock its own thread held: `timeout 30 make demo`
    left `warpsync demo` hung. Signals after the first now return at once."""
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        stop.set()

    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def restore_signals(previous: dict[int, Any]) -> None:
    """Put back the handlers `stop_on_signals` replaced."""
    for s, h in previous.items():
        signal.signal(s, h)
