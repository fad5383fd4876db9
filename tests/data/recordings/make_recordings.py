"""Regenerate the example recordings from the rig simulator (deterministic):

    .venv/bin/python tests/data/recordings/make_recordings.py

room.flac (room microphone, 16 kHz) and cam.flac (a camera's microphone, 16 kHz, its own clock: 80 ppm against
the room's 25 ppm, a different capture latency and acoustic delay) cover the same 12 s scene, each file
starting at its own first sample; imu.csv is an accelerometer on one of the objects (200 Hz, with a time
column on the IMU's own clock). truth.json holds the simulator's ground truth plus each file's first device
timestamp, so a test can map any file time to the reference file's time exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from warpsync.sim import CameraConfig, ClockConfig, ImuConfig, MicConfig, NetworkConfig, RigConfig, Simulator

HERE = Path(__file__).resolve().parent
QUIET = NetworkConfig(drop_prob=0.0, spike_prob=0.0)
RIG = RigConfig(
    name="recordings",
    seed=21,
    duration_s=12.0,
    cameras=(
        CameraConfig(
            name="cam",
            fps=30.0,
            output="motion",
            mic_rate_hz=16000.0,
            mic_latency_s=0.037,
            mic_acoustic_delay_s=0.004,
            clock=ClockConfig(offset_s=-8.25, drift_ppm=80.0),
            network=QUIET,
        ),
    ),
    mics=(
        MicConfig(
            name="room",
            rate_hz=16000.0,
            chunk_samples=320,
            latency_s=0.011,
            acoustic_delay_s=0.007,
            clock=ClockConfig(offset_s=3.5, drift_ppm=25.0),
            network=QUIET,
        ),
    ),
    imus=(
        ImuConfig(
            name="imu",
            rate_hz=200.0,
            object=0,
            latency_s=0.02,
            clock=ClockConfig(offset_s=100.0, drift_ppm=-60.0),
            network=QUIET,
        ),
    ),
)


def main() -> None:
    sim = Simulator(RIG)
    data: dict[str, list[np.ndarray]] = {}
    first: dict[str, float] = {}
    for c in sim.chunks():
        if c.stream in ("room", "cam.mic", "imu"):
            data.setdefault(c.stream, []).append(c.samples)
            first.setdefault(c.stream, c.t_dev_s)
    room = np.concatenate(data["room"])[:, 0]
    cam = np.concatenate(data["cam.mic"])[:, 0]
    sf.write(HERE / "room.flac", room, 16000, subtype="PCM_16")
    sf.write(HERE / "cam.flac", cam, 16000, subtype="PCM_16")
    imu = np.concatenate(data["imu"])
    t = first["imu"] + np.arange(imu.shape[0]) / 200.0
    with (HERE / "imu.csv").open("w") as fh:
        fh.write("# accelerometer on object 0, m/s^2; time on the IMU's own clock, s\n")
        fh.write("time,ax,ay,az\n")
        for ti, (ax, ay, az) in zip(t, imu):
            fh.write(f"{ti:.5f},{ax:.4f},{ay:.4f},{az:.4f}\n")
    truth = sim.truth.to_json()
    truth["files"] = {
        "room.flac": ["room", first["room"]],
        "cam.flac": ["cam.mic", first["cam.mic"]],
        "imu.csv": ["imu", first["imu"]],
    }
    (HERE / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
