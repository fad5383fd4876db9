"""`SyncEngine.on_window`: every window a content hop measures, handed over as it is measured (diagnostics)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from warpsync.engine.config import ContentConfig, EngineConfig
from warpsync.engine.stage import EngineStage
from warpsync.sim import Simulator, load_rig
from warpsync.sim.run import replay_offline

ROOT = Path(__file__).resolve().parents[2]


def _run(seed: int, duration_s: float, hook: bool, every_window: bool = False, cfg: EngineConfig | None = None):
    sim = Simulator(dataclasses.replace(load_rig(None), seed=seed))
    stage = EngineStage(cfg or EngineConfig(), CollectorRegistry())
    windows = []
    if hook:
        stage.engine.on_window = windows.append
        stage.engine.trace_every_window = every_window
    events = []
    replay_offline(sim, stage, duration_s, on_events=lambda evs, now: events.extend(evs))
    return stage.engine, windows, events


def _strip(events):
    """Events without their latency (the wall time of a run, which differs between two runs of the same data)."""
    return [{k: v for k, v in e.items() if k != "latency_s"} for e in events]


def test_every_measured_window_is_handed_over_with_what_the_hop_did():
    eng, windows, events = _run(1, 8.0, hook=True)
    assert {w.stream for w in windows} >= {"cam1", "cam2", "imu1", "cam1.mic"}
    for w in windows:
        assert w.partner == eng.partner_of(eng.streams[w.stream])
        assert w.T_end > w.T_start and w.search_s > 0
    cam1 = [w for w in windows if w.stream == "cam1"]
    first = next(i for i, w in enumerate(cam1) if w.locked)  # seed 1's cam1 locks by 6.5 s
    lock = cam1[first - 1]
    assert not lock.locked and lock.outcome == "" and lock.measurement.informative
    assert lock.correction_s is not None and cam1[first].correction_s is not None
    assert all(w.correction_s is None for w in cam1[: first - 1])
    # the hook only watches: the same events without it
    _, none, plain = _run(1, 8.0, hook=False)
    assert none == [] and eng._traced is None
    assert _strip(plain) == _strip(events)


def test_trace_windows_tool_writes_every_window_beside_its_true_lag(tmp_path):
    out = tmp_path / "w.jsonl"
    cmd = [sys.executable, "tools/engine/trace_windows.py", "--seed", "1", "--duration", "8", "--out", str(out)]
    # without `source_conflict` (which measures both windows of a locked camera for itself) the hops through the
    # response leave the window against the IMU to the trace
    extra = ["--every-window", "--content", "source_conflict=false", "--events"]
    r = subprocess.run(cmd + extra, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "cam1" in r.stdout and "right" in r.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    # a locked camera's windows carry their events (`content.event_lags`), each set beside the kick nearest it on
    # the scene's time (the engine's timeline is the anchor's, late by its capture latency: 18 ms on this rig). The
    # events at a kick the camera sees sit within the camera's own error and a frame of the kick's middle; others
    # (slow motion, a sound through the response) are nowhere near a kick
    events = [e for x in rows if x["stream"] == "cam1" and x["locked"] for e in x["events"]]
    assert events and all(x["T_start"] - 0.1 <= e["t"] <= x["T_end"] + 0.1 for x in rows for e in x["events"])
    seen = [float(d) for d in re.findall(r"object \d (?:launch|stop)\s+([-+]\d+\.\d) ms\s+seen", r.stdout)]
    at_kick = [d for d in seen if abs(d) <= 50.0]
    assert len(at_kick) >= 10 and sum(abs(d) <= 12.0 for d in at_kick) >= 0.9 * len(at_kick)
    assert not any(x["events"] for x in rows if not x["locked"])
    cam_mic = [x for x in rows if x["stream"] == "cam1.mic" and x["informative"] and x["true_lag_s"] is not None]
    # a camera's microphone against the room: its informative windows find the truth within a millisecond
    assert cam_mic and sum(x["right"] for x in cam_mic) >= 0.8 * len(cam_mic)
    # the room is its partner and the session's anchor: the two true lags are one; sigmas are written
    assert all(x["true_lag_anchor_s"] == x["true_lag_s"] and x["sigma_s"] > 0 for x in cam_mic)
    # a camera's windows against the IMU while the IMU is still on its clock (capture latency unknown): the lag
    # that puts it right against the IMU's mapping is not the one that puts it right against the room
    lock_hop = next(i for i, x in enumerate(rows) if x["stream"] == "imu1" and x["outcome"] == "")  # in hop order
    early = [x for x in rows[:lock_hop] if x["stream"] == "cam1" and x["true_lag_s"] is not None]
    assert early and all(abs(x["true_lag_s"] - x["true_lag_anchor_s"]) > 0.005 for x in early)
    assert {x["used"] for x in rows} == {True, False}


def test_windows_say_when_a_camera_was_weighed_through_its_sensors_contact_response():
    """Seed 1: the IMU locks to the room microphone before 6 s and learns its contact response from the data it
    has buffered since its start; once that is 6 s of data the cameras' windows are measured against the room's
    impacts through it first."""
    eng, windows, _ = _run(1, 16.0, hook=True)
    imu = eng.streams["imu1"]
    assert imu.response is not None and imu.response.learned_s >= eng.cfg.content.response_min_s
    through = [w for w in windows if w.against == "response"]
    assert {w.stream for w in through} == {"cam1", "cam2"}
    assert all(w.partner == "imu1" for w in through)
    first = min(w.T_end for w in through)
    # nothing before the IMU was locked and had `response_min_s` of data; every camera window after it first
    # tries the response
    imu_lock = min(w.T_end for w in windows if w.stream == "imu1" and w.locked)
    assert imu_lock <= first <= 8.0 and first >= eng.cfg.content.response_min_s
    later = [w for w in windows if w.stream in ("cam1", "cam2") and w.T_end > first + 0.1]
    tried = {(w.stream, w.T_end) for w in through}
    assert all((w.stream, w.T_end) in tried for w in later)
    assert all(w.against == "" for w in windows if w.stream not in ("cam1", "cam2"))


def test_every_window_measures_the_sources_a_hop_did_not_need_and_changes_nothing():
    """Seed 1: once the IMU has learned its contact response, a camera's hop stops at its window through the
    response when that is informative (without `source_conflict`, which asks the IMU too once the camera is
    locked); `trace_every_window` measures its window against the IMU too, for the trace only."""
    cfg = EngineConfig(content=dataclasses.replace(ContentConfig(), source_conflict=False))
    _, plain, events = _run(1, 12.0, hook=True, cfg=cfg)
    _, every, events_every = _run(1, 12.0, hook=True, every_window=True, cfg=cfg)
    assert _strip(events_every) == _strip(events)
    key = lambda w: (w.stream, w.T_end, w.against, w.measurement.lag_s, w.outcome)
    assert [key(w) for w in every if w.used] == [key(w) for w in plain]
    assert all(w.used for w in plain)
    extra = [w for w in every if not w.used]
    assert extra and {w.stream for w in extra} <= {"cam1", "cam2"}
    for w in extra:
        # the window against the IMU itself, of a hop whose window through the response was informative
        assert w.against == "" and w.partner == "imu1"
        hop = [u for u in every if u.used and u.stream == w.stream and u.T_end == w.T_end]
        assert [u.against for u in hop] == ["response"] and hop[0].measurement.informative
