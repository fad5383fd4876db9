"""Shared fixtures: seeded randomness, ZeroMQ contexts that fail the test if a socket leaks, and the engine's
diagnostic scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, settings

# No per-example deadline: the first call of a Numba kernel includes its compilation. Examples are derived
# from the test (derandomize) so a CI failure reproduces locally.
settings.register_profile("warpsync", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("WARPSYNC_HYPOTHESIS_PROFILE", "warpsync"))


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded per test (WARPSYNC_TEST_SEED overrides), never a global seed."""
    seed = int(os.environ.get("WARPSYNC_TEST_SEED", "20261128"))
    return np.random.default_rng([seed, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture
def zctx():
    """A private zmq.Context; every socket must be closed by the test (checked), linger 0."""
    ctx = zmq.Context()
    ctx.setsockopt(zmq.LINGER, 0)
    yield ctx
    # pyzmq keeps a WeakSet of a context's sockets (private, present since pyzmq 17); if a future pyzmq drops
    # it, this fails loudly instead of silently skipping the leak check.
    leaked = [s for s in list(ctx._sockets) if not s.closed]
    for s in leaked:
        s.close(linger=0)
    ctx.term()
    assert not leaked, f"{len(leaked)} socket(s) left open by the test"


@pytest.fixture
def engine_tool():
    """Loads a script of tools/engine/ (scripts, not a package) as a module: ``engine_tool("contact_timing")``."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "tools" / "engine" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
