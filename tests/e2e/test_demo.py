"""`warpsync demo --duration S` as a subprocess: events printed, every stream closed without loss, exit 0;
and Ctrl-C (SIGINT) stops it cleanly too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from service_flags import ipc_flags

pytestmark = pytest.mark.timeout(120)


def _flags():
    d = f"/tmp/wsdemo-{os.getpid()}-{time.monotonic_ns()}"
    os.makedirs(d)
    return ipc_flags(d)


def test_demo_runs_for_a_duration_and_shows_data_flowing(tmp_path):
    # as on a fresh machine: numba's cache empty, so every kernel compiles in this run. Compiling the speech
    # aligner on the first words held the service loop for 4.8 s: the rig's publisher had no reply to `open`
    # and the demo ran without its rig; compiling the simulator's sound kernel sent the first chunks 0.7 s late,
    # and four clocks took it for a jump
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    r = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        [sys.executable, "-m", "warpsync", "demo", "--duration", "8", *_flags()],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "publisher failed" not in r.stderr and "clock jump" not in r.stderr, r.stderr[-3000:]
    out = r.stdout
    assert out.startswith("warpsync ready")
    for sid in ("cam1", "cam1.mic", "cam2", "room", "imu1", "talker", "captions"):
        assert f"stream.open      {sid} " in out
        assert f"published {sid}: " in out and f"published {sid}: 0 chunks" not in out
    assert "stream.status" in out and "sync.offset" in out
    assert "stream.rejected" not in out
    # the live error line against the simulator's truth, and the scorecard at the end
    assert "live |offset error| vs truth:" in out and "floors" in out
    # every scored event carries its latency: receipt minus when the chunk holding its newest sample was sent
    assert re.search(r"event latency p50 [0-9.]+ ms, p99 [0-9.]+ ms", out), out[-3000:]


def test_demo_stops_on_sigint():
    proc = subprocess.Popen(
        [sys.executable, "-m", "warpsync", "demo", *_flags()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stdout:  # wait until data flows: the first status event
            if "stream.status" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "published " in out and "floors" in out  # streams closed and acknowledged, scorecard printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
