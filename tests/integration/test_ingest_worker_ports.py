"""Several workers on consecutive TCP ports next to the publish and control ports: no bind clash."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from warpsync.config import Config


def _free_run(length: int) -> int:
    """A port P such that P .. P+length-1 are free on 127.0.0.1 now (tried a few times)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + length > 65535:
            continue
        socks = []
        try:
            for q in range(p, p + length):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    pytest.skip("no run of free TCP ports found")


def test_three_workers_skip_the_publish_and_control_ports(start_service):
    p = _free_run(5)
    base = Config()
    cfg = dataclasses.replace(
        base,
        ingest=dataclasses.replace(base.ingest, endpoint=f"tcp://127.0.0.1:{p}", workers=3),
        publish=dataclasses.replace(base.publish, endpoint=f"tcp://127.0.0.1:{p + 1}"),
        control=dataclasses.replace(base.control, endpoint=f"tcp://127.0.0.1:{p + 2}"),
        metrics=dataclasses.replace(base.metrics, port=0),
    )
    rs = start_service(cfg)
    assert rs.endpoints.ingest == (f"tcp://127.0.0.1:{p}", f"tcp://127.0.0.1:{p + 3}", f"tcp://127.0.0.1:{p + 4}")
    assert rs.endpoints.publish == f"tcp://127.0.0.1:{p + 1}"
    assert rs.request("ping")["ok"]
