"""The scorer against synthetic event streams whose error is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warpsync.sim import CameraConfig, ClockConfig, ImuConfig, MicConfig, NetworkConfig, RigConfig, SceneConfig, Simulator
from warpsync.sim.score import ScoreConfig, Scorer, score


def _truth(t0_host_s: float = 0.0):
    rig = RigConfig(
        name="s",
        seed=2,
        duration_s=90.0,
        scene=SceneConfig(silence=((40.0, 45.0),)),
        cameras=(CameraConfig(name="cam", fps=40.0, latency_s=0.06,
                              clock=ClockConfig(offset_s=10.0, drift_ppm=120.0, jump_at_s=50.0, jump_s=2.0)),),
        mics=(MicConfig(name="room", clock=ClockConfig(offset_s=-4.0, drift_ppm=-30.0)),),
        imus=(ImuConfig(name="imu", clock=ClockConfig(offset_s=1.0, drift_ppm=70.0),
                        network=NetworkConfig(restart_at_s=70.0, restart_gap_s=1.0)),),
    )
    return Simulator(rig, t0_host_s=t0_host_s).truth


def _events(truth, sid, err_fn, *, hop=0.5, reference="host", drift_err_ppm=0.0, method_fn=None, conf=0.9,
            settled_after=3.0, latency_s=None):
    """sync.offset events every `hop` seconds of scene time whose offset error is err_fn(t_scene)."""
    out = []
    st = truth.stream(sid)
    for t in np.arange(st.start_s + hop, truth.duration_s, hop):
        if reference == "host":
            t_ref = truth.t0_host_s + t
        else:
            t_ref = truth.stream(reference).dev_time(t)
        ev = {
            "v": 1,
            "event": "sync.offset",
            "stream": sid,
            "reference": reference,
            "t_s": t_ref,
            "offset_s": truth.offset_at(sid, t_ref, reference) + err_fn(t),
            "drift_ppm": truth.drift_ppm_of(sid, reference) + drift_err_ppm,
            "uncertainty_s": 0.0005,
            "method": method_fn(t) if method_fn else "fused",
            "settled": bool(t >= settled_after),
            "confidence": conf,
        }
        if latency_s is not None:
            ev["latency_s"] = latency_s(t)
        out.append(ev)
    return out


def test_known_errors_give_known_statistics(rng):
    truth = _truth(t0_host_s=1.7e9)
    noise = rng.normal(0.0, 0.0003, 10_000)
    counter = iter(range(10_000))
    jump_t = truth.stream("cam").jumps[0][0]

    def err(t, jumps=True):
        if t < 4.0:
            return 0.05  # not settled yet
        if jumps and jump_t <= t < jump_t + 2.0:
            return -1.0  # the jump, until recovered
        return float(noise[next(counter)])

    events = _events(truth, "room", lambda t: err(t, False), drift_err_ppm=2.0,
                     latency_s=lambda t: 0.01 + 0.0001 * (t % 7))
    events += _events(truth, "cam", err, drift_err_ppm=-3.0, settled_after=4.0)
    card = score(truth, events)
    room = card.streams["room"]
    assert room.settle_s == pytest.approx(4.0, abs=0.01)
    assert room.flag_settle_s == pytest.approx(3.0, abs=0.01)
    # steady state: |N(0, 0.3 ms)| -> p95 = 1.96 * 0.3 ms, within sampling error
    assert room.p95_s == pytest.approx(1.96 * 0.0003, rel=0.2)
    cam = card.streams["cam"]
    assert cam.p95_s == pytest.approx(1.96 * 0.0003, rel=0.2)
    assert cam.max_s < 0.002
    assert cam.drift_err_p95_ppm == pytest.approx(3.0, abs=1e-6)
    (kind, d, rec), = cam.recoveries
    assert kind == "jump" and d == pytest.approx(jump_t) and rec == pytest.approx(2.0, abs=0.5)
    assert card.latency_p99_s == pytest.approx(0.01 + 0.0001 * 6.5, abs=0.0002)
    floors = {f.name: f for f in card.floors}
    assert floors["audio |offset error| p95 after settling"].ok is True
    assert floors["settle time (error within floor)"].ok is True
    assert floors["video p95 / quarter frame"].ok is True
    assert floors["drift error p95 after 60 s"].ok is True
    assert floors["recovery after jump/restart"].ok is True
    assert floors["event latency p99"].ok is True
    assert floors["IMU/sensor p95 / quarter frame"].ok is None
    text = card.format()
    assert "room" in text and "floors" in text and "FAIL" not in text
    # the same -1 s excursion on a stream without a disruption is an error that never settles
    card = score(truth, _events(truth, "room", lambda t: -1.0 if 50 <= t < 52 else 0.0))
    assert card.streams["room"].settle_s == pytest.approx(52.0, abs=0.01)
    assert card.streams["room"].max_s == pytest.approx(1.0)
    assert "FAIL" in card.format()


def test_failing_floors_are_reported():
    truth = _truth()
    events = _events(truth, "room", lambda t: 0.003, drift_err_ppm=9.0)
    events += _events(truth, "imu", lambda t: 0.02 if t < 72.0 else 0.0)  # restart back at ~71: recovery never
    card = score(truth, events)
    floors = {f.name: f for f in card.floors}
    assert floors["audio |offset error| p95 after settling"].ok is False
    assert floors["audio |offset error| p95 after settling"].value == pytest.approx(3.0)
    assert floors["drift error p95 after 60 s"].ok is False
    assert floors["settle time (error within floor)"].ok is False
    imu = card.streams["imu"]
    # quarter of the (only) camera's frame: the IMU floor
    assert imu.floor_s == pytest.approx(0.25 / 40.0)
    assert imu.settle_s is None
    assert card.ok is False


def test_settle_needs_error_to_stay_within_floor():
    truth = _truth()
    # good at 2 s, bad again at 6 s, good from 8 s on: settles at 8, not at 2
    events = _events(truth, "room", lambda t: 0.0 if (2 <= t < 6 or t >= 8) else 0.01)
    card = score(truth, events)
    assert card.streams["room"].settle_s == pytest.approx(8.0, abs=0.01)


def test_stream_reference_and_fallback_in_silence():
    truth = _truth()
    events = _events(
        truth, "cam", lambda t: 0.0, reference="room",
        method_fn=lambda t: "clock" if 40 <= t < 45 else "fused",
    )
    for ev in events:
        if 40 <= (ev["t_s"] - truth.stream("room").offset_s) < 45:
            ev["confidence"] = 0.2
    card = score(truth, events)
    cam = card.streams["cam"]
    assert cam.reference == "room"
    assert cam.p95_s == pytest.approx(0.0, abs=1e-9)  # exact truth under a drifting stream reference
    sil = cam.fallback["silence"]
    assert sil["events"] >= 9 and set(sil["methods"]) == {"clock"} and sil["mean_confidence"] == pytest.approx(0.2)
    assert "fallback" in card.format()
    # the truth under the stream reference differs from the host one, so the same numbers scored as host fail
    for ev in events:
        ev["reference"] = "host"
    assert score(truth, events).streams["cam"].p95_s > 0.01


def test_bundles_and_ignored_events():
    truth = _truth()
    scorer = Scorer(truth, ScoreConfig())
    for i, t in enumerate(np.arange(1.0, 20.0, 0.025)):
        members = []
        for sid in ("cam", "room"):
            rate = truth.stream(sid).rate_hz
            true_local = t + truth.offset_at(sid, t)
            k = round(true_local * rate)
            members.append({"stream": sid, "index": k, "t_local_s": k / rate})
        scorer.add({"event": "sync.bundle", "t_s": float(t), "reference": "host", "members": members,
                    "incomplete": i % 10 == 0})
    scorer.add({"event": "stream.status", "stream": "cam"})
    scorer.add({"event": "sync.offset", "stream": "nope", "t_s": 1.0, "offset_s": 0.0})
    scorer.add({"event": "sync.offset", "stream": "cam", "offset_s": 0.0})
    card = scorer.scorecard()
    b = card.bundles
    assert b["events"] == 760 and b["incomplete"] == 76
    assert b["within_frac"] == 1.0 and b["p95_s"] <= 0.5 / 40.0 + 1e-9 and b["reused"] == 0
    assert card.ignored == {"stream.status": 1, "sync.offset (stream not in truth)": 1, "sync.offset (malformed)": 1}
    js = card.to_json()
    assert js["bundles"]["events"] == 760 and isinstance(js["floors"], list)
    assert all(f["ok"] is None or isinstance(f["ok"], bool) for f in js["floors"])
    assert not math.isnan(js["bundles"]["p95_s"])
