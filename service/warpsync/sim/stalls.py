"""A service loop that stalls or falls behind, as the engine sees it: chunks stamped when read, not when they came.

`stall_times` draws stalls; `stalled_order` gives the order and the host times at which a loop that stalls reads the
simulator's chunks: a chunk that arrives during a stall is read when it ends, one chunk per stream in turn (a ZeroMQ
PULL socket fair-queues its peers), 20 µs apart, and stamped when read, as inline ingest workers stamp it.
`fall_behind` delays every read of an interval (a loop that keeps reading, late); `feed` runs an engine stage on such
an order. `tools/engine/stall_replay.py` and `tests/integration/test_engine_stalls.py` use them.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from typing import Any

from .generator import SimChunk

READ_GAP_S = 2e-5
"""Host time between two chunks read in one burst, seconds."""


def stall_times(
    rng: random.Random, t0: float, t_end: float, stall_max: float, every: float, around: float | None = None
) -> list[tuple[float, float]]:
    """(start, end) host times of stalls from `t0` + 1 s to `t_end`: one every `every` seconds on average
    (exponential gaps; four times as often within 1.5 s of `t0` + `around`), each 20 ms to `stall_max` long."""
    stalls = []
    t = t0 + 1.0
    while t < t_end:
        near = around is not None and abs(t - t0 - around) < 1.5
        t += rng.expovariate(4.0 / every if near else 1.0 / every)
        stalls.append((t, t + rng.uniform(0.02, stall_max)))
    return stalls


def stalled_order(
    chunks: Sequence[SimChunk], stalls: Sequence[tuple[float, float]], rng: random.Random
) -> list[tuple[float, SimChunk]]:
    """(read time, chunk) for `chunks` (in arrival order) read by a loop that stalls over `stalls` (sorted,
    disjoint); `rng` shuffles which stream a burst starts with."""
    order: list[tuple[float, SimChunk]] = []
    i = si = 0
    while i < len(chunks):
        c = chunks[i]
        while si < len(stalls) and stalls[si][1] <= c.arrival_s:
            si += 1
        if si < len(stalls) and stalls[si][0] <= c.arrival_s:
            end = stalls[si][1]
            burst: dict[str, deque[SimChunk]] = defaultdict(deque)
            while i < len(chunks) and chunks[i].arrival_s < end:
                burst[chunks[i].stream].append(chunks[i])
                i += 1
            names = list(burst)
            rng.shuffle(names)
            k = end
            while any(burst.values()):
                for n in names:
                    if burst[n]:
                        order.append((k, burst[n].popleft()))
                        k += READ_GAP_S
            continue
        order.append((c.arrival_s, c))
        i += 1
    return order


def fall_behind(
    order: Sequence[tuple[float, SimChunk]], start: float, end: float, lag: float
) -> list[tuple[float, SimChunk]]:
    """`order` with every read between host times `start` and `end` `lag` seconds later, and no read before the one
    it followed (those just after `end` wait for the backlog)."""
    out: list[tuple[float, SimChunk]] = []
    last = -math.inf
    for k, c in order:
        k = max(k + lag if start <= k < end else k, last)
        out.append((k, c))
        last = k
    return out


def feed(stage: Any, order: Sequence[tuple[float, SimChunk]], tick_s: float = 0.05) -> Iterator[tuple[float, list]]:
    """Feed `order` to a `warpsync.stage.Stage` (open, samples, and a tick every `tick_s` of read time), yielding
    (read time, the events of that chunk and of the ticks before it)."""
    from ..stage import Samples

    opened: set[str] = set()
    next_tick = None
    for k, c in order:
        next_tick = k if next_tick is None else next_tick
        evs = []
        while next_tick <= k:
            evs += stage.tick(next_tick)
            next_tick += tick_s
        if c.stream not in opened or c.restarted:  # a restarted publisher re-opens (no close: it crashed)
            evs += stage.open(c.meta, k)
            opened.add(c.stream)
        evs += stage.samples(c.meta, Samples(c.stream, c.seq, c.t_dev_s, k, c.samples))
        yield k, evs
