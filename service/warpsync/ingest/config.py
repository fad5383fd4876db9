"""[ingest] section: ingest workers, buffers, limits and policies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError


@dataclass(frozen=True)
class IngestConfig:
    endpoint: str = "tcp://127.0.0.1:5555"
    """Address devices PUSH chunks to (the service binds PULL here). With several workers, worker ``i`` binds
    the ``i``-th TCP port after this one that is not the publish, control or metrics port (defaults: 5558,
    5559, ...), or ``ipc://path.i`` (``tcp://host:*`` binds ephemeral ports); the control socket's ``open``
    tells each stream which one owns it."""
    workers: int = 1
    """Number of ingest workers (>= 1)."""
    worker_mode: Literal["process", "inline"] = "inline"
    """How workers run: ``inline``, in the service process's event loop (no process boundary: a large payload
    is kept as the frame it arrived in, no copy, and batches are not serialised; decoding and the stages share
    one core), or ``process``, each its own process (decoding in parallel with the service process, on as many
    cores as there are workers; large payloads cross through a shared-memory arena: one copy)."""
    rcvhwm: int = 10000
    """Receive high-water mark of the PULL socket, messages; senders block beyond it (lossless backpressure)."""
    buffer_s: float = 30.0
    """Per-stream ring buffer length, seconds of samples at the stream's nominal rate."""
    full_policy: Literal["block", "drop_oldest", "drop_newest"] = "block"
    """What happens when a ring buffer is full: `block` (backpressure, lossless) or an opt-in, counted drop."""
    nan_policy: Literal["reject", "zero", "keep"] = "reject"
    """Chunks with NaN/Inf samples: rejected (counted), zero-filled (counted) or kept as they are (counted)."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest message accepted (ZMQ_MAXMSGSIZE and the payload limit), bytes."""
    max_streams: int = 1024
    """Most streams known at once (open, or closed and kept for resuming); opens beyond it are rejected."""
    max_time_jump_s: float = 1.0
    """A chunk whose device time is this many seconds before the end of the previous chunk is rejected
    (``time_jump``); this far after it (with no sequence gap) it is kept and counted as a time jump. Seconds."""
    stall_s: float = 2.0
    """A stream with no chunk for this long is reported ``stalled`` in `stream.status`, seconds."""
    batch_max_messages: int = 512
    """Most messages a worker decodes before forwarding them to the service process as one batch."""
    text_buffer_captions: int = 4096
    """Captions kept per text stream."""
    shm_arena_bytes: int = 64 * 1024 * 1024
    """Shared-memory arena per worker process for payloads of 64 KiB and more, bytes: the worker copies such
    a payload there once instead of sending it over a second socket; 0 sends every payload over the socket.
    A payload larger than a quarter of the arena, or arriving while it is full, goes over the socket. Not
    used by inline workers."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers = {self.workers}: need at least 1 ingest worker")
        if self.worker_mode not in ("process", "inline"):
            raise ValueError(f"worker_mode = {self.worker_mode!r}: must be 'inline' or 'process'")
        if not self.buffer_s > 0:
            raise ValueError(f"buffer_s = {self.buffer_s}: must be > 0 seconds")
        if self.rcvhwm < 1 or self.max_streams < 1 or self.batch_max_messages < 1:
            raise ValueError("rcvhwm, max_streams and batch_max_messages must be >= 1")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes = {self.max_message_bytes}: must be at least 1024 bytes")
        if self.shm_arena_bytes < 0:
            raise ValueError(f"shm_arena_bytes = {self.shm_arena_bytes}: must be >= 0 bytes (0 disables)")
        if not self.max_time_jump_s > 0 or not self.stall_s > 0:
            raise ValueError("max_time_jump_s and stall_s must be > 0 seconds")


def worker_endpoint(base: str, index: int, reserved_ports: Iterable[int] = ()) -> str:
    """The PULL address worker `index` binds, derived from ``ingest.endpoint``.

    ``tcp://host:P``: worker 0 binds P and worker ``i`` the ``i``-th port after P that is not in
    `reserved_ports` (the service passes the publish, control and metrics ports), so that with the defaults
    (ingest 5555, publish 5556, control 5557) workers 1, 2, ... bind 5558, 5559, ... instead of colliding with
    the publish socket. ``tcp://host:*`` binds an ephemeral port per worker; ``ipc://path`` gives
    ``ipc://path.i``."""
    if index == 0:
        return base
    if base.startswith("tcp://"):
        host, _, port = base[len("tcp://") :].rpartition(":")
        if port == "*" or port == "0":
            return base
        if not port.isdigit():
            raise ConfigError(f"ingest.endpoint {base!r}: cannot derive worker addresses from port {port!r}")
        skip = set(reserved_ports)
        p = int(port)
        for _ in range(index):
            p += 1
            while p in skip:
                p += 1
        if p > 65535:
            raise ConfigError(
                f"ingest.endpoint {base!r}: worker {index} would need port {p}; choose a lower ingest port"
            )
        return f"tcp://{host}:{p}"
    if base.startswith("ipc://"):
        return f"{base}.{index}"
    raise ConfigError(f"ingest.endpoint {base!r}: with several workers, use tcp:// or ipc:// addresses")


def tcp_port(endpoint: str) -> int | None:
    """The port of a ``tcp://host:port`` address (``None`` for other transports and ephemeral ports)."""
    if not endpoint.startswith("tcp://"):
        return None
    port = endpoint.rpartition(":")[2]
    return int(port) if port.isdigit() and int(port) > 0 else None
