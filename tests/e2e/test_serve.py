"""`warpsync serve` as a subprocess: ready line and ready file, data through it, its processes' memory and
CPU on a real scrape, SIGINT -> exit 0; a bind error is a clear message and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families
from service_flags import ipc_flags

from warpsync_client import protocol as P

pytestmark = pytest.mark.timeout(120)


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    """The first stdout line starting with 'warpsync ready', polled with a deadline (no sleeps)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("warpsync ready"):
                return line.strip()
    raise AssertionError(f"no ready line; stderr: {proc.stderr.read() if proc.poll() is not None else ''}")


def _serve(tmp_path: Path, *extra: str) -> subprocess.Popen:
    d = f"/tmp/wse2e-{os.getpid()}-{time.monotonic_ns()}"
    os.makedirs(d)
    cmd = [
        sys.executable,
        "-m",
        "warpsync",
        "serve",
        *ipc_flags(d),
        "--ready-file",
        str(tmp_path / "ready.json"),
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reap(proc: subprocess.Popen) -> None:
    """Kill `proc` if a failed test left it running, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def _fields(line: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in line.split()[2:])


@pytest.mark.parametrize("mode", ["inline", "process"])
def test_serve_ready_data_and_sigint_exit_0(tmp_path, zctx, mode):
    proc = _serve(tmp_path, "--workers", "2", "--worker-mode", mode)
    try:
        line = _readline(proc, 60)
        f = _fields(line)
        ready = json.loads((tmp_path / "ready.json").read_text())
        assert ready["control"] == f["control"] and len(ready["ingest"]) == 2
        ctl = zctx.socket(zmq.DEALER)
        ctl.connect(f["control"])
        push = zctx.socket(zmq.PUSH)
        try:
            ctl.send(P.encode_open_request(P.StreamMeta("acc", "sensor", 100.0, (3,), "f4"), 1))
            assert ctl.poll(10000)
            rep = msgpack.unpackb(ctl.recv(), raw=False)
            assert rep["ok"] and rep["endpoint"] in ready["ingest"]
            push.connect(rep["endpoint"])
            for seq in range(20):
                push.send_multipart(P.encode_chunk("acc", seq, seq * 0.1, np.ones((10, 3), np.float32)))
            ctl.send(P.encode_close_request("acc", 19, timeout_s=10.0, req_id=2))
            assert ctl.poll(15000)
            ack = msgpack.unpackb(ctl.recv(), raw=False)
            assert ack["ok"] and ack["received"] == 20
            body = urllib.request.urlopen(ready["metrics"], timeout=10).read().decode()
            m = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(body)
                for s in fam.samples
            }
            assert m[("warpsync_worker_up", (("worker", "1"),))] == 1
            assert m[("process_resident_memory_bytes", ())] > 0 and m[("process_cpu_seconds_total", ())] > 0
            for w in ("0", "1"):  # each worker process's own memory and CPU; inline workers have none
                key = (("worker", w),)
                assert (("warpsync_worker_resident_memory_bytes", key) in m) is (mode == "process")
                if mode == "process":
                    assert m[("warpsync_worker_resident_memory_bytes", key)] > 0
                    assert m[("warpsync_worker_cpu_seconds_total", key)] > 0
        finally:
            ctl.close(linger=0)
            push.close(linger=0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        _reap(proc)


def test_sigterm_also_exits_0(tmp_path):
    proc = _serve(tmp_path)
    try:
        _readline(proc, 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _reap(proc)


def _serve_once(*flags: str) -> subprocess.CompletedProcess:
    """`warpsync serve` with these socket flags (metrics on a free port), run to its exit."""
    return subprocess.run(  # noqa: PLW1510  the callers check returncode themselves
        [sys.executable, "-m", "warpsync", "serve", *flags, "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bind_error_is_clear_and_nonzero(tmp_path, zctx):
    blocker = zctx.socket(zmq.PULL)
    port = blocker.bind_to_random_port("tcp://127.0.0.1")
    try:
        d = f"/tmp/wse2e-{os.getpid()}-{time.monotonic_ns()}"
        os.makedirs(d)
        r = _serve_once(
            "--control", f"tcp://127.0.0.1:{port}", "--ingest", f"ipc://{d}/in", "--publish", f"ipc://{d}/pub"
        )
        assert r.returncode != 0
        assert "cannot bind the control socket" in r.stderr and "--control" in r.stderr
        assert "warpsync ready" not in r.stdout
        r = _serve_once(
            "--ingest", f"tcp://127.0.0.1:{port}", "--control", f"ipc://{d}/c", "--publish", f"ipc://{d}/pub"
        )
        assert r.returncode != 0 and "cannot bind" in r.stderr and "--ingest" in r.stderr
    finally:
        blocker.close(linger=0)
