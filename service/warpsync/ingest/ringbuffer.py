"""Per-stream ring buffer of samples with their device and arrival times (pure: no sockets, no threads).

Samples are addressed by an absolute index (0 for the first sample ever written, growing without bound).
The buffer keeps the newest ``capacity`` samples. Times are kept per *chunk* (a segment: first index,
device time of its first sample, host arrival time), not per sample, so a 1 MiB chunk costs one copy of
its data and nothing else; the device time of sample ``k`` of a segment is ``t_dev_s + (k - first) / rate_hz``.
A chunk written with ``keep=True`` costs no copy at all: the buffer keeps a reference to the caller's array
(which must not change afterwards: the service passes the read-only ZeroMQ frame a large chunk arrived in)
and drops it when the chunk leaves the buffer. Reads see the same samples either way.

Readers (e.g. the sync engine) register a cursor with `add_reader` and `consume` what they have not read
yet. What happens when a write would overwrite samples a reader has not consumed is the full policy:

* ``block``       `write` returns ``False`` and stores nothing; the caller holds the chunk and retries once
                  the reader has consumed (the service stops reading its socket meanwhile: lossless
                  backpressure up to the sender);
* ``drop_oldest`` the unread samples are overwritten; the lagging reader is moved forward and the loss is
                  counted in `dropped_samples`;
* ``drop_newest`` the incoming chunk is discarded and counted in `dropped_samples`.

Without readers the buffer is a plain ring: the oldest samples are overwritten and nothing is counted (no
one was going to read them in order; time-range reads of old data simply find less).

Windows are read by time range on the stream's own (device) time axis, as [t0_s, t1_s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ConfigError

FullPolicy = Literal["block", "drop_oldest", "drop_newest"]


@dataclass(frozen=True)
class Window:
    """Samples ``[start, stop)`` (absolute indices) copied out of a buffer, with per-sample times."""

    start: int
    data: np.ndarray
    """``(n, *shape)`` copy of the samples."""
    t_dev_s: np.ndarray
    """``(n,)`` device time of each sample, seconds."""
    arrival_s: np.ndarray
    """``(n,)`` host arrival time (``time.time()``) of the chunk each sample came in, seconds."""

    @property
    def stop(self) -> int:
        return self.start + len(self.data)

    def __len__(self) -> int:
        return len(self.data)


class RingBuffer:
    """Fixed-capacity ring of ``(n, *shape)`` samples of one stream."""

    def __init__(
        self,
        rate_hz: float,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        capacity: int,
        policy: FullPolicy = "block",
        max_segments: int | None = None,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ConfigError(f"ring buffer needs a positive finite rate_hz, got {rate_hz}")
        if capacity < 1:
            raise ConfigError(f"ring buffer capacity must be at least 1 sample, got {capacity}")
        if policy not in ("block", "drop_oldest", "drop_newest"):
            raise ConfigError(f"ingest.full_policy {policy!r} is not one of block, drop_oldest, drop_newest")
        self.rate_hz = float(rate_hz)
        self.shape = tuple(shape)
        self.capacity = int(capacity)
        self.policy: FullPolicy = policy
        self._data = np.zeros((self.capacity, *self.shape), dtype=dtype)
        # one segment per chunk; a chunk has >= 1 sample, so `capacity` segments always suffice
        self._seg_cap = int(min(self.capacity, max_segments)) if max_segments else self.capacity
        self._seg_first = np.zeros(self._seg_cap, dtype=np.int64)
        self._seg_t = np.zeros(self._seg_cap, dtype=np.float64)
        self._seg_arrival = np.zeros(self._seg_cap, dtype=np.float64)
        self._seg_head = 0  # absolute segment count written
        self._seg_tail = 0  # absolute index of the oldest retained segment
        self._kept: dict[int, np.ndarray] = {}
        """Chunks kept by reference (``write(keep=True)``), by absolute segment number, oldest first; their
        slots in ``_data`` are unused."""
        self.head = 0
        """Absolute index one past the newest sample."""
        self.tail = 0
        """Absolute index of the oldest retained sample."""
        self._readers: dict[str, int] = {}
        self.dropped_samples = 0
        """Samples lost to a dropping policy (never incremented under ``block``)."""
        self.dropped_chunks = 0

    # ------------------------------------------------------------------------------------------ state
    def __len__(self) -> int:
        return self.head - self.tail

    @property
    def fill_ratio(self) -> float:
        """Unread fraction of the buffer (by the slowest reader); without readers, how full the ring is."""
        return self.unread() / self.capacity

    def unread(self) -> int:
        if not self._readers:
            return self.head - self.tail
        return self.head - min(self._readers.values())

    def free(self) -> int:
        """Samples that can be written without overwriting unread samples (or segments)."""
        if not self._readers:
            return self.capacity
        floor = min(self._readers.values())
        free_samples = self.capacity - (self.head - floor)
        # segments still needed by the slowest reader
        seg_needed = self._seg_head - self._segment_of(floor) if floor < self.head else 0
        return free_samples if seg_needed < self._seg_cap else 0

    def fits(self, n: int) -> bool:
        return n <= self.free()

    # ------------------------------------------------------------------------------------------ write
    def write(self, t_dev_s: float, arrival_s: float, data: np.ndarray, keep: bool = False) -> bool:
        """Append one chunk. Returns ``False`` only under ``block`` when it does not fit (nothing stored)
        or under ``drop_newest`` when it was dropped (counted). With `keep`, `data` itself is kept (no copy):
        the caller must never change it (a read-only array is the safe way to say so)."""
        n = len(data)
        if n == 0:
            return True
        if n > self.capacity:
            raise ConfigError(
                f"a chunk of {n} samples is larger than the whole buffer ({self.capacity} samples); "
                "raise ingest.buffer_s or send smaller chunks"
            )
        if self._readers and not self.fits(n):
            if self.policy == "block":
                return False
            if self.policy == "drop_newest":
                self.dropped_samples += n
                self.dropped_chunks += 1
                return False
        self._store(t_dev_s, arrival_s, data, keep)
        return True

    def _store(self, t_dev_s: float, arrival_s: float, data: np.ndarray, keep: bool = False) -> None:
        n = len(data)
        cap = self.capacity
        if keep:
            if data.shape[1:] != self.shape:
                raise ValueError(f"chunk of shape {data.shape[1:]} written to a buffer of shape {self.shape}")
            self._kept[self._seg_head] = data.astype(self._data.dtype, copy=False)
        else:
            self._put_ring(self.head, data)
        seg_cap = self._seg_cap
        evicted = self._seg_head - self._seg_tail == seg_cap
        if evicted:
            self._seg_tail += 1
        s = self._seg_head % seg_cap
        self._seg_first[s] = self.head
        self._seg_t[s] = t_dev_s
        self._seg_arrival[s] = arrival_s
        self._seg_head += 1
        self.head += n
        if self.head - self.tail > cap or evicted:
            self._advance_tail()

    def _advance_tail(self) -> None:
        """After a write that overwrote samples or evicted segments: move the tail (and lagging readers)."""
        cap = self.capacity
        seg_cap = self._seg_cap
        new_tail = max(self.tail, self.head - cap)
        oldest_first = int(self._seg_first[self._seg_tail % seg_cap])
        new_tail = max(new_tail, oldest_first)
        self.tail = new_tail
        while self._seg_tail < self._seg_head - 1:  # drop segments that lie wholly before the tail
            if int(self._seg_first[(self._seg_tail + 1) % seg_cap]) > new_tail:
                break
            self._seg_tail += 1
        for name, cur in self._readers.items():
            if cur < new_tail:
                self.dropped_samples += new_tail - cur
                self._readers[name] = new_tail
        self._release_kept()

    def _release_kept(self) -> None:
        """Let go of kept chunks that have left the buffer (evicted segments, samples before the tail)."""
        kept = self._kept
        while kept:
            seg = next(iter(kept))
            if seg >= self._seg_tail and self._seg_end(seg) > self.tail:
                break
            del kept[seg]

    def _seg_end(self, seg: int) -> int:
        """Absolute index one past the last sample of segment `seg` (a retained one)."""
        return int(self._seg_first[(seg + 1) % self._seg_cap]) if seg + 1 < self._seg_head else self.head

    @property
    def has_readers(self) -> bool:
        return bool(self._readers)

    def write_many(self, t_dev_s: np.ndarray, arrival_s: np.ndarray, counts: np.ndarray, data: np.ndarray) -> None:
        """Append consecutive chunks at once (``counts[i]`` samples each, `data` holding them all): the same
        result as one `write` per chunk, with one copy. Only for buffers without readers (nothing to hold
        back or drop) and at most `capacity` samples and `max_segments` chunks in total."""
        total = len(data)
        k = len(counts)
        if self._readers or total > self.capacity or k > self._seg_cap:
            raise ValueError("write_many: needs a buffer without readers and a batch that fits")
        if total == 0:
            return
        self._put_ring(self.head, data)
        firsts = np.empty(k, dtype=np.int64)
        firsts[0] = self.head
        np.cumsum(counts[:-1], out=firsts[1:])
        firsts[1:] += self.head
        idx = np.arange(self._seg_head, self._seg_head + k) % self._seg_cap
        self._seg_first[idx] = firsts
        self._seg_t[idx] = t_dev_s
        self._seg_arrival[idx] = arrival_s
        self._seg_head += k
        evicted = self._seg_head - self._seg_tail > self._seg_cap
        if evicted:
            self._seg_tail = self._seg_head - self._seg_cap
        self.head += total
        if self.head - self.tail > self.capacity or evicted:
            self._advance_tail()
        elif self._kept:
            self._release_kept()

    # ------------------------------------------------------------------------------------------ read
    def add_reader(self, name: str, from_start: bool = False) -> None:
        """Register a consumer; it starts at the newest sample (or the oldest retained one)."""
        self._readers[name] = self.tail if from_start else self.head

    def remove_reader(self, name: str) -> None:
        self._readers.pop(name, None)

    def consume(self, name: str, max_samples: int | None = None) -> Window:
        """Everything reader `name` has not read yet (at most `max_samples`), and advance its cursor."""
        cur = self._readers[name]
        stop = self.head if max_samples is None else min(self.head, cur + max(0, int(max_samples)))
        win = self.read_index(cur, stop)
        self._readers[name] = stop
        return win

    def _segment_of(self, index: int) -> int:
        """Absolute segment number holding sample `index` (which must be retained)."""
        lo, hi = self._seg_tail, self._seg_head
        firsts = self._seg_first
        cap = self._seg_cap
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if firsts[mid % cap] <= index:
                lo = mid
            else:
                hi = mid
        return lo

    def read_index(self, start: int, stop: int) -> Window:
        """Samples [start, stop) by absolute index, clipped to what is retained."""
        start = max(int(start), self.tail)
        stop = min(int(stop), self.head)
        n = max(0, stop - start)
        data = np.empty((n, *self.shape), dtype=self._data.dtype)
        t_dev = np.empty(n, dtype=np.float64)
        arrival = np.empty(n, dtype=np.float64)
        if n == 0:
            return Window(start, data, t_dev, arrival)
        kept = self._kept
        if not kept:
            self._copy_ring(data, start, start, stop)
        seg = self._segment_of(start)
        pos = start
        run = start  # start of the stretch not yet copied out of ``_data`` (with kept chunks)
        period = 1.0 / self.rate_hz
        while pos < stop:
            s = seg % self._seg_cap
            seg_first = int(self._seg_first[s])
            end = min(stop, self._seg_end(seg))
            k = np.arange(pos - seg_first, end - seg_first, dtype=np.float64)
            t_dev[pos - start : end - start] = self._seg_t[s] + k * period
            arrival[pos - start : end - start] = self._seg_arrival[s]
            if kept:
                ref = kept.get(seg)
                if ref is not None:
                    self._copy_ring(data, start, run, pos)
                    data[pos - start : end - start] = ref[pos - seg_first : end - seg_first]
                    run = end
            pos = end
            seg += 1
        if kept:
            self._copy_ring(data, start, run, stop)
        return Window(start, data, t_dev, arrival)

    def _put_ring(self, a: int, data: np.ndarray) -> None:
        """``_data`` at absolute indices [a, a + len(data)) = `data` (wrapping; at most `capacity` samples)."""
        n = len(data)
        cap = self.capacity
        start = a % cap
        if start + n <= cap:
            self._data[start : start + n] = data
        else:
            first = cap - start
            self._data[start:] = data[:first]
            self._data[: n - first] = data[first:]

    def _copy_ring(self, out: np.ndarray, out_start: int, a: int, b: int) -> None:
        """``out[a - out_start : b - out_start]`` = samples [a, b) as stored in ``_data`` (wrapping)."""
        n = b - a
        if n <= 0:
            return
        i = a % self.capacity
        first = min(n, self.capacity - i)
        o = a - out_start
        out[o : o + first] = self._data[i : i + first]
        if first < n:
            out[o + first : o + n] = self._data[: n - first]

    def index_at(self, t_s: float) -> int:
        """Absolute index of the first retained sample whose device time is >= `t_s`."""
        if self.head == self.tail:
            return self.head
        cap = self._seg_cap
        lo, hi = self._seg_tail, self._seg_head  # find the last segment starting at or before t_s
        if self._seg_t[lo % cap] >= t_s:
            return self.tail
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._seg_t[mid % cap] <= t_s:
                lo = mid
            else:
                hi = mid
        s = lo % cap
        seg_first = max(int(self._seg_first[s]), self.tail)
        seg_end = int(self._seg_first[(lo + 1) % cap]) if lo + 1 < self._seg_head else self.head
        k = math.ceil((t_s - self._seg_t[s]) * self.rate_hz - 1e-9)
        return min(max(int(self._seg_first[s]) + k, seg_first), seg_end)

    def read_time(self, t0_s: float, t1_s: float) -> Window:
        """Retained samples with device time in [t0_s, t1_s)."""
        if not t1_s > t0_s:
            return self.read_index(self.head, self.head)
        return self.read_index(self.index_at(t0_s), self.index_at(t1_s))

    def time_span(self) -> tuple[float, float] | None:
        """Device times [first, last] of the retained samples, or ``None`` when empty."""
        if self.head == self.tail:
            return None
        w0 = self.read_index(self.tail, self.tail + 1)
        w1 = self.read_index(self.head - 1, self.head)
        return float(w0.t_dev_s[0]), float(w1.t_dev_s[0])


def capacity_for(rate_hz: float, buffer_s: float, min_samples: int = 1) -> int:
    """Samples held by a buffer of `buffer_s` seconds at `rate_hz`."""
    return max(int(min_samples), math.ceil(rate_hz * buffer_s))


class TextBuffer:
    """The text-stream counterpart of `RingBuffer`: the newest captions (at most `capacity`), each with its
    device time, duration and arrival time, readable by device time range. Text is small and irregular, so
    there is no backpressure: the oldest captions are dropped (they are already published and counted)."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ConfigError(f"text buffer capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._items: list[tuple[float, float | None, float, str]] = []
        self._start = 0
        self.head = 0

    def __len__(self) -> int:
        return len(self._items) - self._start

    def write(self, t_dev_s: float, arrival_s: float, text: str, duration_s: float | None = None) -> bool:
        self._items.append((t_dev_s, duration_s, arrival_s, text))
        self.head += 1
        if len(self._items) - self._start > self.capacity:
            self._start += 1
        if self._start > self.capacity:  # compact now and then: amortised O(1)
            del self._items[: self._start]
            self._start = 0
        return True

    @property
    def fill_ratio(self) -> float:
        return len(self) / self.capacity

    def read_time(self, t0_s: float, t1_s: float) -> list[tuple[float, float | None, float, str]]:
        """Captions ``(t_dev_s, duration_s, arrival_s, text)`` whose start time is in [t0_s, t1_s)."""
        return [it for it in self._items[self._start :] if t0_s <= it[0] < t1_s]
