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
* **BLAS runs on the calling thread** (`single_threaded_blas`). The engine's linear algebra is small and
  frequent (a 121 x 121 solve and an 8000 x 121 product per camera hop, the cells' ridge fits), on one event
  loop. OpenBLAS (numpy's and scipy's) hands such calls to a thread per core and keeps those threads spinning
  between calls. `tests/benchmarks/soak_service.py` on 2 cores (the default rig for 4 min, in real time, the
  simulator in a second process): `warpsync serve` used 0.37-0.62 of a core with OpenBLAS's threads and
  0.23-0.27 with one, with the same hop times (p99 under 50 ms) and event latency (p99 69 and 75 ms). The
  capacity benchmark (`bench_engine.py`) has always run with one BLAS thread: the service now runs as it
  measured.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadpoolctl import threadpool_limits

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


def single_threaded_blas() -> threadpool_limits | None:
    """Limit every BLAS library loaded so far (OpenBLAS, MKL, BLIS) to one thread, process-wide. Returns the
    limiter (`restore_original_limits()` undoes it), or None when no BLAS library is loaded."""
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=1, user_api="blas")
    return limiter if limiter.get_original_num_threads().get("blas") is not None else None


def tune_process() -> None:
    """All of the above, for a long-running process whose start-up is done."""
    quiet_gc()
    keep_freed_memory()
    single_threaded_blas()
