"""warpsync client library: wire protocol, stream publisher, event subscriber (pyzmq, msgpack, numpy only)."""

from .control import CloseAck, Control, Opened, Pong
from .errors import BackpressureError, ProtocolError, ServiceTimeout, WarpsyncError
from .protocol import Limits, StreamMeta
from .publisher import Publisher
from .subscriber import AsyncSubscriber, Event, Subscriber

__version__ = "0.1.0"

__all__ = [
    "AsyncSubscriber",
    "BackpressureError",
    "CloseAck",
    "Control",
    "Event",
    "Limits",
    "Opened",
    "Pong",
    "ProtocolError",
    "Publisher",
    "ServiceTimeout",
    "StreamMeta",
    "Subscriber",
    "WarpsyncError",
    "__version__",
]
