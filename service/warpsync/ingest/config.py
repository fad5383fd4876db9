"""[ingest] section: ingest workers, buffers, limits and policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class IngestConfig:
    endpoint: str = "tcp://127.0.0.1:5555"
    """Address devices PUSH chunks to (the service binds PULL here)."""
    workers: int = 1
    """Number of ingest worker processes."""
    rcvhwm: int = 10000
    """Receive high-water mark of the PULL socket, messages; senders block beyond it (lossless backpressure)."""
    buffer_s: float = 30.0
    """Per-stream ring buffer length, seconds of samples at the stream's nominal rate."""
    full_policy: Literal["block", "drop_oldest", "drop_newest"] = "block"
    """What happens when a ring buffer is full: `block` (backpressure, lossless) or an opt-in, counted drop."""
    nan_policy: Literal["reject", "zero", "keep"] = "reject"
    """Chunks with NaN/Inf samples: rejected (counted), zero-filled (counted) or kept as they are."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest message accepted (ZMQ_MAXMSGSIZE and the payload limit), bytes."""
    max_streams: int = 1024
    """Most streams open at once; opens beyond it are rejected."""
