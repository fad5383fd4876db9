"""Leads (`content.publish_lead`): what a stream publishes before its first lock, by direct calls on the engine.

The default rig is fed for 3 s (clock models ready, nothing locked yet); the tests then set the windows a lead
rests on (`StreamState.acquire`, `StreamState.leads`) and read `SyncEngine.estimate`. The same rig scored end to
end is in tests/integration/test_engine_sim.py (`test_a_lead_is_published_until_the_first_lock_and_moves_no_lock`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from warpsync.engine.config import ContentConfig, EngineConfig, SessionConfig
from warpsync.engine.stage import EngineStage
from warpsync.sim import load_rig
from warpsync.sim.generator import Simulator
from warpsync.stage import Samples

T0 = 1_700_000_000.0
DEFAULT_RIG = Path(__file__).resolve().parents[2] / "configs" / "rigs" / "default.toml"


def _engine(**content):
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=3, duration_s=3.0)
    sim = Simulator(rig, t0_host_s=T0)
    cfg = EngineConfig(
        content=dataclasses.replace(ContentConfig(), **content),
        sessions={rig.name: SessionConfig(reference="room")},
    )
    stage = EngineStage(cfg, CollectorRegistry())
    for m in sim.metas:
        stage.open(m, T0)
    for ch in sim.chunks():
        stage.samples(ch.meta, Samples(ch.stream, ch.seq, ch.t_dev_s, ch.arrival_s, ch.samples))
        stage.tick(ch.arrival_s)
    eng = stage.engine
    for st in eng.streams.values():
        assert st.filter is None or st.filter.T is None, f"{st.name} locked in 3 s"
        st.acquire, st.leads = [], {}
    return eng


def _clock_only(eng, name):
    e = eng.estimate(eng.streams[name])
    assert e.method == "clock"
    return e


def test_a_window_that_counts_towards_the_lock_is_published_as_a_lead_and_says_it_is_unsure():
    eng = _engine()
    imu = eng.streams["imu1"]
    base = _clock_only(eng, "imu1")
    imu.acquire = [(base.t_s - 1.0, 0.030, 0.001, None), (base.t_s - 0.5, 0.0305, 0.001, None)]
    e = eng.estimate(imu)
    assert e.method == "lead" and not e.settled
    # t_ref = t_local - offset: a correction of 30 ms moves the reference time back, the offset up
    assert e.offset_s - base.offset_s == pytest.approx(0.03025, abs=1e-9)
    assert e.uncertainty_s >= 0.1 and e.confidence <= 0.25
    imu.acquire = [(base.t_s - 10.5, 0.030, 0.001, None)]  # older than content.timeout_s: no lead
    assert eng.estimate(imu).method == "clock"


def test_two_consecutive_windows_must_agree_and_a_camera_moves_with_its_sensors_lead():
    eng = _engine()
    imu, cam = eng.streams["imu1"], eng.streams["cam1"]
    assert eng.partner_of(cam) == "imu1" and eng.partner_of(imu) == "room"
    base_cam, base_imu = _clock_only(eng, "cam1"), _clock_only(eng, "imu1")
    T = base_cam.t_s
    cam.leads = {"imu1": [(T - 0.5, 0.050, 0.001), (T, 0.090, 0.001)]}  # disagree
    assert eng.estimate(cam).method == "clock"
    cam.leads = {"imu1": [(T - 2.0, 0.050, 0.001), (T, 0.050, 0.001)]}  # agree, but not consecutive hops
    assert eng.estimate(cam).method == "clock"
    cam.leads = {"imu9": [(T - 0.5, 0.050, 0.001), (T, 0.0505, 0.001)]}  # against another partner
    assert eng.estimate(cam).method == "clock"
    cam.leads = {"imu1": [(T - 0.5, 0.050, 0.001), (T, 0.0505, 0.001)]}
    e = eng.estimate(cam)
    assert e.method == "lead" and e.offset_s - base_cam.offset_s == pytest.approx(0.05025, abs=1e-9)
    # measured against the sensor's mapping: when the sensor publishes a lead, the camera moves with it
    imu.acquire = [(base_imu.t_s, -0.020, 0.001, None)]
    assert eng.estimate(imu).offset_s - base_imu.offset_s == pytest.approx(-0.020, abs=1e-9)
    assert eng.estimate(cam).offset_s - base_cam.offset_s == pytest.approx(0.05025 - 0.020, abs=1e-9)
    # a camera on clock sync is not measured against its sensor: it does not move
    cam.leads = {}
    assert eng.estimate(cam).offset_s == pytest.approx(base_cam.offset_s, abs=1e-12)


def test_no_lead_when_turned_off_or_across_features_that_do_not_match():
    eng = _engine(publish_lead=False)
    base = _clock_only(eng, "imu1")
    eng.streams["imu1"].acquire = [(base.t_s, 0.030, 0.001, None)]
    assert eng.estimate(eng.streams["imu1"]).method == "clock"
    # without the sensor bridge a camera is measured against the room microphone: motion against onsets
    eng = _engine(sensor_bridge=False)
    cam = eng.streams["cam1"]
    assert eng.partner_of(cam) == "room"
    base = _clock_only(eng, "cam1")
    cam.acquire = [(base.t_s, 0.030, 0.001, None)]
    cam.leads = {"room": [(base.t_s - 0.5, 0.050, 0.001), (base.t_s, 0.050, 0.001)]}
    assert eng.estimate(cam).method == "clock"
