"""`warpsync align` as a subprocess on generated recordings with a known offset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "warpsync", *args]


def _scene(rng: np.random.Generator, rate: int, seconds: float) -> np.ndarray:
    """Impulsive events (decaying noise bursts) over a quiet background."""
    n = int(rate * seconds)
    x = 0.003 * rng.standard_normal(n)
    for t in np.sort(rng.uniform(0.2, seconds - 0.5, int(seconds * 2))):
        i = int(t * rate)
        k = np.arange(int(0.15 * rate))
        x[i : i + k.size] += rng.uniform(0.1, 0.5) * np.exp(-k / (0.02 * rate)) * rng.standard_normal(k.size)
    return x


@pytest.fixture
def pair(tmp_path, rng):
    """ref.wav and cam.wav: cam is the scene delayed by 1.2345 s, low-passed, with its own noise."""
    rate = 16000
    offset_s = 1.2345
    s = _scene(rng, rate, 40.0)
    ref = s[: int(30 * rate)]
    shift = round(offset_s * rate)
    cam = np.concatenate([0.003 * rng.standard_normal(shift), s])[: int(32 * rate)]
    cam = lfilter([0.25, 0.5, 0.25], [1.0], cam) + 0.002 * rng.standard_normal(cam.size)
    sf.write(tmp_path / "ref.wav", ref.astype(np.float32), rate)
    sf.write(tmp_path / "cam.flac", cam.astype(np.float32), rate)
    return tmp_path, shift / rate


def test_align_two_wavs_finds_the_offset(pair):
    """The CLI as a subprocess: JSON, the warp CSV, the plot and the progress bars in one run."""
    d, offset_s = pair
    plot = []
    try:
        import matplotlib  # noqa: F401

        plot = ["--plot", str(d / "w.png")]
    except ImportError:
        pass
    out = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli(
            "align",
            str(d / "ref.wav"),
            str(d / "cam.flac"),
            "--json",
            "--warp-csv",
            str(d / "warp"),
            "--progress",
            *plot,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["reference"] == "ref"
    by = {r["stream"]: r for r in res["streams"]}
    assert set(by) == {"ref", "cam"}
    cam = by["cam"]
    # the filter adds one sample of group delay: a 2.5-sample tolerance covers it
    assert cam["offset_s"] == pytest.approx(offset_s, abs=2.5 / 16000)
    assert abs(cam["drift_ppm"]) < 50
    assert 0 < cam["confidence"] <= 1 and cam["method"] == "content"
    assert by["ref"]["offset_s"] == 0.0 and by["ref"]["method"] == "reference"
    warp = np.loadtxt(d / "warp" / "cam.csv", delimiter=",", skiprows=1)
    assert warp.ndim == 2 and warp.shape[1] == 2 and warp.shape[0] >= 2
    # the warp maps the file's local time to the reference (t_ref = t_local - offset at every hop): it starts
    # from the coarse prior (10 ms grid) and converges; its median is the offset
    assert np.all(np.diff(warp[:, 1]) > 0)
    assert np.median(warp[:, 0] - warp[:, 1]) == pytest.approx(offset_s, abs=0.001)
    assert np.abs(warp[:, 0] - warp[:, 1] - offset_s).max() < 0.02
    assert "reading ref.wav" in out.stderr and "aligning" in out.stderr and "100.0%" in out.stderr
    if plot:
        assert (d / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    from warpsync.cli import main

    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_align_text_output_and_ref_flag(pair, capsys):
    d, offset_s = pair
    code, out, err = _main(capsys, "align", str(d / "cam.flac"), "--ref", str(d / "ref.wav"))
    assert code == 0, err
    assert out.startswith("reference: ref")
    line = next(ln for ln in out.splitlines() if ln.startswith("cam"))
    assert float(line.split()[1]) == pytest.approx(offset_s, abs=2.5 / 16000)


def test_align_errors(tmp_path, pair, capsys):
    d, _ = pair
    code, _, err = _main(capsys, "align", str(d / "ref.wav"), str(d / "nope.wav"))
    assert code == 2 and "nope.wav: no such file" in err
    (tmp_path / "x.docx").write_text("x")
    code, _, err = _main(capsys, "align", str(d / "ref.wav"), str(tmp_path / "x.docx"))
    assert code == 2 and "unsupported file type" in err
    code, _, err = _main(capsys, "align", str(d / "ref.wav"))
    assert code == 2 and "at least two" in err
    (tmp_path / "f").write_text("x")
    code, _, err = _main(capsys, "align", str(d / "ref.wav"), str(d / "cam.flac"), "--warp-csv", str(tmp_path / "f"))
    assert code == 2 and "not a directory" in err


def test_align_plot_without_matplotlib_is_a_clear_error(pair, capsys, monkeypatch):
    d, _ = pair
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = _main(capsys, "align", str(d / "ref.wav"), str(d / "cam.flac"), "--plot", str(d / "w.png"))
    assert code == 2 and "--plot needs matplotlib" in err
    assert not (d / "w.png").exists()


def test_align_sensor_logs(tmp_path, rng, capsys):
    """Two accelerometer CSV logs of the same motion, the second starting 2.5 s later into it."""
    rate = 200.0
    n = int(60 * rate)
    bumps = np.zeros(n + 1000)
    for i in rng.integers(0, bumps.size - 50, 40):
        bumps[i : i + 20] += rng.uniform(1, 4) * np.hanning(20)
    a = bumps[:n] + 0.05 * rng.standard_normal(n)
    shift = int(2.5 * rate)
    b = bumps[shift : shift + n - 1000] + 0.05 * rng.standard_normal(n - 1000)
    t = np.arange(n) / rate
    np.savetxt(tmp_path / "a.csv", np.c_[t, a, 9.81 + 0 * a], delimiter=",", header="time,ax,az", comments="")
    np.savetxt(tmp_path / "b.csv", np.c_[b, 9.81 + 0 * b], delimiter=",", header="ax,az", comments="")
    code, out, err = _main(capsys, "align", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--rate", "200", "--json")
    assert code == 0, err
    res = {r["stream"]: r for r in json.loads(out)["streams"]}
    # b's local time 0 is a's 2.5 s: t_local - t_ref = -2.5
    assert res["b"]["offset_s"] == pytest.approx(-2.5, abs=1.0 / rate)
    assert res["b"]["modality"] == "sensor"


def test_align_an_imu_log_to_camera_frames(tmp_path):
    """The default rig's 60 fps camera frames and its IMU, saved as .npz on a shared clock (times from the truth,
    the IMU's 30 ms off), aligned by the CLI with --shared-clock: the IMU is placed against the camera's motion
    (per-cell change of motion energy vs acceleration), on the right lag, within half a frame of the truth
    (the 30 ms prior error removed)."""
    import dataclasses

    from warpsync.sim import load_rig, record

    dur = 40.0
    rig = dataclasses.replace(load_rig(ROOT / "configs" / "rigs" / "default.toml"), seed=3, duration_s=dur)
    truth, rec = record(rig, dur)
    starts = {}
    for name in ("cam1", "imu1"):
        r = rec[name]
        t0 = truth.stream(name).scene_time(r.t_dev0_s) + (0.03 if name == "imu1" else 0.0)
        starts[name] = (t0, r.t_dev0_s)
        t = t0 + np.arange(len(r.data)) / r.rate_hz
        np.savez(tmp_path / f"{name}.npz", data=r.data, t=t, modality=r.modality)
    out = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli("align", str(tmp_path / "cam1.npz"), str(tmp_path / "imu1.npz"), "--shared-clock", "--json"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    imu = {r["stream"]: r for r in json.loads(out.stdout)["streams"]}["imu1"]
    assert imu["method"] == "content"

    def local(name, s):  # the file's time of the sample that sensed scene time s
        t0, d0 = starts[name]
        return t0 + truth.stream(name).dev_time(s) - d0

    t_s = imu["t_s"]
    s_end = truth.stream("cam1").scene_time(t_s - starts["cam1"][0] + starts["cam1"][1])
    err = imu["offset_s"] - (local("imu1", s_end) - t_s)
    assert abs(err) <= 0.5 / 60.0, f"{err * 1e3:.2f} ms from the truth"


def test_align_camera_frames_to_the_room_microphone_through_the_imu(tmp_path):
    """The default rig's room microphone, IMU and 60 fps camera frames, saved as .npz on a shared clock (the IMU
    30 ms off, the camera 40 ms), the microphone first (the reference): the CLI aligns the IMU to the microphone
    by impacts and the camera to the IMU by motion, so the camera lands within half a frame of the truth against
    the microphone (a camera compared with a microphone directly finds nothing)."""
    import dataclasses

    from warpsync.sim import load_rig, record

    dur = 40.0
    rig = dataclasses.replace(load_rig(ROOT / "configs" / "rigs" / "default.toml"), seed=3, duration_s=dur)
    truth, rec = record(rig, dur)
    starts = {}
    for name, off in (("room", 0.0), ("imu1", 0.03), ("cam1", -0.04)):
        r = rec[name]
        t0 = truth.stream(name).scene_time(r.t_dev0_s) + off
        starts[name] = (t0, r.t_dev0_s)
        t = t0 + np.arange(len(r.data)) / r.rate_hz
        np.savez(tmp_path / f"{name}.npz", data=r.data, t=t, modality=r.modality)
    files = [str(tmp_path / f"{n}.npz") for n in ("room", "imu1", "cam1")]
    out = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        _cli("align", *files, "--shared-clock", "--json"), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    res = {r["stream"]: r for r in json.loads(out.stdout)["streams"]}

    def local(name, s):  # the file's time of the sample that sensed scene time s
        t0, d0 = starts[name]
        return t0 + truth.stream(name).dev_time(s) - d0

    for name, tol in (("imu1", 1e-3), ("cam1", 0.5 / 60.0)):
        r = res[name]
        assert r["method"] == "content", name
        s_end = truth.stream("room").scene_time(r["t_s"] - starts["room"][0] + starts["room"][1])
        err = r["offset_s"] - (local(name, s_end) - r["t_s"])
        assert abs(err) <= tol, f"{name}: {err * 1e3:.2f} ms from the truth"
