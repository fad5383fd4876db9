"""The one exception tree shared by the client library and the service.

The service (`warpsync.errors`) extends this tree with ConfigError, AlignmentError and ModelError, so a
caller can catch `WarpsyncError` for anything either side raises.
"""

from __future__ import annotations


class WarpsyncError(Exception):
    """Base of every error warpsync raises on purpose."""


class ProtocolError(WarpsyncError):
    """A message broke the wire protocol.

    `reason` is a short, stable snake_case code (it labels the `warpsync_ingest_rejected_total` metric and is
    sent back to the peer where it can be told); the message text says what was wrong and what to do.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class BackpressureError(WarpsyncError):
    """The service did not take a message within the send timeout (its buffers are full)."""


class ServiceTimeout(WarpsyncError):
    """The service did not answer a control request or acknowledge an end-of-stream in time."""
