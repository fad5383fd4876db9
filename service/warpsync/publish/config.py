"""[publish] section: the event PUB socket."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishConfig:
    endpoint: str = "tcp://127.0.0.1:5556"
    """Address the event PUB (XPUB) socket binds to."""
    sndhwm: int = 100000
    """Send high-water mark per subscriber, messages; a slow subscriber loses events beyond it (counted)."""
    status_interval_s: float = 1.0
    """How often `stream.status` is published per stream, seconds."""
