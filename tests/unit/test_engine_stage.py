"""EngineStage through the Stage interface: events, status flags, metrics on the injected registry."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from warpsync.engine.config import ContentConfig, EngineConfig, SessionConfig
from warpsync.engine.session import SyncEngine
from warpsync.engine.stage import EngineStage
from warpsync.stage import Samples
from warpsync_client.protocol import StreamMeta

RATE = 8000.0
HOST0 = 5000.0


def scene_audio(rng, seconds):
    """Shared scene: clicks and bursts at random times over quiet noise, at RATE."""
    n = int(seconds * RATE)
    x = rng.normal(0, 0.002, n)
    for t in rng.uniform(0, seconds, int(seconds * 4)):
        i = int(t * RATE)
        m = min(n - i, 400)
        x[i : i + m] += rng.uniform(0.1, 0.5) * np.exp(-np.arange(m) / 60.0) * rng.normal(size=m)
    return x


def feed(stage, rng, seconds, *, latency_b=0.037, dev_off_b=12.5, text=True, late_s=0.0, late_until_s=0.0):
    """Two audio streams (b holds a's content `latency_b` later) and a text stream; every chunk that arrives
    before `late_until_s` arrives `late_s` late (a host busy at startup)."""
    src = scene_audio(rng, seconds + 1)
    ma = StreamMeta("a", "audio", RATE, (1,), "f4", session="s")
    mb = StreamMeta("b", "audio", RATE, (1,), "f4", session="s")
    mt = StreamMeta("t", "text", 0.0, (), "utf8", session="s")
    events = stage.open(ma, HOST0) + stage.open(mb, HOST0) + (stage.open(mt, HOST0) if text else [])
    lag = int(latency_b * RATE)
    chunk = 160
    for k in range(int(seconds * RATE) // chunk):
        i = k * chunk
        xa = (src[i + lag : i + lag + chunk] + rng.normal(0, 0.001, chunk)).astype(np.float32)[:, None]
        xb = (src[i : i + chunk] + rng.normal(0, 0.001, chunk)).astype(np.float32)[:, None]
        t_host = HOST0 + (i + chunk) / RATE
        t_host += late_s if t_host < HOST0 + late_until_s else 0.0
        events += stage.samples(ma, Samples("a", k, 100.0 + i / RATE, t_host + 0.001 + rng.exponential(0.001), xa))
        events += stage.samples(mb, Samples("b", k, dev_off_b + i / RATE, t_host + 0.001 + rng.exponential(0.001), xb))
        if text and k % 100 == 0:
            events += stage.samples(mt, Samples("t", k, 100.0 + i / RATE, t_host, "hello", 1.0))
        if k % 10 == 0:
            events += stage.tick(t_host + 0.002)
    return events


def test_events_status_and_metrics(rng):
    reg = CollectorRegistry()
    stage = EngineStage(EngineConfig(sessions={"s": SessionConfig(reference="a")}), reg)
    events = feed(stage, rng, 12.0)
    offs = [e for e in events if e.name == "sync.offset" and e.stream == "b"]
    assert offs, "no sync.offset for b"
    last = offs[-1].body
    assert set(last) >= {
        "stream",
        "reference",
        "t_s",
        "offset_s",
        "drift_ppm",
        "uncertainty_s",
        "method",
        "settled",
        "confidence",
    }
    assert last["reference"] == "a" and last["method"] == "fused" and last["settled"]
    # a sample of a at a-time t holds the content b holds at b-time 12.5 + (t - 100) + 0.037:
    # offset = t_b - t_a of the same content
    true_off = (12.5 - 100.0) + 0.037
    assert last["offset_s"] == pytest.approx(true_off, abs=2e-4)
    ref = [e for e in events if e.name == "sync.offset" and e.stream == "a"][-1].body
    assert ref["offset_s"] == 0.0 and ref["uncertainty_s"] == 0.0
    assert not any(e.stream == "t" for e in events if e.name == "sync.offset")
    st = [e for e in events if e.name == "stream.status" and e.stream == "b"]
    assert st[-1].body["settled"] and not st[-1].body["stalled"] and not st[-1].body["jumped"]
    bundles = [e.body for e in events if e.name == "sync.bundle"]
    assert bundles and not bundles[-1]["incomplete"]
    assert {m["stream"] for m in bundles[-1]["members"]} == {"a", "b"}
    # metrics on the injected registry
    assert reg.get_sample_value("warpsync_engine_offset_seconds", {"stream": "b"}) == pytest.approx(true_off, abs=2e-4)
    assert reg.get_sample_value("warpsync_engine_settled", {"stream": "b"}) == 1.0
    assert reg.get_sample_value("warpsync_engine_method", {"stream": "b", "method": "fused"}) == 1.0
    assert reg.get_sample_value("warpsync_engine_hop_seconds_count") > 10
    assert reg.get_sample_value("warpsync_engine_content_windows_total", {"stream": "b", "outcome": "ok"}) > 5
    assert reg.get_sample_value("warpsync_engine_bundles_total", {"session": "s", "complete": "true"}) > 100


@pytest.mark.parametrize("young_span_s", [5.0, 0.0])
def test_late_first_chunks_are_a_rebase_not_a_clock_jump(rng, young_span_s):
    """Every chunk of the first 1.5 s arrives 80 ms late (the host busy at startup), then on time: the clock
    models start again from the first timely chunk, reported as a rebase, not as a jump (`young_span_s = 0`
    reports it as a jump, as before), and content sync is as exact as without the delay."""
    reg = CollectorRegistry()
    cfg = EngineConfig(sessions={"s": SessionConfig(reference="a")})
    cfg = dataclasses.replace(cfg, clock=dataclasses.replace(cfg.clock, young_span_s=young_span_s))
    stage = EngineStage(cfg, reg)
    events = feed(stage, rng, 12.0, late_s=0.08, late_until_s=1.5, text=False)
    jumped = [e.stream for e in events if e.name == "stream.status" and e.body["jumped"]]

    def count(kind):
        return sum(
            reg.get_sample_value("warpsync_engine_clock_events_total", {"stream": s, "kind": kind}) or 0 for s in "ab"
        )

    if young_span_s > 0:
        assert jumped == [] and count("jump") == 0 and count("rebase") >= 2  # each stream has its own clock
    else:
        assert set(jumped) == {"a", "b"} and count("jump") >= 2 and count("rebase") == 0
    last = [e for e in events if e.name == "sync.offset" and e.stream == "b"][-1].body
    assert last["settled"] and last["offset_s"] == pytest.approx((12.5 - 100.0) + 0.037, abs=2e-4)


def test_clock_only_estimates_settle_only_when_nothing_unknown_will_move_them(rng):
    """`settled` needs a published uncertainty of at most 5 ms: b's clock model settles within 3 s, but its
    capture latency (37 ms here) is unknown until content sync measures it, so its clock estimates are not
    settled; its content estimates are. With content sync off nothing will move the clock estimate: settled."""

    def offsets(content):
        stage = EngineStage(
            EngineConfig(sessions={"s": SessionConfig(reference="a")}, content=content), CollectorRegistry()
        )
        events = feed(stage, rng, 8.0, text=False)
        return [e.body for e in events if e.name == "sync.offset" and e.stream == "b"]

    on = offsets(ContentConfig())
    clock = [b for b in on if b["method"] in ("clock", "lead")]  # a lead is as unsure
    assert [b for b in clock if b["t_s"] >= 103.0], "b was on clock sync after its clock model settled"
    assert all(b["uncertainty_s"] > 0.1 and not b["settled"] for b in clock)
    assert on[-1]["method"] == "fused" and on[-1]["settled"] and on[-1]["uncertainty_s"] <= 0.005
    off = offsets(ContentConfig(enabled=False))
    assert all(b["method"] == "clock" and b["uncertainty_s"] > 0.1 for b in off)
    assert off[-1]["settled"] and not off[0]["settled"]


def test_the_content_anchor_keeps_its_clock_models_settled_flag(rng):
    """The host as reference: the first audio stream is the content anchor, on clock sync, aligned to nothing (the
    others are aligned to it). Half-second chunks arriving with 50 ms of exponential jitter leave its clock model 10 ms uncertain
    when it settles on time (8 s); the anchor is settled all the same, its uncertainty published."""
    stage = EngineStage(EngineConfig(), CollectorRegistry())
    ma = StreamMeta("a", "audio", RATE, (1,), "f4")
    stage.open(ma, HOST0)
    src = scene_audio(rng, 21.0)
    chunk = int(RATE) // 2
    events = []
    for k in range(40):
        i = k * chunk
        t_host = HOST0 + (i + chunk) / RATE
        x = src[i : i + chunk].astype(np.float32)[:, None]
        events += stage.samples(ma, Samples("a", k, 100.0 + i / RATE, t_host + rng.exponential(0.05), x))
        events += stage.tick(t_host + 0.3)
    assert stage.engine.is_anchor(stage.engine.streams["a"])
    last = [e.body for e in events if e.name == "sync.offset" and e.stream == "a"][-1]
    assert last["method"] == "clock" and last["uncertainty_s"] > 0.005 and last["settled"]


def test_stalled_then_resumed_and_reconnect_keeps_state(rng):
    stage = EngineStage(EngineConfig(sessions={"s": SessionConfig(reference="a")}), CollectorRegistry())
    feed(stage, rng, 6.0, text=False)
    end = HOST0 + 6.0
    ev = stage.tick(end + 5.0)
    stalled = {e.stream for e in ev if e.name == "stream.status" and e.body["stalled"]}
    assert stalled == {"a", "b"}
    clock_b = stage.engine.streams["b"].clock
    resets = clock_b.resets
    # publisher of b reconnects under the same id and clock: state is kept, no reset
    mb = StreamMeta("b", "audio", RATE, (1,), "f4", session="s")
    stage.close("b", end + 5.0)
    ev = stage.open(mb, end + 5.5)
    assert stage.engine.streams["b"].clock is clock_b and clock_b.resets == resets
    st = [e for e in ev if e.name == "stream.status" and e.stream == "b"]
    assert st and not st[-1].body["stalled"] and st[-1].body["settled"]
    ev = stage.samples(mb, Samples("b", 0, 12.5 + 11.5, end + 5.5 + 0.002, np.zeros((160, 1), np.float32)))
    assert not [e for e in ev if e.name == "stream.status" and e.stream == "b" and e.body["jumped"]]
    assert clock_b.resets == resets


def test_default_session_and_host_reference(rng):
    """Without config: streams join the default session, the reference is the host clock and the first audio
    stream is the content anchor (clock method), the other is content-aligned to it."""
    stage = EngineStage(EngineConfig(), CollectorRegistry())
    events = []
    ma = StreamMeta("a", "audio", RATE, (1,), "f4")
    mb = StreamMeta("b", "audio", RATE, (1,), "f4")
    src = scene_audio(rng, 9.0)
    stage.open(ma, HOST0)
    stage.open(mb, HOST0)
    for k in range(int(8.0 * RATE) // 160):
        i = k * 160
        t_host = HOST0 + (i + 160) / RATE
        events += stage.samples(ma, Samples("a", k, 100.0 + i / RATE, t_host + 0.001, src[i : i + 160, None]))
        events += stage.samples(mb, Samples("b", k, 7.0 + i / RATE, t_host + 0.001, src[i : i + 160, None]))
    last = {e.stream: e.body for e in events if e.name == "sync.offset"}
    assert last["a"]["reference"] == "host" and last["a"]["method"] == "clock"
    assert last["b"]["method"] == "fused"
    # both map the same content to the same host time: offsets differ by their device clocks
    assert (last["b"]["offset_s"] - last["a"]["offset_s"]) == pytest.approx(7.0 - 100.0, abs=2e-4)


def test_unusable_frames_fall_back_to_clock_without_raising(rng):
    stage = EngineStage(EngineConfig(), CollectorRegistry())
    mv = StreamMeta("tiny", "video", 30.0, (2, 2), "u1")
    stage.open(mv, HOST0)
    for k in range(90):
        frame = rng.integers(0, 255, (1, 2, 2)).astype(np.uint8)
        stage.samples(mv, Samples("tiny", k, 50.0 + k / 30, HOST0 + (k + 1) / 30 + 0.002, frame))
    st = stage.engine.streams["tiny"]
    assert st.extractor is None and st.clock.ready
    est = stage.engine.estimate(st)
    assert est.method == "clock" and est.offset_s == pytest.approx(50.0 - HOST0, abs=0.01)


def test_non_finite_samples_do_not_poison_features(rng):
    stage = EngineStage(EngineConfig(), CollectorRegistry())
    ms = StreamMeta("imu", "sensor", 100.0, (3,), "f4")
    stage.open(ms, HOST0)
    for k in range(50):
        x = rng.normal(size=(10, 3)).astype(np.float32)
        if k == 20:
            x[3, 1] = np.nan
            x[4, 0] = np.inf
        stage.samples(ms, Samples("imu", k, 3.0 + k * 0.1, HOST0 + (k + 1) * 0.1 + 0.001, x))
    env = stage.engine.streams["imu"].env
    assert len(env) > 400 and np.isfinite(env.values).all()


def test_closed_stream_publishes_no_offsets_until_reopened(rng):
    stage = EngineStage(EngineConfig(sessions={"s": SessionConfig(reference="a")}), CollectorRegistry())
    feed(stage, rng, 4.0, text=False)
    stage.close("b", HOST0 + 4.0)
    later = stage.tick(HOST0 + 4.6) + stage.tick(HOST0 + 5.2)
    assert not [e for e in later if e.name == "sync.offset" and e.stream == "b"]
    assert [e for e in later if e.name == "sync.offset" and e.stream == "a"]


def test_sensor_is_aligned_to_the_fastest_camera_unless_told_otherwise():
    from warpsync.engine.session import SyncEngine

    def engine(cfg=None):
        eng = SyncEngine(cfg or EngineConfig())
        for m in (
            StreamMeta("mic", "audio", 16000.0, (1,), "f4"),
            StreamMeta("cam30", "video", 30.0, (24, 32), "u1"),
            StreamMeta("cam60", "video", 60.0, (16,), "f4", "motion"),
            StreamMeta("cam60b", "video", 60.0, (24, 32), "u1"),
            StreamMeta("imu", "sensor", 500.0, (3,), "f4"),
            StreamMeta("imu2", "sensor", 500.0, (3,), "f4", meta={"sync_to": "cam30"}),
        ):
            eng.open(m, HOST0)
        return eng

    no_bridge = dataclasses.replace(ContentConfig(), sensor_bridge=False)
    eng = engine(dataclasses.replace(EngineConfig(), content=no_bridge))
    assert eng.partner_of(eng.streams["imu"]) == "cam60"  # ties: the first camera to join
    assert eng.partner_of(eng.streams["imu2"]) == "cam30"  # sync_to wins
    assert eng.partner_of(eng.streams["cam60"]) == "mic"  # cameras stay on the audio anchor
    assert eng.streams["imu"].kin is not None and eng.streams["mic"].kin is None
    assert eng.streams["imu"].imp is None and eng.streams["mic"].imp is None
    off = engine(dataclasses.replace(EngineConfig(), content=dataclasses.replace(no_bridge, sensor_to_video=False)))
    assert off.partner_of(off.streams["imu"]) == "mic"


def test_a_sensor_bridges_cameras_to_an_audio_anchor():
    """`content.sensor_bridge` (default): with a microphone as the anchor, a sensor aligns to it by impacts and
    cameras align to the fastest such sensor; a configured partner still wins, and a sensor with one bridges
    nothing. Without a microphone anchor the old pairing holds."""
    from warpsync.engine.session import SyncEngine

    def engine(metas, cfg=None):
        eng = SyncEngine(cfg or EngineConfig())
        for m in metas:
            eng.open(m, HOST0)
        return eng

    mic = StreamMeta("mic", "audio", 16000.0, (1,), "f4")
    cam = StreamMeta("cam", "video", 30.0, (24, 32), "u1")
    slow = StreamMeta("imu_slow", "sensor", 100.0, (3,), "f4")
    imu = StreamMeta("imu", "sensor", 500.0, (3,), "f4")
    told = StreamMeta("imu_told", "sensor", 1000.0, (3,), "f4", meta={"sync_to": "cam"})
    eng = engine([mic, cam, slow, imu, told])
    assert eng.partner_of(eng.streams["imu"]) == "mic"
    assert eng.partner_of(eng.streams["imu_slow"]) == "mic"
    assert eng.partner_of(eng.streams["cam"]) == "imu"  # the fastest sensor not told otherwise
    assert eng.partner_of(eng.streams["imu_told"]) == "cam"
    assert eng.streams["imu"].imp is not None and eng.streams["mic"].imp is not None
    assert eng.streams["cam"].imp is None
    # no microphone: the sensor goes to the camera, the camera to the anchor (the first stream)
    dumb = engine([cam, imu])
    assert dumb.partner_of(dumb.streams["imu"]) == "cam"
    assert dumb.partner_of(dumb.streams["cam"]) == "cam" or dumb.is_anchor(dumb.streams["cam"])


def test_raw_video_activity_on_consecutive_frames_kinetic_on_the_motion_baseline(rng):
    """A camera sending frames: the activity envelope (compared with audio) from consecutive frames, the kinetic
    envelope and its cells (compared with sensors) from frames `motion_baseline_frames` apart, on motion vectors
    (`motion_kinetic`), chunk by chunk as on the whole recording; a camera sending motion vectors has one
    envelope for both."""
    from warpsync.features import motion_activity

    stage = EngineStage(EngineConfig(), CollectorRegistry())
    mv = StreamMeta("cam", "video", 30.0, (24, 32), "u1")
    stage.open(mv, HOST0)
    frames = rng.integers(0, 255, (40, 24, 32)).astype(np.uint8)
    for k in range(0, 40, 4):
        stage.samples(mv, Samples("cam", k, 50.0 + k / 30, HOST0 + (k + 4) / 30 + 0.002, frames[k : k + 4]))
    st = stage.engine.streams["cam"]
    one = motion_activity(frames, 30.0, t0_s=50.0)
    two = motion_activity(frames, 30.0, t0_s=50.0, kinetic=True, cells=True, baseline_frames=2, kinetic_from="flow")
    assert EngineConfig().features.motion_baseline_frames == 2
    assert EngineConfig().features.motion_kinetic == "flow"
    np.testing.assert_allclose(st.env.times, one.times_s)
    np.testing.assert_allclose(st.env.values, one.values)
    np.testing.assert_allclose(st.kin.times, two.times_s)
    np.testing.assert_allclose(st.kin.values, two.values[:, 1])
    np.testing.assert_allclose(st.cells.values, two.values[:, 2:])
    # motion vectors: the stream's own description, no second extractor
    mm = StreamMeta("vec", "video", 30.0, (16,), "f4", "motion")
    stage.open(mm, HOST0)
    assert stage.engine.streams["vec"].activity is None and st.activity is not None


def _bridged_engine(cfg: EngineConfig):
    """A microphone anchor, an IMU bridging a camera to it, and a second microphone."""
    from warpsync.engine.session import SyncEngine

    eng = SyncEngine(cfg)
    for m in (
        StreamMeta("mic", "audio", 16000.0, (1,), "f4"),
        StreamMeta("imu", "sensor", 500.0, (3,), "f4"),
        StreamMeta("cam", "video", 30.0, (24, 32), "u1"),
        StreamMeta("mic2", "audio", 16000.0, (1,), "f4"),
    ):
        eng.open(m, HOST0)
    return eng


def test_a_camera_on_a_sensor_publishes_the_systematic_part_of_its_uncertainty():
    """A camera aligned to a sensor by kinetic envelopes publishes `kinetic_bias_frames` of its frame period
    (root-sum-square) however many windows its smoother has averaged: that bias does not average away. A
    microphone aligned to a microphone publishes its smoother's sigma alone."""

    def published(cfg):
        eng = _bridged_engine(EngineConfig(content=cfg))
        for st in eng.streams.values():
            for k in range(100):  # 10 s of chunks, 2 ms of network delay: the clock models settle
                st.clock.observe(100.0 + 0.1 * k, HOST0 + 0.1 * k + 0.002, st.name)
            st.last_t_end_s = 100.0 + 9.9
        T = HOST0 + 9.9
        for name in ("imu", "cam", "mic2"):
            st = eng.streams[name]
            for k in range(5):
                st.filter.update(T - 2.0 + 0.5 * k, 0.010, 0.0003)
            st.last_accept_T = T
        return {n: eng.estimate(eng.streams[n]) for n in ("imu", "cam", "mic2")}

    on, off = published(ContentConfig()), published(ContentConfig(kinetic_bias_frames=0.0))
    cam_on, cam_off = on["cam"], off["cam"]
    assert cam_off.method == "fused" and cam_off.uncertainty_s < 0.001
    # 0.1 of a 30 fps frame: 3.3 ms, with the smoother's own sigma and the IMU's beside it; still settled (<= 5 ms)
    assert cam_on.uncertainty_s == pytest.approx(math.hypot(cam_off.uncertainty_s, 0.1 / 30.0), rel=1e-6)
    assert cam_on.settled and cam_on.offset_s == cam_off.offset_s
    assert on["mic2"].uncertainty_s == off["mic2"].uncertainty_s  # audio<->audio: nothing systematic added
    assert on["imu"].uncertainty_s == off["imu"].uncertainty_s  # the IMU is aligned to the microphone


def test_a_partners_correction_moves_the_streams_aligned_to_it():
    """A camera aligned to a sensor measured against the sensor's mapping; when the sensor's correction moves (it
    locks to the microphone), the camera's correction, its re-lock candidates and its acquisition windows move
    with it, and nothing else does."""
    eng = _bridged_engine(EngineConfig())
    cam, mic2 = eng.streams["cam"], eng.streams["mic2"]
    cam.filter.update(10.0, 0.004, 0.001)
    cam.filter._outliers = [(10.5, 0.030, 0.001)]
    mic2.filter.update(10.0, 0.002, 0.001)
    eng.streams["imu"].acquire = [(9.0, 0.1, 0.001, None)]
    cam.acquire = [(9.5, 0.020, 0.001, None)]
    eng._propagate(eng.streams["imu"], -0.013)
    assert cam.filter.x[0] == pytest.approx(0.004 - 0.013)
    assert cam.filter._outliers[0][1] == pytest.approx(0.030 - 0.013)
    assert cam.acquire[0][1] == pytest.approx(0.020 - 0.013)
    assert mic2.filter.x[0] == pytest.approx(0.002)  # aligned to the microphone, not to the IMU
    assert eng.streams["imu"].acquire[0][1] == 0.1  # the mover itself is not moved again


def test_an_unlocked_camera_takes_its_bridge_sensors_in_turn():
    """Two bridge sensors: a camera not locked yet measures against each in turn, each with its own acquisition
    windows (moved with that sensor's correction while parked); once locked it stays with its sensor. With one
    sensor nothing turns."""
    from warpsync.engine.session import SyncEngine

    eng = SyncEngine(EngineConfig())
    for m in (
        StreamMeta("mic", "audio", 16000.0, (1,), "f4"),
        StreamMeta("imu_a", "sensor", 500.0, (3,), "f4"),
        StreamMeta("imu_b", "sensor", 500.0, (3,), "f4"),
        StreamMeta("cam", "video", 30.0, (24, 32), "u1"),
    ):
        eng.open(m, HOST0)
    cam = eng.streams["cam"]
    assert eng.bridge_sensors(cam) == ["imu_a", "imu_b"]
    assert eng.partner_of(cam) == "imu_a"
    cam.acquire = [(5.0, 0.010, 0.001, None)]
    eng._next_bridge_sensor(cam)
    assert eng.partner_of(cam) == "imu_b" and cam.acquire == []
    eng._propagate(eng.streams["imu_a"], 0.002)  # imu_a's correction moved: its parked windows too
    eng._next_bridge_sensor(cam)
    assert eng.partner_of(cam) == "imu_a"
    assert cam.acquire[0][1] == pytest.approx(0.012)
    cam.filter.update(6.0, 0.012, 0.001)  # locked with imu_a: it stays
    eng._next_bridge_sensor(cam)
    assert eng.partner_of(cam) == "imu_a"

    one = SyncEngine(EngineConfig())
    for m in (StreamMeta("mic", "audio", 16000.0, (1,), "f4"), StreamMeta("imu", "sensor", 500.0, (3,), "f4")):
        one.open(m, HOST0)
    one.open(StreamMeta("cam", "video", 30.0, (24, 32), "u1"), HOST0)
    one._next_bridge_sensor(one.streams["cam"])
    assert one.partner_of(one.streams["cam"]) == "imu"


def test_windows_carried_by_one_half_lock_once_two_such_halves_share_no_data():
    """A sensor's window against the microphone whose one half alone carries the lag (the other half without
    content: `LagMeasurement.support`) counts towards a first lock, but windows carried that way lock only once
    two of their carrying halves share no data: consecutive windows carried by the same stretch could all rest on
    one event in it. A window cross-validated by both of its halves among them locks as before."""
    from types import SimpleNamespace

    from warpsync.engine.content import LagMeasurement

    def lock_at(supports):
        eng = _bridged_engine(EngineConfig())
        w = SimpleNamespace(st=eng.streams["imu"], partner=eng.streams["mic"], kinetic=False, cells=False)
        for k, (t, sup) in enumerate(supports):
            m = LagMeasurement(0.0, 0.4, 0.2, 0.0003, True, support=sup)
            if eng._acquired(w, m, 0.0051, 0.0003, t, t - 4.0, 8.0) is not None:
                return k + 1
        return None

    ends = [10.0 + 0.5 * k for k in range(12)]
    # every window carried by its second half [T - 4, T]: the halves of windows less than 4 s apart overlap
    second = [(t, (t - 4.0, t)) for t in ends]
    assert lock_at(second) == 9  # T = 14.0: its half [10, 14] shares nothing with the first window's [6, 10]
    # carried by the first half, then (the event moved on) by the second: [2, 6] and [7, 11] share nothing
    moved = [(10.0, (2.0, 6.0)), (10.5, (2.5, 6.5)), (11.0, (7.0, 11.0))]
    assert lock_at(moved) == 3
    # one window cross-validated by both halves among them: as a split-tested first lock, 3 windows over 1 s
    assert lock_at([second[0], (ends[1], None), second[2]]) == 3
    assert lock_at(second[:3]) is None


def test_windows_under_the_lock_prominence_count_when_their_contacts_beat_chance():
    """A sensor's impact window whose peak stands out less than `acquire_prominence` counts towards a first
    lock only where the lag puts more of its contacts onto the microphone's impacts than chance lines up
    (`LagMeasurement.chance` at most `acquire_coincidence`); with the rule off, or a chance above it, it does
    not."""
    from types import SimpleNamespace

    from warpsync.engine.config import ContentConfig
    from warpsync.engine.content import LagMeasurement

    def lock_at(chance, cfg=None):
        eng = _bridged_engine(EngineConfig(content=cfg or ContentConfig()))
        w = SimpleNamespace(st=eng.streams["imu"], partner=eng.streams["mic"], kinetic=False, cells=False)
        for k in range(6):
            t = 10.0 + 0.5 * k
            m = LagMeasurement(0.0, 0.3, 0.07, 0.0003, True, chance=chance)
            if eng._acquired(w, m, 0.0051, 0.0003, t, t - 4.0, 8.0) is not None:
                return k + 1
        return None

    assert lock_at(0.003) == 3
    assert lock_at(0.05) is None
    assert lock_at(1.0) is None
    assert lock_at(0.003, ContentConfig(acquire_coincidence=0.0)) is None


def test_half_verdicts_tell_a_half_without_content_from_one_pointing_elsewhere(rng):
    """`_half_verdicts`: each half of a sensor's impact window against the microphone's, on its own. Contacts in
    both halves, 5 ms late: both carry the lag. No contact of the sensor's object in its first half: that half is
    empty (nothing to say), not a disagreement. The first half's contacts 30 ms late instead: it points
    elsewhere. Locked, a half at the lock is `lock`."""
    from warpsync.engine.content import measure_lag
    from warpsync.engine.hop import _half_verdicts

    n, M, g = 8000, 100, 0.001

    def bumps(at, lag, size):
        x = np.zeros(size)
        for e in at:
            x[int(e) + lag : int(e) + lag + 3] += [0.5, 1.0, 0.5]
        return x

    mic_events = [700, 1900, 3100, 4500, 5600, 6900]  # the microphone hears every contact
    ref = bumps(mic_events, 0, n) + bumps(rng.uniform(0, n - 10, 8), 0, n) + rng.normal(0, 0.02, n)

    def cand(first_lag, second_lag):
        x = rng.normal(0, 0.02, n + 2 * M)
        x += bumps([e + M for e in mic_events if e < n // 2], first_lag, n + 2 * M) if first_lag is not None else 0
        return x + bumps([e + M for e in mic_events if e >= n // 2], second_lag, n + 2 * M)

    lag = lambda r, c: (measure_lag(r, c, g, M * g, min_corr=0.15, min_prominence=0.05), None)
    assert _half_verdicts(lag, ref, cand(5, 5), M, 0.005, 0.002) == ["carries", "carries"]
    assert _half_verdicts(lag, ref, cand(None, 5), M, 0.005, 0.002) == ["empty", "carries"]
    assert _half_verdicts(lag, ref, cand(30, 5), M, 0.005, 0.002) == ["other", "carries"]
    # a locked window (`lock_tol_s`): a half still at the lock (lag 0) is told from one pointing anywhere else, so
    # an older half at the lock and a newer one carrying a new lag read as a step (`content.step_halves`)
    assert _half_verdicts(lag, ref, cand(0, 20), M, 0.020, 0.002, lock_tol_s=0.002) == ["lock", "carries"]
    assert _half_verdicts(lag, ref, cand(0, 20), M, 0.020, 0.002) == ["other", "carries"]
    assert _half_verdicts(lag, ref, cand(30, 20), M, 0.020, 0.002, lock_tol_s=0.002) == ["other", "carries"]
    assert _half_verdicts(lag, ref, cand(20, 0), M, 0.020, 0.002, lock_tol_s=0.002) == ["carries", "lock"]


def test_cross_validated_windows_lock_on_1_s_of_new_data_others_on_2():
    """A first lock needs `acquire_hops` agreeing windows spanning some new data. A camera's windows against its
    sensor's cells had each half agree with the whole (the split test), so 1 s of new data is enough
    (`acquire_split_span_s`: the third window 0.5 s apart; a span is whole hops, so one a drifting clock makes a
    hair short counts); two microphones' windows, not split, still need 2 s (`acquire_span_s`, at the windows'
    middles)."""
    from types import SimpleNamespace

    from warpsync.engine.content import LagMeasurement

    def windows(cfg, st, partner, cells, t_ends):
        eng = _bridged_engine(EngineConfig(content=cfg))
        w = SimpleNamespace(st=eng.streams[st], partner=eng.streams[partner], kinetic=cells, cells=cells)
        m = LagMeasurement(0.0, 0.6, 0.3, 0.001, True)
        window_s = 8.0 if cells else 4.0
        for k, t in enumerate(t_ends):
            z = eng._acquired(w, m, 0.0123, 0.001, t, t - window_s / 2, window_s)
            if z is not None:
                return k + 1, z
        return None, None

    ends = [10.0 + 0.5 * k for k in range(10)]
    assert windows(ContentConfig(), "cam", "imu", True, ends) == (3, pytest.approx(0.0123))
    # hops of a device clock 40 ppm fast, on the reference timeline (seed 47 of the default rig): two hops span
    # 0.99992 s, still two hops of new data
    assert windows(ContentConfig(), "cam", "imu", True, [9.5092423 + 0.49996 * k for k in range(10)])[0] == 3
    # a hop short is not: windows 0.5 and 0.6 s apart lock only with a third 1 s after the first
    assert windows(ContentConfig(), "cam", "imu", True, [10.0, 10.1, 10.6, 11.0])[0] == 4
    assert windows(ContentConfig(acquire_split_span_s=2.0), "cam", "imu", True, ends)[0] == 5
    assert windows(ContentConfig(acquire_split=False), "cam", "imu", True, ends)[0] == 9  # 8 s windows: 4 s
    assert windows(ContentConfig(), "mic2", "mic", False, ends)[0] == 5


@pytest.mark.parametrize("jump", [1.5, -1.5])
def test_no_estimate_maps_data_from_before_a_clock_jump_through_the_clock_after_it(rng, jump):
    """Two streams on one device clock; it steps 1.5 s (forward, or back: a restart) at 12 s. The first stream
    reports it; the second's newest data, and one chunk of it still in flight, were stamped before it. An estimate
    for those local times through the clock after the jump was 1.5 s off (seen live in `make demo`: cam2 1500 ms
    after cam2.mic saw its clock jump). Now the second stream has no estimate until it has data from after the
    jump, and the chunk in flight is dropped. After a backward step, that chunk lay below the new, young delay
    envelope and restarted the model from the old clock (a ``rebase``): the first stream's next estimate was
    1.48 s off, and the second stream's next chunk, device time going back again, was a second restart."""
    off, jump_at, chunk = -100.0, 12.0, 160
    eng = SyncEngine(EngineConfig(content=ContentConfig(enabled=False)))
    for name in ("x", "y"):
        eng.open(StreamMeta(name, "audio", RATE, (1,), "f4", clock="dev"), HOST0)
    zeros = np.zeros((chunk, 1), np.float32)
    in_flight = None
    checked = []
    events = []
    stepped = False

    def hop(now):
        for st in eng.streams.values():
            st.next_hop_host_s = -math.inf
        for e in eng.hop("default", now, max_streams=None):
            checked.append(abs(e.offset_s - (off + jump if stepped else off)))

    for k in range(int(20 * RATE) // chunk):
        t = k * chunk / RATE
        t_dev = HOST0 + off + t + (jump if t >= jump_at else 0.0)
        arrival = HOST0 + t + chunk / RATE + 0.001 + rng.exponential(0.001)
        events.append(eng.add("x", t_dev, arrival, zeros))
        if math.isclose(t, jump_at - chunk / RATE):
            in_flight = t_dev  # y's last chunk before the jump arrives after x's first one after it
            continue
        if math.isclose(t, jump_at):
            stepped = True
            hop(arrival + 0.0005)  # between x's report of the jump and y's next chunk
            assert eng.add("y", in_flight, arrival + 0.0001, zeros) == "stale"  # counted by EngineStage
            hop(arrival + 0.0002)
        events.append(eng.add("y", t_dev, arrival, zeros))
        if k % 10 == 0:
            hop(arrival + 0.002)
    assert len(checked) > 100
    assert max(checked) < 0.05  # the clock's offset plus the network delay, never a jump off
    assert [e for e in events if e] == ["jump" if jump > 0 else "restart"]


def test_an_estimate_refers_to_the_newest_sample_not_the_end_of_its_chunk(rng):
    """`t_local_s` is the newest sample's stamp (PROTOCOL: "the stream's newest sample"). It was the end of the
    newest chunk, one sample period later: for a camera's last frame before a clock jump, the instant at which the
    first frame stamped after the jump begins, where the truth is the new clock's (`make demo` scored cam2
    1500 ms off there in 3 of 9 runs)."""
    eng = SyncEngine(EngineConfig(content=ContentConfig(enabled=False)))
    eng.open(StreamMeta("cam", "video", 30.0, (4, 4), "u1", clock="cam"), HOST0)
    frame = np.zeros((1, 4, 4), np.uint8)
    last = None
    for k in range(150):
        last = HOST0 - 40.0 + k / 30.0
        eng.add("cam", last, HOST0 + (k + 1) / 30.0 + 0.002 + rng.exponential(0.001), frame)
    est = eng.estimate(eng.streams["cam"])
    assert est is not None
    assert est.t_local_s == pytest.approx(last, abs=1e-9)
