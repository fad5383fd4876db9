"""Where numba keeps the kernels it compiles.

numba caches each ``@njit(cache=True)`` kernel beside its source file, else under the user's cache directory
(``$XDG_CACHE_HOME`` or ``~/.cache``). Where neither can be written (a read-only install run by a user without a
home: the Docker image's system user) every such kernel raised ``RuntimeError: cannot cache function ...: no
locator available`` at import, and the service could not start. Then, unless ``NUMBA_CACHE_DIR`` says otherwise,
the cache goes to a per-user directory under the system's temporary directory. This must run before numba is
imported: `warpsync/__init__.py` calls it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _writable(path: Path) -> bool:
    """Whether `path` is a writable directory, or could be created as one (its first existing ancestor is)."""
    for p in (path, *path.parents):
        if p.exists():
            return p.is_dir() and os.access(p, os.W_OK | os.X_OK)
    return False


def fallback_cache_dir(environ: Mapping[str, str], package_dir: Path, home: Path) -> str | None:
    """The ``NUMBA_CACHE_DIR`` to set, or None where numba finds a place of its own (or one is set)."""
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    user_cache = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else home / ".cache"
    if _writable(package_dir) or _writable(user_cache / "numba"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return str(Path(tempfile.gettempdir()) / f"warpsync-numba-{uid}")


def ensure_cache_dir() -> None:
    d = fallback_cache_dir(os.environ, Path(__file__).resolve().parent, Path(os.path.expanduser("~")))
    if d is not None:
        os.environ["NUMBA_CACHE_DIR"] = d
