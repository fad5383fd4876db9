"""`warpsync demo --duration S` as a subprocess: events printed, every stream closed without loss, exit 0;
and Ctrl-C (SIGINT) stops it cleanly too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def _flags():
    d = f"/tmp/wsdemo-{os.getpid()}-{time.monotonic_ns()}"
    os.makedirs(d)
    return ["--ingest", f"ipc://{d}/in", "--publish", f"ipc://{d}/pub", "--control", f"ipc://{d}/ctl", "--metrics-port", "0"]


def test_demo_runs_for_a_duration_and_shows_data_flowing():
    r = subprocess.run(
        [sys.executable, "-m", "warpsync", "demo", "--duration", "3", *_flags()],
        capture_output=True, text=True, timeout=90,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("warpsync ready")
    for sid in ("demo/mic", "demo/cam", "demo/imu"):
        assert f"stream.open       {sid}" in out or f"stream.open      {sid}" in out
        assert f"closed {sid}: received" in out and f"{sid}: received 0," not in out
    assert "rejected 0" in out and "stream.status" in out
    assert "stream.rejected" not in out


def test_demo_stops_on_sigint():
    proc = subprocess.Popen([sys.executable, "-m", "warpsync", "demo", *_flags()], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait until data flows: the first status event
            if "stream.status" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "closed demo/mic: received" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
