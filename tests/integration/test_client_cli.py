"""`warpsync pub` against the FakeService (in process), and `warpsync sub` as a subprocess stopped by SIGINT."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import zmq

from warpsync.commands import pub as pub_cmd
from warpsync.commands import sub as sub_cmd
from warpsync.errors import WarpsyncError
from warpsync_client.protocol import encode_event
from warpsync_client.testing import FakeService


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    pub_cmd.register(sub)
    sub_cmd.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def svc(zctx):
    with FakeService(zctx) as s:
        yield s


def _samples(svc, stream, meta_shape, dtype):
    chunks = svc.streams[stream].chunks
    return chunks, np.concatenate([np.frombuffer(c[3], dtype).reshape(-1, *meta_shape) for c in chunks])


def test_pub_wav_as_fast_as_possible(svc, tmp_path, rng, capsys):
    audio = rng.integers(-32768, 32767, size=(4000, 2)).astype(np.int16)  # 0.5 s of stereo at 8 kHz
    path = tmp_path / "take.wav"
    sf.write(path, audio, 8000, subtype="PCM_16")
    rc = run(
        [
            "pub",
            str(path),
            "--stream",
            "mic1",
            "--endpoint",
            svc.control_endpoint,
            "--as-fast-as-possible",
            "--t0",
            "100.0",
            "--chunk-ms",
            "20",
        ]
    )
    assert rc == 0
    meta = svc.streams["mic1"].meta
    assert (meta.modality, meta.rate_hz, meta.shape, meta.dtype) == ("audio", 8000.0, (2,), "i2")
    chunks, got = _samples(svc, "mic1", (2,), np.int16)
    np.testing.assert_array_equal(got, audio)
    assert [c[0] for c in chunks] == list(range(25)) and {c[2] for c in chunks} == {160}
    np.testing.assert_allclose([c[1] for c in chunks], 100.0 + np.arange(25) * 0.02)
    assert "25 chunks" in capsys.readouterr().out


def test_pub_paces_at_real_time(svc, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(30, dtype=np.float32))  # 0.3 s at 100 Hz
    t0 = time.monotonic()
    assert run(["pub", str(path), "--stream", "x", "--rate-hz", "100", "--endpoint", svc.control_endpoint]) == 0
    assert time.monotonic() - t0 >= 0.25  # the last chunk is due 0.28 s after the first
    _, got = _samples(svc, "x", (), np.float32)
    np.testing.assert_array_equal(got, np.arange(30, dtype=np.float32))


def test_pub_csv_uses_its_time_column(svc, tmp_path):
    path = tmp_path / "imu.csv"
    rows = ["ax,t_s,ay"] + [f"{i * 0.5},{10 + i * 0.01:.2f},{-i}" for i in range(12)]
    path.write_text("\n".join(rows) + "\n")
    assert (
        run(
            [
                "pub",
                str(path),
                "--stream",
                "imu",
                "--endpoint",
                svc.control_endpoint,
                "--as-fast-as-possible",
                "--chunk-ms",
                "50",
            ]
        )
        == 0
    )
    meta = svc.streams["imu"].meta
    assert (meta.modality, meta.shape, meta.dtype) == ("sensor", (2,), "f8")
    assert meta.rate_hz == pytest.approx(100.0)
    chunks, got = _samples(svc, "imu", (2,), np.float64)
    np.testing.assert_array_equal(got, np.stack([np.arange(12) * 0.5, -np.arange(12.0)], axis=1))
    np.testing.assert_allclose([c[1] for c in chunks], [10.0, 10.05, 10.10])  # times of each chunk's first row


@pytest.mark.parametrize(
    "name, content, extra, match",
    [
        ("missing.wav", None, [], "no such file"),
        ("song.mp3", b"ID3", [], "unsupported file type '.mp3'"),
        ("a.npy", "npy", [], "give --rate-hz"),
        ("c.npy", "complex", ["--rate-hz", "10"], "give --dtype"),
        ("b.csv", "t,x\n0,1\n0.1,oops\n", [], "row 3, column 'x': 'oops' is not a number"),
        ("d.csv", "1,2\n3,4\n", [], "no --rate-hz"),
        ("e.csv", "t,x\n0,1\n0,2\n", [], "strictly increasing"),
        ("f.wav", b"RIFF not really", [], "not a readable sound file"),
    ],
)
def test_pub_bad_files_fail_clearly(tmp_path, name, content, extra, match):
    path = tmp_path / name
    if content == "npy":
        np.save(path, np.zeros(3, np.float32))
    elif content == "complex":
        np.save(path, np.zeros(3, np.complex64))
    elif isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(WarpsyncError, match=match):
        run(["pub", str(path), "--stream", "s", "--endpoint", "tcp://127.0.0.1:1", *extra])


def test_sub_formats_json_lines():
    ev = sub_cmd.Event(
        "x/s",
        "x",
        "s",
        {"v": 1, "event": "x", "a": float("nan"), "b": b"\x01\xff", "stream": "s"},
        np.array([[1.0, np.inf], [-2.0, 0.5]], np.float32),
    )
    rec = json.loads(sub_cmd.format_event(ev, True, "summary"))
    assert rec["header"]["a"] is None and rec["header"]["b"] == "01ff"
    assert rec["payload"] == {"dtype": "f4", "shape": [2, 2], "min": -2.0, "max": 1.0}
    assert json.loads(sub_cmd.format_event(ev, True, "list"))["payload"] == [[1.0, None], [-2.0, 0.5]]
    assert "payload" not in json.loads(sub_cmd.format_event(ev, True, "none"))
    assert sub_cmd.format_event(ev, False, "none").startswith('x/s a=null b="01ff"')


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sub_subprocess_prints_json_lines_and_exits_0_on_signal(zctx, sig):
    xpub = zctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    port = xpub.bind_to_random_port("tcp://127.0.0.1")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warpsync",
            "sub",
            "--endpoint",
            f"tcp://127.0.0.1:{port}",
            "--topic",
            "stream.",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        assert xpub.poll(60_000), "warpsync sub never subscribed"
        assert xpub.recv() == b"\x01stream."
        xpub.send_multipart(encode_event("sync.offset", {"offset_s": 1.0}, stream="cam1"))  # filtered out
        xpub.send_multipart(encode_event("stream.status", {"chunks": 3, "stalled": False}, stream="mic1"))
        rec = json.loads(lines.get(timeout=30))
        assert rec["topic"] == "stream.status/mic1" and rec["header"]["chunks"] == 3 and rec["payload"] is None
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert lines.empty()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        xpub.close(linger=0)


def test_pub_subprocess_stops_on_sigint_and_closes_the_stream(zctx, tmp_path):
    path = tmp_path / "long.npy"
    np.save(path, np.zeros((6000, 3), np.float32))  # 60 s at 100 Hz = 3000 chunks of 20 ms
    with FakeService(zctx) as svc:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "warpsync",
                "pub",
                str(path),
                "--stream",
                "long",
                "--rate-hz",
                "100",
                "--endpoint",
                svc.control_endpoint,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert svc.wait_for(lambda s: "long" in s.streams and s.streams["long"].received >= 2, timeout_s=60)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        # the ack covers every chunk; the close marker (pushed before it) may still be in the fake's queue
        assert svc.wait_for(lambda s: s.streams["long"].closed_seq is not None)
        st = svc.streams["long"]
        assert "interrupted" in out and f"{st.received} accepted" in out
        assert 2 <= st.received < 3000 and st.closed_seq == st.last_seq == st.received - 1


def test_pub_srt_captions(svc, tmp_path):
    path = tmp_path / "talk.srt"
    path.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nHello there,\n  general audience.\n\n"
        "2\r\n00:00:03,250 --> 00:00:04,000\r\nSecond line\r\n\r\n"
        "3\n00:00:05,000 --> 00:00:05,000\n\n",  # empty caption: skipped
        encoding="utf-8",
    )
    assert (
        run(
            [
                "pub",
                str(path),
                "--stream",
                "captions",
                "--endpoint",
                svc.control_endpoint,
                "--t0",
                "100",
                "--as-fast-as-possible",
            ]
        )
        == 0
    )
    meta = svc.streams["captions"].meta
    assert (meta.modality, meta.rate_hz, meta.dtype) == ("text", 0.0, "utf8")
    assert svc.streams["captions"].chunks == [
        (0, 101.0, 1, "Hello there,\ngeneral audience."),
        (1, 103.25, 1, "Second line"),
    ]
    assert svc.streams["captions"].durations == [1.5, 0.75]


def test_pub_bad_srt(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_text("1\n00:00:01 -> 00:00:02\nhi\n")
    with pytest.raises(WarpsyncError, match="caption 1 has no 'HH:MM:SS,mmm --> HH:MM:SS,mmm' line"):
        run(["pub", str(path), "--stream", "s", "--endpoint", "tcp://127.0.0.1:1"])


def test_sub_exits_0_quietly_when_its_reader_goes_away(zctx):
    xpub = zctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    port = xpub.bind_to_random_port("tcp://127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "warpsync", "sub", "--endpoint", f"tcp://127.0.0.1:{port}", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert xpub.poll(60_000) and xpub.recv() == b"\x01"
        xpub.send_multipart(encode_event("stream.status", {"chunks": 1}, stream="a"))
        assert json.loads(proc.stdout.readline())["stream"] == "a"
        proc.stdout.close()  # like `| head -1`: the reader leaves
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:  # each event is a write to a closed pipe
            xpub.send_multipart(encode_event("stream.status", {"chunks": 2}, stream="a"))
            xpub.poll(50)
        assert proc.wait(timeout=5) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        xpub.close(linger=0)
