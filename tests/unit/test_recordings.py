"""File readers for offline alignment: what is read, what is rejected, and how it says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from warpsync.errors import AlignmentError
from warpsync.recordings import read_recording, unique_ids


def test_wav_and_flac_round_trip(tmp_path, rng):
    x = (0.2 * rng.standard_normal((12000, 2))).astype(np.float32)
    for ext, sub in ((".wav", "FLOAT"), (".flac", "PCM_24")):
        p = tmp_path / f"a{ext}"
        sf.write(p, x, 16000, subtype=sub)
        calls = []
        rec = read_recording(p, progress=lambda d, t: calls.append((d, t)))  # noqa: B023  used within this iteration
        assert rec.modality == "audio" and rec.rate_hz == 16000 and rec.data.shape == (12000, 2)
        np.testing.assert_allclose(rec.data, x, atol=1e-6 if sub == "FLOAT" else 2e-7 * 2**2)
        assert rec.stream == "a" and rec.t0_s == 0.0
        assert calls and calls[-1] == (12000, 12000)


def test_video_audio_track(tmp_path):
    av = pytest.importorskip("av")
    p = tmp_path / "clip.mp4"
    rate = 16000
    t = np.arange(rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.5)).astype(np.float32)  # silence, then a tone at 0.5 s
    c = av.open(str(p), "w")
    a = c.add_stream("aac", rate=rate)
    a.layout = "mono"
    v = c.add_stream("mpeg4", rate=10)
    v.width = v.height = 32
    v.pix_fmt = "yuv420p"
    for i in range(0, x.size, 1024):
        fr = av.AudioFrame.from_ndarray(x[None, i : i + 1024], format="fltp", layout="mono")
        fr.sample_rate = rate
        fr.pts = i
        for pkt in a.encode(fr):
            c.mux(pkt)
    for pkt in a.encode(None):
        c.mux(pkt)
    for _ in range(10):
        for pkt in v.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
            c.mux(pkt)
    for pkt in v.encode(None):
        c.mux(pkt)
    c.close()
    rec = read_recording(p)
    assert rec.modality == "audio" and rec.rate_hz == rate and rec.data.shape[1] == 1
    assert abs(rec.data.shape[0] - rate) <= 2048  # codec padding
    # the tone starts at 0.5 s on the file's own time axis (t0 accounts for encoder priming)
    env = np.abs(rec.data[:, 0])
    onset = rec.t0_s + np.argmax(env > 0.1) / rate
    assert onset == pytest.approx(0.5, abs=0.01)
    # a file without an audio track
    q = tmp_path / "silent.mp4"
    c = av.open(str(q), "w")
    v = c.add_stream("mpeg4", rate=10)
    v.width = v.height = 32
    v.pix_fmt = "yuv420p"
    for _ in range(3):
        for pkt in v.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
            c.mux(pkt)
    for pkt in v.encode(None):
        c.mux(pkt)
    c.close()
    with pytest.raises(AlignmentError, match="has no audio track"):
        read_recording(q)


def test_csv_with_time_column_and_header(tmp_path):
    p = tmp_path / "imu.csv"
    t = 5.0 + np.arange(200) / 100.0
    lines = ["# an IMU log", "Time,ax,ay,az"] + [f"{ti:.4f},{np.sin(ti):.5f},{np.cos(ti):.5f},9.81" for ti in t]
    p.write_text("\n".join(lines) + "\n\n")
    rec = read_recording(p)
    assert rec.modality == "sensor" and rec.rate_hz == pytest.approx(100.0)
    assert rec.data.shape == (200, 3) and rec.t0_s == pytest.approx(5.0)
    assert rec.meta["columns"] == ["ax", "ay", "az"]
    np.testing.assert_allclose(rec.times_s, t, atol=1e-4)


def test_csv_without_time_needs_a_rate(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("\n".join(f"{i},{i * 2}" for i in range(50)))
    with pytest.raises(AlignmentError, match="--rate"):
        read_recording(p)
    rec = read_recording(p, rate_hz=50.0)
    assert rec.rate_hz == 50.0 and rec.data.shape == (50, 2) and rec.times_s is None


@pytest.mark.parametrize(
    "text, match",
    [
        ("t,x\n0,1\n0.1,abc\n", "row 3 has a non-numeric value"),
        ("t,x\n0,1\n0.1,2,3\n", "columns"),
        ("t,x\n0,1\n0,2\n", "increase strictly"),
        ("t\n0\n1\n", "only a time column"),
        ("x,y\n", "no numeric rows"),
        ("x\n1\nnan\n", "NaN or infinite"),
        ("x\n1\n", "at least 2"),
    ],
)
def test_bad_csv_gets_one_clear_error(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(AlignmentError, match=match):
        read_recording(p, rate_hz=10.0)


def test_npy_and_npz(tmp_path, rng):
    x = rng.standard_normal((300, 3))
    np.save(tmp_path / "a.npy", x)
    with pytest.raises(AlignmentError, match="--rate"):
        read_recording(tmp_path / "a.npy")
    rec = read_recording(tmp_path / "a.npy", rate_hz=200.0)
    assert rec.data.dtype == np.float32 and rec.data.shape == (300, 3)
    np.savez(tmp_path / "b.npz", data=x[:, 0], t=10.0 + np.arange(300) / 50.0)
    rec = read_recording(tmp_path / "b.npz")
    assert rec.rate_hz == pytest.approx(50.0) and rec.t0_s == 10.0 and rec.data.shape == (300, 1)
    np.savez(tmp_path / "c.npz", other=x)
    with pytest.raises(AlignmentError, match="'data'"):
        read_recording(tmp_path / "c.npz")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(AlignmentError, match="pickle"):
        read_recording(tmp_path / "o.npy", rate_hz=1.0)
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(AlignmentError, match="not numeric"):
        read_recording(tmp_path / "s.npy", rate_hz=1.0)


def test_npz_with_a_modality_video_frames_and_vectors(tmp_path, rng):
    frames = rng.integers(0, 255, (40, 24, 32), dtype=np.uint8)
    np.savez(tmp_path / "cam.npz", data=frames, rate_hz=60.0, modality="video")
    rec = read_recording(tmp_path / "cam.npz")
    assert rec.modality == "video" and rec.data.dtype == np.uint8 and rec.data.shape == (40, 24, 32)
    np.savez(
        tmp_path / "rgb.npz", data=frames[..., None].repeat(3, axis=3), t=2.0 + np.arange(40) / 30.0, modality="video"
    )
    rec = read_recording(tmp_path / "rgb.npz")
    assert rec.rate_hz == pytest.approx(30.0) and rec.t0_s == 2.0 and rec.data.shape == (40, 24, 32, 3)
    np.savez(tmp_path / "vec.npz", data=rng.random((40, 16)), rate_hz=25.0, modality="video")
    assert read_recording(tmp_path / "vec.npz").data.shape == (40, 16)
    np.savez(tmp_path / "imu.npz", data=rng.random((40, 3)), rate_hz=25.0, modality="sensor")
    assert read_recording(tmp_path / "imu.npz").modality == "sensor"
    bad = {
        "frames without modality": ({"data": frames, "rate_hz": 60.0}, "modality='video'"),
        "unknown modality": ({"data": frames, "rate_hz": 60.0, "modality": "lidar"}, "'modality' must be"),
        "tiny frames": ({"data": frames[:, :3, :3], "rate_hz": 60.0, "modality": "video"}, "4x4"),
        "irregular frame times": (
            {"data": frames, "t": np.cumsum(rng.uniform(0.01, 0.03, 40)), "modality": "video"},
            "regular times",
        ),
    }
    for what, (arrays, msg) in bad.items():
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(AlignmentError, match=msg):
            read_recording(tmp_path / "bad.npz")
            pytest.fail(what)


def test_missing_unsupported_and_corrupt_files(tmp_path):
    with pytest.raises(AlignmentError, match="no such file"):
        read_recording(tmp_path / "nope.wav")
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(AlignmentError, match="unsupported file type '.docx'"):
        read_recording(tmp_path / "x.docx")
    (tmp_path / "fake.wav").write_bytes(b"RIFF????WAVEjunk")
    with pytest.raises(AlignmentError, match="not a readable audio file"):
        read_recording(tmp_path / "fake.wav")
    (tmp_path / "fake.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(AlignmentError, match="not a readable media file|no audio track"):
        read_recording(tmp_path / "fake.mp4")
    with pytest.raises(AlignmentError, match="not a regular file"):
        read_recording(tmp_path)
    with pytest.raises(AlignmentError, match="positive"):
        read_recording(tmp_path / "x.docx", rate_hz=-1.0)


def test_unique_ids():
    assert unique_ids([Path("a/cam 1.wav"), Path("b/cam 1.wav"), Path("room.flac")]) == ["cam_1", "cam_1-2", "room"]
