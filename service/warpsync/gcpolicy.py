"""The garbage-collector policy of the long-running processes (`warpsync serve`, its ingest workers).

The per-message paths allocate thousands of small acyclic objects per batch (records, frames, views). With
the interpreter's defaults every 700 allocations start a collection, and the older generations hold
everything numpy, Numba (and torch, when speech is on) imported, which each full collection walks again.
`quiet_gc`, called once start-up is done, freezes what exists (it is never collected again, and never
walked) and makes young collections rarer. Measured with an in-process worker on 1 KiB chunks: 7.1 µs per
message with the defaults, 4.9 µs with this (`tests/benchmarks/bench_ingest.py` gives the end-to-end effect).
Cycles created later are still collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (minus deallocations) of container objects between two young-generation collections."""


def quiet_gc() -> None:
    """Collect once, freeze everything alive, and raise the young generation's threshold (process-wide)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 50, 100)
