"""Worker addresses derived from ``ingest.endpoint`` skip the service's other ports."""

from __future__ import annotations

import pytest

from warpsync.errors import ConfigError
from warpsync.ingest.config import tcp_port, worker_endpoint


def test_default_ports_workers_skip_publish_and_control():
    base = "tcp://127.0.0.1:5555"
    reserved = (5556, 5557, 9108)
    got = [worker_endpoint(base, i, reserved) for i in range(4)]
    assert got == ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:5558", "tcp://127.0.0.1:5559", "tcp://127.0.0.1:5560"]
    # without reserved ports the old scheme (port + i) is unchanged
    assert worker_endpoint(base, 2) == "tcp://127.0.0.1:5557"


def test_reserved_ports_between_workers_are_skipped_once_each():
    got = [worker_endpoint("tcp://h:100", i, (102, 104, 105)) for i in range(5)]
    assert got == ["tcp://h:100", "tcp://h:101", "tcp://h:103", "tcp://h:106", "tcp://h:107"]


def test_other_transports_and_ephemeral_ports():
    assert worker_endpoint("tcp://127.0.0.1:*", 3, (5556,)) == "tcp://127.0.0.1:*"
    assert worker_endpoint("ipc:///tmp/x", 2, (5556,)) == "ipc:///tmp/x.2"
    with pytest.raises(ConfigError, match="lower ingest port"):
        worker_endpoint("tcp://h:65535", 1)
    with pytest.raises(ConfigError, match="tcp:// or ipc://"):
        worker_endpoint("inproc://x", 1)


def test_tcp_port():
    assert tcp_port("tcp://127.0.0.1:5556") == 5556
    assert tcp_port("tcp://[::1]:7") == 7
    assert tcp_port("tcp://127.0.0.1:*") is None and tcp_port("tcp://h:0") is None
    assert tcp_port("ipc:///tmp/x") is None
