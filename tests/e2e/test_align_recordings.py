"""`warpsync align` on the example recordings (tests/data/recordings, made by the rig simulator), checked
against the simulator's ground truth: every point of the fine warp, drift included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from warpsync.cli import main
from warpsync.sim import Truth

DATA = Path(__file__).resolve().parents[1] / "data" / "recordings"


def test_align_example_recordings_against_the_truth(tmp_path, capsys):
    raw = json.loads((DATA / "truth.json").read_text())
    truth = Truth.from_json(raw)
    files = raw["files"]
    room, room_first = truth.stream(files["room.flac"][0]), files["room.flac"][1]
    cam, cam_first = truth.stream(files["cam.flac"][0]), files["cam.flac"][1]

    code = main(["align", str(DATA / "room.flac"), str(DATA / "cam.flac"), "--json", "--warp-csv", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0, out.err
    res = {r["stream"]: r for r in json.loads(out.out)["streams"]}

    def true_ref(t_local_cam: float) -> float:
        s = cam.scene_time(cam_first + t_local_cam)
        return room.dev_time(s) - room_first

    warp = np.loadtxt(tmp_path / "cam.csv", delimiter=",", skiprows=1)
    late = warp[warp[:, 1] > 6.0]  # after the first window has settled
    assert late.shape[0] >= 5
    err = np.array([tr - true_ref(tl) for tl, tr in late])
    assert np.abs(err).max() < 0.001, f"warp error up to {np.abs(err).max() * 1e3:.3f} ms"
    # offset and drift as reported (t_local - t_ref at the end of the overlap; drift of cam vs room)
    t_end = late[-1, 0]
    assert res["cam"]["offset_s"] == pytest.approx(t_end - true_ref(t_end), abs=0.001)
    true_drift = ((1 + cam.drift_ppm * 1e-6) / (1 + room.drift_ppm * 1e-6) - 1) * 1e6
    assert res["cam"]["drift_ppm"] == pytest.approx(true_drift, abs=40.0)  # 12 s: a loose bound
