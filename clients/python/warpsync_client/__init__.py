"""warpsync client library: wire protocol, stream publisher, event subscriber (pyzmq, msgpack, numpy only)."""

from .errors import BackpressureError, ProtocolError, ServiceTimeout, WarpsyncError

__version__ = "0.1.0"

__all__ = ["WarpsyncError", "ProtocolError", "BackpressureError", "ServiceTimeout", "__version__"]
