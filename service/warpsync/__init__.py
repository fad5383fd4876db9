"""warpsync: streaming multimodal synchronization service."""

__version__ = "0.1.0"
