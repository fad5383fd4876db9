"""Commands stop on SIGINT / SIGTERM: the handler sets the stop event once; later signals leave it alone (a
second `Event.set` from a handler that interrupted the first one waits on a lock its own thread holds)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from warpsync.commands._signals import restore_signals, stop_on_signals

pytestmark = pytest.mark.timeout(20)


class _CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def _deliver(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.01)  # the handler runs in this (the main) thread at the next bytecode


def test_signals_set_the_stop_event_once_and_handlers_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = _CountingEvent()
    previous = stop_on_signals(stop)
    try:
        _deliver(signal.SIGTERM)
        assert stop.is_set() and stop.sets == 1
        _deliver(signal.SIGINT)
        _deliver(signal.SIGTERM)
        assert stop.sets == 1
    finally:
        restore_signals(previous)
    assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == before


def test_a_signal_while_the_event_lock_is_held_does_not_block():
    # the state a second signal found the main thread in: inside Event.set, holding the event's lock
    stop = threading.Event()
    previous = stop_on_signals(stop)
    try:
        _deliver(signal.SIGINT)
        with stop._cond:  # the lock Event.set holds
            _deliver(signal.SIGINT)  # with a handler that calls set() again, this never returns
        assert stop.is_set()
    finally:
        restore_signals(previous)
