"""`warpsync simulate` and `warpsync score` as subprocesses against a real `warpsync serve` (ipc endpoints in
a private directory, stopped with SIGINT)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import zmq
from service_flags import ipc_flags

from warpsync.sim import Truth
from warpsync_client import Control

ROOT = Path(__file__).resolve().parents[2]
TINY_RIG = """
name = "tiny"
seed = 4
duration_s = 3.0
[[cameras]]
name = "c"
fps = 30.0
output = "motion"
clock = { offset_s = 4.0, drift_ppm = 50.0 }
[[mics]]
name = "room"
rate_hz = 16000.0
chunk_samples = 320
clock = { offset_s = -2.0, drift_ppm = -20.0 }
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "warpsync", *args]


def _wait_file(path: Path, proc: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise AssertionError(f"warpsync serve exited with {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.05)  # polling a file the service writes atomically, with a deadline
    raise AssertionError("warpsync serve did not become ready")


@pytest.fixture
def service():
    d = Path(tempfile.mkdtemp(prefix="wse2e", dir="/tmp"))
    ready = d / "ready.json"
    proc = subprocess.Popen(
        _cli(
            "serve",
            *ipc_flags(d),
            "--workers",
            "1",
            "--ready-file",
            str(ready),
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _wait_file(ready, proc, 60.0), d
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_simulate_publishes_a_rig_writes_the_truth_and_scores(service, tmp_path):
    endpoints, _d = service
    rig = tmp_path / "tiny.toml"
    rig.write_text(TINY_RIG)
    truth_path = tmp_path / "truth.json"
    out = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli(
            "simulate",
            "--rig",
            str(rig),
            "--control",
            endpoints["control"],
            "--publish",
            endpoints["publish"],
            "--truth",
            str(truth_path),
            "--score",
            "--json",
            "--linger",
            "0.5",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "sent" in out.stderr and "of 3 streams" in out.stderr
    card = json.loads(out.stdout)
    assert {f["name"] for f in card["floors"]} >= {"audio<->audio |offset error| p95", "event latency p99"}
    truth = Truth.read(truth_path)
    assert set(truth.streams) == {"c", "c.mic", "room"}
    assert truth.t0_host_s > 1e9  # live runs put scene time on the host clock
    ctx = zmq.Context()
    try:
        with Control(endpoints["control"], context=ctx) as ctl:
            streams = {s["stream"]: s for s in ctl.streams()}
    finally:
        ctx.term()
    assert {"c", "c.mic", "room"} <= set(streams)
    # 3 s of 20 ms audio chunks reached the service
    assert streams["room"]["last_seq"] >= 140


def test_score_subscribes_and_prints_a_scorecard(service, tmp_path):
    endpoints, _ = service
    import tomllib

    from warpsync.sim import Simulator, rig_from_mapping

    truth = Simulator(rig_from_mapping(tomllib.loads(TINY_RIG))).truth
    truth.write(tmp_path / "t.json")
    out = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli("score", "--truth", str(tmp_path / "t.json"), "--publish", endpoints["publish"], "--duration", "0.5"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "floors" in out.stdout and "event latency" in out.stdout
    bad = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli("score", "--truth", str(tmp_path / "missing.json")), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr
