"""`tools/engine/contact_timing.py`: each seen kick's timing in a camera's kinetic envelope against the IMU's."""

from __future__ import annotations

import dataclasses

import numpy as np

from warpsync.sim import load_rig


def test_launches_and_stops_of_the_imus_object_as_each_kinetic_envelope_times_them(capsys, engine_tool):
    tool = engine_tool("contact_timing")
    lags = tool.contact_lags(dataclasses.replace(load_rig(None), seed=3), "cam1", 40.0)
    assert set(lags) == {"energy", "flow"}
    gaps = {}
    for source, x in lags.items():
        assert x.shape[1] == 2 and set(np.unique(x[:, 0])) == {0.0, 1.0}  # launches and stops
        assert np.all(np.abs(x[:, 1]) <= tool.MAX_LAG_S + 1e-9)
        gaps[source] = np.median(x[x[:, 0] == 1, 1]) - np.median(x[x[:, 0] == 0, 1])
    # seed 3 (cam1 sees 25 of object 0's kicks in 40 s): motion energy puts launches 7 ms after stops, motion
    # vectors 2 ms
    assert gaps["energy"] > 0.005 and abs(gaps["flow"]) < 0.004
    tool.main(["--seeds", "3", "--duration", "12"])
    out = capsys.readouterr().out
    assert "energy: over 1 seeds" in out and "flow: over 1 seeds" in out
    assert "flow: " in out and "kicks, median" in out and "robust sd" in out


def test_every_kick_seen_or_not_by_its_peaks_correlation(capsys, engine_tool):
    tool = engine_tool("contact_timing")
    rows = tool.kick_correlations(dataclasses.replace(load_rig(None), seed=3), "cam1", 20.0)
    assert rows.shape[1] == 3 and set(np.unique(rows[:, 0])) <= {0.0, 1.0}
    assert np.all(np.abs(rows[:, 1]) <= tool.EVENT_SEARCH_S + 1e-9) and np.all(rows[:, 2] <= 1.0 + 1e-9)
    seen, unseen = rows[rows[:, 0] == 1], rows[rows[:, 0] == 0]
    # the kicks the camera sees peak higher, and nearer the IMU's, than those it does not
    assert len(seen) >= 5 and np.median(seen[:, 2]) >= 0.9
    assert np.median(np.abs(seen[:, 1])) <= 0.004
    if len(unseen):
        assert np.median(unseen[:, 2]) < np.median(seen[:, 2])
    tool.main(["--seeds", "3", "--duration", "12", "--by-corr"])
    out = capsys.readouterr().out
    assert "not seen: kicks" in out and "[+0.9, 1.0)" in out
