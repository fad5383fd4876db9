"""Process-wide settings of the long-running processes (`warpsync serve` and its ingest workers), applied once
start-up is done (`tune_process`).

* **The cyclic garbage collector is kept off the per-message paths.** A batch allocates thousands of small
  acyclic objects (records, frames, views). With the interpreter's defaults every 700 allocations start a
  collection, and the older generations hold everything numpy, Numba (and torch, when speech is on)
  imported, which each full collection walks again. `quiet_gc` freezes what exists (never collected again,
  never walked) and makes young collections rarer. Measured with an in-process worker on 1 KiB chunks: 7.1 µs
  per message with the defaults, 4.9 µs with this. Cycles created later are still collected.
* **Freed message buffers are kept, not handed back to the kernel** (`keep_freed_memory`, glibc only). libzmq
  allocates each received message; a worker frees a batch of them at once (16 MiB of 1 MiB chunks), glibc
  returned the top of its heap to the kernel, and the next messages faulted every page in again: at 1 MiB
  the worker's I/O thread spent 190–240 µs per message where raw pyzmq's receiver, which frees each message
  at once and so reuses one buffer, spends about 130. Memory the process has used stays with it up to
  `TRIM_BYTES` of free heap.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 20_000
"""Allocations (minus deallocations) of container objects between two young-generation collections."""
TRIM_BYTES = 256 * 1024 * 1024
"""Free memory at the top of a heap kept before glibc returns it to the kernel (``M_TRIM_THRESHOLD``)."""
MMAP_BYTES = 32 * 1024 * 1024
"""Allocations this large or larger get their own mapping (``M_MMAP_THRESHOLD``; glibc's maximum): smaller
ones, every message up to 32 MiB, come from the heap and reuse freed memory."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def quiet_gc() -> None:
    """Collect once, freeze everything alive, and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 50, 100)


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds (fixed values also turn off its dynamic adjustment). Returns
    whether they took effect (False elsewhere than glibc: nothing is changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES))
    if not ok:
        log.debug("mallopt refused the trim/mmap thresholds; the allocator keeps its defaults")
    return ok


def tune_process() -> None:
    """Both of the above, for a long-running process whose start-up is done."""
    quiet_gc()
    keep_freed_memory()
