"""The scorer against synthetic event streams whose error is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warpsync.errors import ConfigError
from warpsync.sim import (
    CameraConfig,
    ClockConfig,
    ImuConfig,
    MicConfig,
    NetworkConfig,
    RigConfig,
    SceneConfig,
    Simulator,
)
from warpsync.sim.score import ScoreConfig, Scorer, score

ANCHOR_ERR = 0.018  # what a host-referenced engine cannot see of the anchor: its latency + acoustic delay


def _truth(t0_host_s: float = 0.0):
    rig = RigConfig(
        name="s",
        seed=2,
        duration_s=90.0,
        scene=SceneConfig(silence=((40.0, 45.0),)),
        cameras=(
            CameraConfig(
                name="cam",
                fps=40.0,
                latency_s=0.06,
                clock=ClockConfig(offset_s=10.0, drift_ppm=120.0, jump_at_s=50.0, jump_s=2.0),
            ),
        ),
        mics=(MicConfig(name="room", clock=ClockConfig(offset_s=-4.0, drift_ppm=-30.0)),),
        imus=(
            ImuConfig(
                name="imu",
                clock=ClockConfig(offset_s=1.0, drift_ppm=70.0),
                network=NetworkConfig(restart_at_s=70.0, restart_gap_s=1.0),
            ),
        ),
    )
    return Simulator(rig, t0_host_s=t0_host_s).truth


def _events(
    truth,
    sid,
    err_fn,
    *,
    hop=0.5,
    reference="host",
    drift_err_ppm=0.0,
    method_fn=None,
    conf=0.9,
    settled_after=3.0,
    latency_s=None,
    uncertainty_s=0.0005,
):
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
            "uncertainty_s": uncertainty_s,
            "method": method_fn(t) if method_fn else "fused",
            "settled": bool(t >= settled_after),
            "confidence": conf,
        }
        if latency_s is not None:
            ev["latency_s"] = latency_s(t)
        out.append(ev)
    return out


def _anchor(truth, **kw):
    return _events(truth, "room", lambda t: ANCHOR_ERR, **kw)


def test_pairs_default_to_the_room_mic_and_the_fastest_camera():
    truth = _truth()
    sc = Scorer(truth)
    assert sc.anchor == "room"
    assert sc.partners == {"cam": "room", "cam.mic": "room", "imu": "cam"}
    assert sc.floor_s("imu") == pytest.approx(0.25 / 40.0) and sc.floor_s("cam.mic") == 0.001
    assert Scorer(truth, ScoreConfig(anchor="cam.mic")).partners["room"] == "cam.mic"
    with pytest.raises(ConfigError, match="anchor"):
        Scorer(truth, ScoreConfig(anchor="nope"))
    with pytest.raises(ConfigError, match="partner"):
        Scorer(truth, ScoreConfig(partners={"imu": "imu"}))


def test_known_errors_give_known_statistics(rng):
    truth = _truth(t0_host_s=1.7e9)
    noise = iter(rng.normal(0.0, 0.0003, 10_000))
    jump_t = truth.stream("cam").jumps[0][0]

    def err(t, jumps=True):
        if t < 4.0:
            return ANCHOR_ERR + 0.05  # not settled yet
        if jumps and jump_t <= t < jump_t + 2.0:
            return -1.0  # the jump, until recovered
        return ANCHOR_ERR + float(next(noise))

    events = _anchor(truth, drift_err_ppm=1.0)
    events += _events(
        truth,
        "cam.mic",
        lambda t: err(t, False),
        drift_err_ppm=3.0,
        settled_after=4.0,
        latency_s=lambda t: 0.01 + 0.0001 * (t % 7),
    )
    events += _events(truth, "cam", err, drift_err_ppm=-2.0, settled_after=4.0)
    card = score(truth, events)
    mic = card.streams["cam.mic"]
    assert mic.partner == "room"
    assert mic.settle_s == pytest.approx(4.0, abs=0.01)
    assert mic.flag_settle_s == pytest.approx(4.0, abs=0.01)
    # steady state relative to the room: |N(0, 0.3 ms)| -> p95 = 1.96 * 0.3 ms; absolute adds the anchor's 18 ms
    assert mic.p95_s == pytest.approx(1.96 * 0.0003, rel=0.2)
    assert mic.abs_p95_s == pytest.approx(ANCHOR_ERR, abs=0.001)
    assert mic.drift_err_p95_ppm == pytest.approx(2.0, abs=1e-6)
    cam = card.streams["cam"]
    assert cam.p95_s == pytest.approx(1.96 * 0.0003, rel=0.2) and cam.max_s < 0.002
    ((kind, d, rec),) = cam.recoveries
    assert kind == "jump" and d == pytest.approx(jump_t) and rec == pytest.approx(2.0, abs=0.5)
    assert card.latency_p99_s == pytest.approx(0.01 + 0.0001 * 6.5, abs=0.0002)
    floors = {f.name: f for f in card.floors}
    assert floors["audio<->audio |offset error| p95"].ok is True
    assert floors["video<->audio p95 / quarter frame"].ok is True
    assert floors["drift error p95 after 60 s"].ok is True
    assert floors["settle time (error within floor)"].ok is True
    assert floors["recovery after jump/restart"].ok is True
    assert floors["event latency p99"].ok is True
    assert floors["IMU<->video p95 / quarter frame"].ok is None  # no IMU events
    assert "room" not in [f.detail.removeprefix("worst: ") for f in card.floors]  # the anchor is not scored
    text = card.format()
    assert "cam.mic" in text and "floors" in text and "FAIL" not in text
    # the same -1 s excursion on a stream without a disruption is an error that never settles
    card = score(truth, _anchor(truth) + _events(truth, "cam.mic", lambda t: -1.0 if 30 <= t < 32 else ANCHOR_ERR))
    assert card.streams["cam.mic"].settle_s == pytest.approx(32.0, abs=0.01)  # cam.mic jumps at 50 with cam
    assert card.streams["cam.mic"].max_s == pytest.approx(1.0 + ANCHOR_ERR)
    assert "FAIL" in card.format()


def test_calibration_counts_errors_against_the_anchor_within_twice_the_published_uncertainty(rng):
    truth = _truth()
    noise = iter(rng.normal(0.0, 0.001, 10_000))
    base = _anchor(truth)
    # the camera is 5 ms off the anchor and says 0.5 ms; the IMU (scored against the camera) is right to 1 ms
    # of the anchor: its calibration is against the anchor, as its published uncertainty is, not its partner
    base += _events(truth, "cam", lambda t: ANCHOR_ERR + 0.005)
    honest = score(truth, base + _events(truth, "imu", lambda t: ANCHOR_ERR + next(noise), uncertainty_s=0.001))
    imu = honest.streams["imu"]
    assert imu.partner == "cam" and imu.p50_s == pytest.approx(0.005, abs=0.001)
    assert imu.within_2u == pytest.approx(0.954, abs=0.04)
    assert honest.streams["cam"].within_2u == 0.0
    assert honest.streams["room"].within_2u is None  # the anchor: nothing to calibrate against
    # the same errors published as 0.25 ms: |N(0, 1)| <= 0.5 for 38 % of them
    boastful = score(truth, base + _events(truth, "imu", lambda t: ANCHOR_ERR + next(noise), uncertainty_s=0.00025))
    assert boastful.streams["imu"].within_2u == pytest.approx(0.383, abs=0.06)
    assert "in_2u" in boastful.format()


def test_failing_floors_are_reported():
    truth = _truth()
    events = _anchor(truth)
    events += _events(truth, "cam.mic", lambda t: ANCHOR_ERR + 0.003, drift_err_ppm=9.0)
    events += _events(truth, "cam", lambda t: ANCHOR_ERR)
    events += _events(truth, "imu", lambda t: ANCHOR_ERR + (0.02 if t < 72.0 else 0.0))  # back at ~71: never ok
    card = score(truth, events)
    floors = {f.name: f for f in card.floors}
    assert floors["audio<->audio |offset error| p95"].ok is False
    assert floors["audio<->audio |offset error| p95"].value == pytest.approx(3.0)
    assert floors["drift error p95 after 60 s"].ok is False
    assert floors["settle time (error within floor)"].ok is False
    # 20 ms off for most of the run, against a quarter of the 40 fps camera's frame (6.25 ms): 3.2 frames/4
    assert floors["IMU<->video p95 / quarter frame"].ok is False
    assert floors["IMU<->video p95 / quarter frame"].value == pytest.approx(0.02 / 0.00625)
    imu = card.streams["imu"]
    assert imu.partner == "cam" and imu.settle_s is None
    ((_kind, d, rec),) = [r for r in imu.recoveries if r[0] == "restart"]
    assert rec == pytest.approx(72.0 - d, abs=0.51)  # right after the restart it is within the floor
    assert card.ok is False


def test_a_partner_without_events_leaves_the_stream_unscored_unless_it_is_the_reference():
    truth = _truth()
    card = score(truth, _events(truth, "cam.mic", lambda t: 0.0))
    assert card.streams["cam.mic"].p95_s is None
    floors = {f.name: f for f in card.floors}
    assert floors["audio<->audio |offset error| p95"].ok is False
    card = score(truth, _events(truth, "cam.mic", lambda t: 0.0004, reference="room"))
    assert card.streams["cam.mic"].p95_s == pytest.approx(0.0004)


def test_settle_needs_error_to_stay_within_floor():
    truth = _truth()
    # good at 2 s, bad again at 6 s, good from 8 s on: settles at 8, not at 2
    events = _anchor(truth) + _events(
        truth, "cam.mic", lambda t: ANCHOR_ERR + (0.0 if (2 <= t < 6 or t >= 8) else 0.01)
    )
    card = score(truth, events)
    assert card.streams["cam.mic"].settle_s == pytest.approx(8.0, abs=0.01)


def test_stream_reference_and_fallback_in_silence():
    truth = _truth()
    events = _events(
        truth,
        "cam",
        lambda t: 0.0,
        reference="room",
        method_fn=lambda t: "clock" if 40 <= t < 45 else "fused",
        conf=0.9,
    )
    room = truth.stream("room")
    for ev in events:
        if 40 <= room.scene_time(ev["t_s"]) < 45:
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
    assert score(truth, events + _anchor(truth)).streams["cam"].p95_s > 0.01


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
        scorer.add(
            {
                "event": "sync.bundle",
                "t_s": float(t),
                "reference": "host",
                "members": members,
                "incomplete": i % 10 == 0,
            }
        )
    scorer.add({"event": "stream.status", "stream": "cam"})
    scorer.add({"event": "sync.offset", "stream": "nope", "t_s": 1.0, "offset_s": 0.0})
    scorer.add({"event": "sync.offset", "stream": "cam", "offset_s": 0.0})
    card = scorer.scorecard()
    b = card.bundles
    assert b["events"] == 760 and b["incomplete"] == 76
    assert b["within_frac"] == 1.0 and b["p95_s"] <= 0.5 / 40.0 + 0.5 / 48000 + 1e-9 and b["reused"] == 0
    assert card.ignored == {"stream.status": 1, "sync.offset (stream not in truth)": 1, "sync.offset (malformed)": 1}
    js = card.to_json()
    assert js["bundles"]["events"] == 760 and isinstance(js["floors"], list)
    assert all(f["ok"] is None or isinstance(f["ok"], bool) for f in js["floors"])
    assert not math.isnan(js["bundles"]["p95_s"])
    # a member off by 3 frames is out of bounds
    scorer.add(
        {
            "event": "sync.bundle",
            "t_s": 30.0,
            "members": [
                {"stream": "room", "t_local_s": 30.0 + truth.offset_at("room", 30.0)},
                {"stream": "cam", "t_local_s": 30.0 + truth.offset_at("cam", 30.0) + 3 / 40.0},
            ],
        }
    )
    assert scorer.scorecard().bundles["within_frac"] < 1.0


def test_live_line_shows_the_newest_error_against_the_partner():
    truth = _truth()
    sc = Scorer(truth)
    assert "no sync.offset" in sc.live_line()
    sc.add_all(_anchor(truth)[:3] + _events(truth, "cam.mic", lambda t: ANCHOR_ERR + 0.0025)[:3])
    line = sc.live_line()
    assert "cam.mic 2.50ms fused" in line and "room 18.00ms" in line


def test_short_runs_leave_drift_and_later_disruptions_unscored():
    truth = _truth()
    short = [e for e in _anchor(truth) + _events(truth, "cam", lambda t: ANCHOR_ERR) if e["t_s"] < 30.0]
    card = score(truth, short)
    floors = {f.name: f for f in card.floors}
    assert (
        floors["drift error p95 after 60 s"].ok is None and "run longer" in floors["drift error p95 after 60 s"].detail
    )
    assert card.streams["cam"].recoveries == ()  # the jump at ~50 s is after the run
    assert floors["recovery after jump/restart"].ok is None


def test_a_latency_change_is_a_disruption_with_its_own_recovery_line():
    """A capture latency change of the room microphone's partner: recovery measured from it, the 5 s after it out of
    the steady state, and its own line under the floors (the issue's recovery floor names jumps and restarts)."""
    from warpsync.sim import LatencyStepConfig

    rig = RigConfig(
        name="l",
        seed=4,
        duration_s=40.0,
        cameras=(CameraConfig(name="cam", fps=40.0, clock=ClockConfig(offset_s=3.0, drift_ppm=50.0)),),
        mics=(MicConfig(name="room", clock=ClockConfig(offset_s=-2.0, drift_ppm=-20.0)),),
        latency_steps=(LatencyStepConfig("cam.mic", 20.0, 0.03),),
    )
    truth = Simulator(rig).truth
    ((t_step, _),) = truth.stream("cam.mic").latency_steps

    def err(t):  # the engine still on the old latency for 3 s, then right again
        return ANCHOR_ERR + (-0.03 if t_step <= t < t_step + 3.0 else 0.0)

    card = score(truth, _anchor(truth) + _events(truth, "cam.mic", err) + _events(truth, "cam", lambda t: ANCHOR_ERR))
    mic = card.streams["cam.mic"]
    ((kind, d, rec),) = mic.recoveries
    assert kind == "latency" and d == pytest.approx(t_step) and rec == pytest.approx(3.0, abs=0.5)
    assert mic.p95_s < 1e-6  # the 3 s off lie inside the 5 s after the change
    floors = {f.name: f for f in card.floors}
    assert floors["recovery after a latency change"].ok is True
    assert floors["recovery after a latency change"].detail == f"worst: cam.mic:latency@{t_step:.1f}"
    assert floors["recovery after jump/restart"].ok is None  # none in this run
    # never recovering is a failure of that line, not of the jump/restart floor
    card = score(truth, _anchor(truth) + _events(truth, "cam.mic", lambda t: ANCHOR_ERR - 0.03 * (t >= t_step)))
    floors = {f.name: f for f in card.floors}
    assert floors["recovery after a latency change"].ok is False
    assert "never reached: cam.mic:latency@" in floors["recovery after a latency change"].detail
    # without a latency change the line is not there
    assert "recovery after a latency change" not in {f.name for f in score(_truth(), _anchor(_truth())).floors}


def _sample_events(truth, sid, t_scenes, late_s, reference="host"):
    """sync.offset events carrying `t_local_s`: the sample sensed at each scene time, put `late_s` late."""
    st = truth.stream(sid)
    out = []
    for t in t_scenes:
        t_local = st.dev_time(t)
        t_ref = truth.ref_of_scene(t, reference) + late_s
        out.append(
            {
                "event": "sync.offset",
                "stream": sid,
                "reference": reference,
                "t_s": t_ref,
                "t_local_s": t_local,
                "offset_s": t_local - t_ref,
                "drift_ppm": truth.drift_ppm_of(sid, reference),
                "uncertainty_s": 0.001,
                "method": "fused",
                "settled": True,
                "confidence": 0.9,
            }
        )
    return out


@pytest.mark.parametrize("reference", ["host", "room"])
def test_an_estimate_is_scored_against_the_truth_of_its_own_sample(reference):
    """The truth of an event is the reference time of the scene its sample (`t_local_s`) sensed. Evaluated at the
    event's `t_s` instead, an estimate of the last sample before cam's 2 s clock step, late by 18 ms (what a
    host-referenced engine cannot see of the anchor), was scored against the clock after the step: 2018 ms off
    (`make demo` printed such an event 1500 ms off at cam2's 1.5 s step). Away from steps both agree."""
    truth = _truth(t0_host_s=1_700_000_000.0)
    cam = truth.stream("cam")
    (seg_start, _), (step_start, step) = cam.segments[0], cam.segments[1]
    assert step == 2.0 and math.isinf(seg_start)
    before = step_start - 0.005  # sensed 5 ms before the step: its estimate's t_s lies after it
    far = [10.0, 30.5, 62.25]
    sc = Scorer(truth).add_all(_sample_events(truth, "cam", [before, *far], 0.018, reference))
    errs = [o.err_s for o in sc._obs["cam"]]
    assert errs == pytest.approx([-0.018] * 4, abs=1e-6)
    # the old rule, at t_s: the step's size off for the sample before it, the same elsewhere
    old = [
        ev["offset_s"] - truth.offset_at("cam", ev["t_s"], reference)
        for ev in _sample_events(truth, "cam", [before, *far], 0.018, reference)
    ]
    assert np.abs(np.subtract(old, errs)) == pytest.approx([2.0, 0.0, 0.0, 0.0], abs=1e-5)


def test_a_device_time_on_both_sides_of_a_backward_step_is_the_sample_nearest_the_estimate():
    """A clock stepping back 0.3 s stamps two samples with each device time of the overlap: the estimate's `t_s`
    says which one it is about."""
    rig = RigConfig(
        name="b",
        seed=4,
        duration_s=40.0,
        cameras=(CameraConfig(name="cam", fps=40.0, clock=ClockConfig(offset_s=3.0, jump_at_s=20.0, jump_s=-0.3)),),
        mics=(MicConfig(name="room"),),
    )
    truth = Simulator(rig).truth
    cam = truth.stream("cam")
    step_start = cam.segments[1][0]
    t_before, t_after = step_start - 0.1, step_start + 0.2  # both stamped with one device time
    assert cam.dev_time(t_before) == pytest.approx(cam.dev_time(t_after), abs=1e-9)
    t_dev = cam.dev_time(t_before)
    for t in (t_before, t_after):
        t_ref = truth.ref_of_scene(t) + 0.004
        assert truth.error_of("cam", t_dev, t_ref, t_dev - t_ref) == pytest.approx(-0.004, abs=1e-9)
