"""warpsync: streaming multimodal synchronization service."""

from ._numba_cache import ensure_cache_dir

ensure_cache_dir()  # before numba is imported (`_numba_cache.py`)

__version__ = "0.1.0"
