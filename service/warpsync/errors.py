"""The exception tree. `WarpsyncError` and `ProtocolError` come from the client library (one tree for both)."""

from __future__ import annotations

from warpsync_client.errors import BackpressureError, ProtocolError, ServiceTimeout, WarpsyncError

__all__ = [
    "AlignmentError",
    "BackpressureError",
    "ConfigError",
    "ModelError",
    "ProtocolError",
    "ServiceTimeout",
    "WarpsyncError",
]


class ConfigError(WarpsyncError):
    """Configuration is invalid: the message names the key, the file and what is allowed."""


class AlignmentError(WarpsyncError):
    """Alignment inputs are invalid or the problem is infeasible (e.g. a band that admits no path)."""


class ModelError(WarpsyncError):
    """A speech model could not be loaded or does not match its vocabulary."""
