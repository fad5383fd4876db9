"""The worker's shared-memory payload arena: allocation, wrap-around, full -> None (socket fallback), release."""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np
import pytest

from warpsync.ingest.worker import ARENA_HEADER, PayloadArena


@pytest.fixture
def arena():
    shm = shared_memory.SharedMemory(create=True, size=PayloadArena.shm_bytes(1000))
    a = PayloadArena(shm, 1000)
    yield a
    a.close()
    shm.unlink()


def test_put_copies_and_wraps_and_respects_releases(arena):
    x = np.arange(200, dtype=np.uint8)
    spots = [arena.put(x) for _ in range(4)]  # 800 bytes used
    assert spots == [(0, 200), (200, 400), (400, 600), (600, 800)]
    np.testing.assert_array_equal(arena.buf[200:400], x)
    assert arena.put(np.zeros(250, np.uint8)) is None  # larger than a quarter of the arena
    assert arena.put(x) == (800, 1000)
    assert arena.put(x) is None  # full until the service releases
    arena.release(200)
    assert arena.put(x) == (0, 1200)  # wraps to the start
    # released everything: the next payloads follow on from byte 200 of the ring
    arena.release(1000)
    assert arena.put(np.ones(150, np.uint8)) == (200, 1350)
    assert arena.put(np.ones(100, np.uint8)) == (350, 1450)
    arena.release(10**9)  # never beyond what was written
    assert arena.released == arena.head


def test_wrap_pads_to_the_end(arena):
    arena.put(np.ones(240, np.uint8))
    arena.put(np.ones(240, np.uint8))
    arena.put(np.ones(240, np.uint8))
    arena.put(np.ones(240, np.uint8))  # head 960
    arena.release(960)
    off, end = arena.put(np.full(100, 7, np.uint8))  # 40 bytes left at the end: padded, placed at 0
    assert off == 0 and end == 960 + 40 + 100
    assert (arena.buf[:100] == 7).all()


def test_space_handed_back_through_the_header_word(arena):
    """The service writes the byte count it is done with to the arena's header word (another mapping of
    the same shared memory, as in the service process); a worker whose arena is full picks it up."""
    other = shared_memory.SharedMemory(name=arena.shm.name)
    try:
        word = np.frombuffer(other.buf, dtype=np.int64, count=1)
        payload_view = np.frombuffer(other.buf, dtype=np.uint8, count=1000, offset=ARENA_HEADER)
        x = np.arange(250, dtype=np.uint8)
        assert [arena.put(x) for _ in range(4)] == [(0, 250), (250, 500), (500, 750), (750, 1000)]
        np.testing.assert_array_equal(payload_view[250:500], x)  # the service reads past the header
        assert arena.put(x) is None  # full, nothing handed back yet
        word[0] = 500  # the service is done with the first two payloads
        assert arena.put(x) == (0, 1250)
        assert arena.released == 500
        word[0] = 10**9  # never beyond what was written; read only when the arena looks full
        assert arena.put(x) == (250, 1500)
        assert arena.released == 500
        assert arena.put(x) == (500, 1750)
        assert arena.released == 1500
    finally:
        word = payload_view = None
        other.close()
