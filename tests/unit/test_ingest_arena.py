"""The worker's shared-memory payload arena: allocation, wrap-around, full -> None (socket fallback), release."""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np
import pytest

from warpsync.ingest.worker import PayloadArena


@pytest.fixture
def arena():
    shm = shared_memory.SharedMemory(create=True, size=1000)
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
