"""warpsync client library: wire protocol, stream publisher, event subscriber (pyzmq, msgpack, numpy only)."""

from .control import CloseAck, Control, Opened, Pong
from .errors import BackpressureError, ProtocolError, ServiceTimeout, WarpsyncError
from .protocol import Limits, StreamMeta
from .publisher import Publisher
from .subscriber import AsyncSubscriber, Event, Subscriber

__version__ = "0.1.0"

__all__ = [
    "WarpsyncError",
    "ProtocolError",
    "BackpressureError",
    "ServiceTimeout",
    "Limits",
    "StreamMeta",
    "Control",
    "Pong",
    "Opened",
    "CloseAck",
    "Publisher",
    "Subscriber",
    "AsyncSubscriber",
    "Event",
    "__version__",
]
