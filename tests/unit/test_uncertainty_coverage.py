"""`tools/engine/uncertainty_coverage.py`: every locked event's error beside its published uncertainty."""

from __future__ import annotations

import dataclasses

from warpsync.sim import load_rig


def test_locked_events_of_the_cameras_and_the_imu_beside_their_uncertainty(capsys, engine_tool):
    tool = engine_tool("uncertainty_coverage")
    assert tool.parse_seeds("1-3,7") == [1, 2, 3, 7]
    rows = tool.locked_events(dataclasses.replace(load_rig(None), seed=1), 10.0)
    # seed 1 locks imu1 and both cameras by 7 s; the microphones and the anchor are not counted
    assert {r["stream"] for r in rows} == {"cam1", "cam2", "imu1"}
    for sid in ("cam1", "cam2", "imu1"):
        mine = [r for r in rows if r["stream"] == sid]
        assert mine[0]["since_lock_s"] == 0.0 and all(r["since_lock_s"] >= 0.0 for r in mine)
    # the IMU against the room microphone: within twice its published uncertainty once locked
    imu = [r for r in rows if r["stream"] == "imu1"]
    assert all(r["err_anchor_s"] <= 2 * r["unc_s"] for r in imu)
    tool.report(rows)
    out = capsys.readouterr().out
    assert "imu1: |error| / uncertainty over" in out and "uncertainty x 0.5" in out
