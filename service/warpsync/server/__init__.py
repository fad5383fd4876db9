"""Process wiring of `warpsync serve`: the event loop (`service`), worker supervision (`workers`) and the
service-side stream table (`registry`)."""

from .service import Endpoints, Service

__all__ = ["Endpoints", "Service"]
