"""[engine] section: sessions, reference timeline, clock and content sync."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    enabled: bool = True
    """Run the sync engine (clock and content sync) in the service."""
