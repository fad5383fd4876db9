"""RingBuffer against a plain-list reference model: random chunk sizes (empty ones included), wrap-around,
time-range reads, readers and the three full policies."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.errors import ConfigError
from warpsync.ingest.ringbuffer import RingBuffer, TextBuffer, capacity_for


class Reference:
    """Every sample ever written, with its device and arrival time; the ring keeps the last `capacity`."""

    def __init__(self, rate_hz: float) -> None:
        self.rate = rate_hz
        self.data: list[np.ndarray] = []
        self.t: list[float] = []
        self.arrival: list[float] = []

    def write(self, t0: float, arrival: float, x: np.ndarray) -> None:
        for i, row in enumerate(x):
            self.data.append(row.copy())
            self.t.append(t0 + i / self.rate)
            self.arrival.append(arrival)


def _feed(rng, buf, ref, n_chunks, max_n, shape=(2,)):
    t = 100.0
    for _ in range(n_chunks):
        n = int(rng.integers(0, max_n + 1))  # 0: empty chunks are no-ops
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        arrival = 1000.0 + t
        assert buf.write(t, arrival, x)
        ref.write(t, arrival, x)
        t += n / buf.rate_hz + float(rng.choice([0.0, 0.0, 0.5]))  # sometimes a forward time gap


@pytest.mark.parametrize("capacity", [1, 7, 64, 1000])
def test_ring_without_readers_keeps_the_newest_capacity_samples(rng, capacity):
    buf = RingBuffer(100.0, (2,), "f4", capacity)
    ref = Reference(100.0)
    _feed(rng, buf, ref, 200, min(capacity, 13))
    total = len(ref.data)
    assert buf.head == total and len(buf) == min(capacity, total) and buf.tail == total - len(buf)
    w = buf.read_index(0, buf.head)  # clipped to what is retained
    assert w.start == buf.tail
    np.testing.assert_array_equal(w.data, np.array(ref.data[buf.tail :]).reshape(-1, 2))
    np.testing.assert_allclose(w.t_dev_s, ref.t[buf.tail :], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(w.arrival_s, ref.arrival[buf.tail :])


def test_read_time_matches_reference_on_random_ranges(rng):
    buf = RingBuffer(50.0, (3,), "f8", 400)
    ref = Reference(50.0)
    _feed(rng, buf, ref, 120, 9, shape=(3,))
    t_all = np.array(ref.t)
    for _ in range(200):
        t0, t1 = sorted(rng.uniform(t_all[0] - 1, t_all[-1] + 1, size=2))
        w = buf.read_time(t0, t1)
        idx = [i for i in range(buf.tail, buf.head) if t0 <= t_all[i] < t1]  # [t0, t1)
        assert w.start == (idx[0] if idx else w.start)
        np.testing.assert_array_equal(w.data, np.array([ref.data[i] for i in idx]).reshape(-1, 3))
        np.testing.assert_allclose(w.t_dev_s, t_all[idx], atol=1e-9)
    assert len(buf.read_time(5.0, 5.0)) == 0


def test_hand_worked_wraparound():
    # capacity 4, rate 10 Hz: write 3 samples at t=0, then 3 at t=0.3: the ring holds samples 2..5
    buf = RingBuffer(10.0, (), "i4", 4)
    buf.write(0.0, 50.0, np.array([1, 2, 3], np.int32))
    buf.write(0.3, 51.0, np.array([4, 5, 6], np.int32))
    assert (buf.tail, buf.head) == (2, 6)
    w = buf.read_index(0, 6)
    assert w.start == 2 and w.data.tolist() == [3, 4, 5, 6]
    np.testing.assert_allclose(w.t_dev_s, [0.2, 0.3, 0.4, 0.5])
    assert w.arrival_s.tolist() == [50.0, 51.0, 51.0, 51.0]
    assert buf.read_time(0.3, 0.5).data.tolist() == [4, 5]  # [0.3, 0.5)
    assert buf.time_span() == pytest.approx((0.2, 0.5))


def test_block_policy_refuses_instead_of_overwriting_unread_samples():
    buf = RingBuffer(10.0, (), "f4", 10, policy="block")
    buf.add_reader("engine")
    assert buf.write(0.0, 0.0, np.arange(8, dtype=np.float32))
    assert not buf.write(0.8, 0.0, np.arange(3, dtype=np.float32))  # 8 unread + 3 > 10: held back
    assert buf.head == 8 and buf.dropped_samples == 0 and buf.fill_ratio == pytest.approx(0.8)
    got = buf.consume("engine", max_samples=5)
    assert got.data.tolist() == [0, 1, 2, 3, 4]
    assert buf.write(0.8, 0.0, np.arange(3, dtype=np.float32))
    rest = buf.consume("engine")
    assert rest.data.tolist() == [5, 6, 7, 0, 1, 2] and buf.dropped_samples == 0


def test_drop_oldest_moves_a_lagging_reader_and_counts():
    buf = RingBuffer(10.0, (), "f4", 10, policy="drop_oldest")
    buf.add_reader("slow")
    buf.write(0.0, 0.0, np.arange(8, dtype=np.float32))
    assert buf.write(0.8, 0.0, np.arange(8, 13, dtype=np.float32))
    assert buf.dropped_samples == 3
    assert buf.consume("slow").data.tolist() == list(range(3, 13))


def test_drop_newest_discards_the_incoming_chunk_and_counts():
    buf = RingBuffer(10.0, (), "f4", 10, policy="drop_newest")
    buf.add_reader("slow")
    buf.write(0.0, 0.0, np.arange(8, dtype=np.float32))
    assert not buf.write(0.8, 0.0, np.arange(8, 13, dtype=np.float32))
    assert buf.dropped_samples == 5 and buf.dropped_chunks == 1 and buf.head == 8
    assert buf.consume("slow").data.tolist() == list(range(8))


def test_lossless_under_block_with_random_chunks_and_a_slow_reader(rng):
    """Write/consume interleaved at random: every sample comes out once, in order."""
    buf = RingBuffer(100.0, (2,), "i2", 50, policy="block")
    buf.add_reader("r")
    sent, got = [], []
    held = None
    t = 0.0
    for _ in range(2000):
        if held is None:
            n = int(rng.integers(0, 12))
            held = (t, rng.integers(-1000, 1000, size=(n, 2)).astype(np.int16))
            t += n / 100.0
        if buf.write(held[0], 0.0, held[1]):
            sent.append(held[1])
            held = None
        if rng.random() < 0.3:
            got.append(buf.consume("r", max_samples=int(rng.integers(0, 20))).data)
    got.append(buf.consume("r").data)
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(sent))
    assert buf.dropped_samples == 0


def test_segment_limit_counts_as_full():
    buf = RingBuffer(10.0, (), "f4", 100, policy="block", max_segments=3)
    buf.add_reader("r")
    for i in range(3):
        assert buf.write(float(i), 0.0, np.zeros(1, np.float32))
    assert not buf.write(3.0, 0.0, np.zeros(1, np.float32))  # a 4th segment would evict unread times
    buf.consume("r", 1)
    assert buf.write(3.0, 0.0, np.zeros(1, np.float32))


def test_bad_construction_and_oversized_chunk_are_clear_errors():
    with pytest.raises(ConfigError, match="rate_hz"):
        RingBuffer(0.0, (), "f4", 10)
    with pytest.raises(ConfigError, match="capacity"):
        RingBuffer(10.0, (), "f4", 0)
    with pytest.raises(ConfigError, match="full_policy"):
        RingBuffer(10.0, (), "f4", 10, policy="yolo")  # type: ignore[arg-type]
    buf = RingBuffer(10.0, (), "f4", 10)
    with pytest.raises(ConfigError, match="larger than the whole buffer"):
        buf.write(0.0, 0.0, np.zeros(11, np.float32))
    assert capacity_for(48000.0, 30.0) == 1_440_000


def test_text_buffer_keeps_the_newest_and_reads_by_time():
    tb = TextBuffer(capacity=3)
    for i in range(5):
        tb.write(float(i), 100.0 + i, f"w{i}", 0.5)
    assert len(tb) == 3 and tb.fill_ratio == 1.0
    assert [x[3] for x in tb.read_time(0.0, 10.0)] == ["w2", "w3", "w4"]
    assert [x[3] for x in tb.read_time(3.0, 4.0)] == ["w3"]


@pytest.mark.parametrize("capacity,max_segments", [(50, None), (1000, 8), (37, 5)])
def test_write_many_equals_one_write_per_chunk(rng, capacity, max_segments):
    a = RingBuffer(100.0, (2,), "f4", capacity, max_segments=max_segments)
    b = RingBuffer(100.0, (2,), "f4", capacity, max_segments=max_segments)
    t = 0.0
    for _ in range(60):
        k = int(rng.integers(1, min(6, a._seg_cap) + 1))
        counts = rng.integers(1, 8, size=k)
        if counts.sum() > capacity:
            continue
        ts = t + np.concatenate([[0.0], np.cumsum(counts[:-1])]) / 100.0
        arrivals = rng.uniform(0, 1, size=k)
        data = rng.standard_normal((int(counts.sum()), 2)).astype(np.float32)
        a.write_many(ts, arrivals, counts, data)
        off = 0
        for ti, ai, ni in zip(ts, arrivals, counts, strict=True):
            b.write(float(ti), float(ai), data[off : off + ni])
            off += ni
        t = float(ts[-1]) + counts[-1] / 100.0
        assert (a.head, a.tail) == (b.head, b.tail)
        wa, wb = a.read_index(0, a.head), b.read_index(0, b.head)
        np.testing.assert_array_equal(wa.data, wb.data)
        np.testing.assert_array_equal(wa.t_dev_s, wb.t_dev_s)
        np.testing.assert_array_equal(wa.arrival_s, wb.arrival_s)
    a.add_reader("r")
    with pytest.raises(ValueError):
        a.write_many(np.zeros(1), np.zeros(1), np.ones(1, np.int64), np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("policy", ["block", "drop_oldest", "drop_newest"])
@pytest.mark.parametrize(("capacity", "max_segments"), [(40, None), (40, 5), (257, None)])
def test_chunks_kept_by_reference_read_the_same_as_copied_ones(rng, policy, capacity, max_segments):
    """`write(keep=True)` (no copy) against the same writes copied, under every policy, with and without a
    reader, wrap-around, evicted segments and `write_many` mixed in: the same heads, tails, drops, reads and
    consumed windows; and a kept chunk is let go once it has left the buffer."""
    a = RingBuffer(50.0, (3,), "f4", capacity, policy=policy, max_segments=max_segments)
    b = RingBuffer(50.0, (3,), "f4", capacity, policy=policy, max_segments=max_segments)
    t = 0.0
    for step in range(1500):
        op = rng.random()
        if op < 0.55:
            n = int(rng.integers(1, min(capacity, 30) + 1))
            x = rng.standard_normal((n, 3)).astype(np.float32)
            x.flags.writeable = False
            arrival = float(rng.uniform(0, 5))
            assert a.write(t, arrival, x, keep=bool(rng.random() < 0.6)) == b.write(t, arrival, x.copy())
            t += n / 50.0
        elif op < 0.62 and not a.has_readers:
            counts = rng.integers(1, 5, size=int(rng.integers(1, 4)))
            if counts.sum() <= capacity and len(counts) <= a._seg_cap:
                ts = t + np.concatenate([[0.0], np.cumsum(counts[:-1])]) / 50.0
                arr = rng.uniform(0, 5, size=len(counts))
                x = rng.standard_normal((int(counts.sum()), 3)).astype(np.float32)
                a.write_many(ts, arr, counts, x)
                b.write_many(ts, arr, counts, x)
                t = float(ts[-1]) + counts[-1] / 50.0
        elif op < 0.75:
            if a.has_readers:
                m = int(rng.integers(0, 40))
                wa, wb = a.consume("r", m), b.consume("r", m)
                assert wa.start == wb.start
                np.testing.assert_array_equal(wa.data, wb.data)
                np.testing.assert_array_equal(wa.t_dev_s, wb.t_dev_s)
            elif step > 300:
                a.add_reader("r")
                b.add_reader("r")
        else:
            lo = int(rng.integers(a.tail - 5, a.head + 2))
            hi = int(rng.integers(lo, a.head + 5))
            wa, wb = a.read_index(lo, hi), b.read_index(lo, hi)
            assert wa.start == wb.start
            np.testing.assert_array_equal(wa.data, wb.data)
            np.testing.assert_array_equal(wa.t_dev_s, wb.t_dev_s)
            np.testing.assert_array_equal(wa.arrival_s, wb.arrival_s)
            t0, t1 = sorted(rng.uniform(t - capacity / 50.0 - 1, t + 0.5, size=2))
            np.testing.assert_array_equal(a.read_time(t0, t1).data, b.read_time(t0, t1).data)
        assert (a.head, a.tail, a.dropped_samples, a.dropped_chunks) == (
            b.head,
            b.tail,
            b.dropped_samples,
            b.dropped_chunks,
        )
        assert a.free() == b.free() and a.unread() == b.unread()
        for seg in a._kept:  # only what the buffer still holds is referenced
            assert seg >= a._seg_tail and a._seg_end(seg) > a.tail
        assert sum(len(x) for x in a._kept.values()) <= capacity + 30


def test_a_kept_chunk_is_referenced_not_copied_and_must_match_the_shape():
    buf = RingBuffer(10.0, (2,), "f4", 100)
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert buf.write(0.0, 0.0, x, keep=True)
    assert next(iter(buf._kept.values())) is x
    np.testing.assert_array_equal(buf.read_index(0, 10).data, x)
    with pytest.raises(ValueError, match="shape"):
        buf.write(1.0, 0.0, np.zeros((3, 4), np.float32), keep=True)
    for i in range(10):  # overwritten by copied chunks: the reference goes
        buf.write(1.0 + i, 0.0, np.zeros((10, 2), np.float32))
    assert not buf._kept
