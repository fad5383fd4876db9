"""Fixtures for in-process pipeline tests (helpers in service_harness.py)."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry
from service_harness import RunningService

from warpsync.config import Config
from warpsync.server import Service


@pytest.fixture
def start_service(zctx):
    """`start_service(cfg, stages=None) -> RunningService`; stopped (and checked) at teardown."""
    running: list[RunningService] = []

    def start(cfg: Config, stages: list | None = None) -> RunningService:
        svc = Service(cfg, CollectorRegistry(), stages=stages)
        errors: list[BaseException] = []

        def target() -> None:
            try:
                svc.run()
            except BaseException as exc:  # noqa: BLE001  surfaced in the test
                errors.append(exc)
                svc.ready.set()

        th = threading.Thread(target=target, name="service", daemon=True)
        th.start()
        assert svc.ready.wait(60), "service did not start"
        if errors:
            raise errors[0]
        rs = RunningService(svc, th, zctx)
        rs.errors = errors  # type: ignore[attr-defined]
        running.append(rs)
        return rs

    yield start
    for rs in running:
        rs.close()
        rs.service.request_stop()
        rs.thread.join(30)
        assert not rs.thread.is_alive(), "service did not stop"
        assert not rs.errors, rs.errors  # type: ignore[attr-defined]
