"""The rig simulator: deterministic, consistent with its own ground truth, bounded, and honest about the
disruptions it claims to inject."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from warpsync.errors import ConfigError
from warpsync.sim import (
    DEFAULT_RIG,
    CameraConfig,
    ClockConfig,
    ImuConfig,
    LatencyStepConfig,
    MicConfig,
    NetworkConfig,
    RigConfig,
    SceneConfig,
    Simulator,
    Truth,
    load_rig,
    random_rig,
    rig_from_mapping,
)
from warpsync.sim.generator import GRAVITY_MPS2
from warpsync.sim.scene import Scene


def _quiet_rig(**kw) -> RigConfig:
    """A rig without sensor noise, so rendered samples can be recomputed exactly from the truth."""
    base = {
        "name": "quiet",
        "seed": 3,
        "duration_s": 6.0,
        "cameras": (
            CameraConfig(
                name="cam",
                fps=30.0,
                pixel_noise=0.0,
                mic_noise=0.0,
                latency_s=0.07,
                mic_latency_s=0.02,
                mic_acoustic_delay_s=0.004,
                clock=ClockConfig(offset_s=-12.0, drift_ppm=180.0, jump_at_s=3.0, jump_s=-0.8),
            ),
        ),
        "mics": (
            MicConfig(name="room", rate_hz=16000.0, chunk_samples=320, noise=0.0, clock=ClockConfig(7.5, -120.0)),
        ),
        "imus": (
            ImuConfig(
                name="imu",
                noise_mps2=0.0,
                clock=ClockConfig(2.0, 60.0),
                network=NetworkConfig(restart_at_s=2.0, restart_gap_s=0.5, restart_clock_step_s=0.25),
            ),
        ),
        "latency_steps": (LatencyStepConfig("cam.mic", 4.0, 0.011), LatencyStepConfig("room", 1.5, 0.004)),
    }
    base.update(kw)
    return RigConfig(**base)


def _by_stream(chunks):
    out: dict[str, list] = {}
    for c in chunks:
        out.setdefault(c.stream, []).append(c)
    return out


def test_default_rig_loads_and_matches_the_issue_ranges():
    rig = load_rig(DEFAULT_RIG)
    assert rig.cameras and rig.mics and rig.imus
    devices = [*rig.cameras, *rig.mics, *rig.imus]
    for d in devices:
        assert abs(d.clock.offset_s) <= 30 and abs(d.clock.drift_ppm) <= 200
        assert 0 <= d.latency_s <= 0.15
    assert any(d.clock.jump_at_s is not None for d in devices)
    assert any(d.network.restart_at_s is not None for d in devices)
    assert all(30 <= c.fps <= 60 for c in rig.cameras)
    assert all(16000 <= m.rate_hz <= 48000 for m in rig.mics)
    assert all(200 <= i.rate_hz <= 1000 for i in rig.imus)


def test_rig_toml_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'cameras\[0\].colour'"):
        rig_from_mapping({"cameras": [{"name": "c", "colour": "red"}]}, "x.toml")
    with pytest.raises(ConfigError, match="drift_ppm"):
        rig_from_mapping({"mics": [{"name": "m", "clock": {"drift_ppm": 1e6}}]}, "x.toml")
    with pytest.raises(ConfigError, match="unique"):
        rig_from_mapping({"mics": [{"name": "m"}, {"name": "m"}]}, "x.toml")
    with pytest.raises(ConfigError, match="kick_s"):
        rig_from_mapping({"scene": {"kick_s": 0.0}, "mics": [{"name": "m"}]}, "x.toml")
    with pytest.raises(ConfigError, match="object 5"):
        rig_from_mapping({"imus": [{"name": "i", "object": 5}]}, "x.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_rig(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rig(bad)


def test_deterministic_per_seed_and_independent_of_block_size():
    rig = _quiet_rig(duration_s=3.0)
    a = list(Simulator(rig, block_s=0.25).chunks())
    b = list(Simulator(rig, block_s=1.0).chunks())
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x.stream, x.seq, x.t_dev_s, x.arrival_s) == (y.stream, y.seq, y.t_dev_s, y.arrival_s)
        # exact but for the sinusoids' re-anchoring at block edges (rounding, 1e-12)
        np.testing.assert_allclose(x.samples, y.samples, rtol=0, atol=1e-9)
    c = list(Simulator(dataclasses.replace(rig, seed=4)).chunks())
    assert any(not np.array_equal(x.samples, y.samples) for x, y in zip(a, c) if x.stream == y.stream)


def test_arrival_order_and_shapes():
    sim = Simulator(_quiet_rig())
    metas = {m.stream: m for m in sim.metas}
    assert set(metas) == {"cam", "cam.mic", "room", "imu"}
    assert metas["cam"].clock == metas["cam.mic"].clock == "cam"
    last = -math.inf
    per: dict[str, float] = {}
    for c in sim.chunks():
        assert c.arrival_s >= last
        last = c.arrival_s
        assert c.samples.shape[1:] == c.meta.shape and c.samples.dtype == c.meta.np_dtype
        assert c.arrival_s >= per.get(c.stream, -math.inf)
        per[c.stream] = c.arrival_s


@pytest.mark.parametrize("stream", ["cam", "cam.mic", "room", "imu"])
def test_samples_are_the_scene_at_the_times_the_truth_says(stream):
    """Recompute each chunk's samples from the truth's mapping (device time -> scene time) and the scene."""
    rig = _quiet_rig()
    sim = Simulator(rig)
    truth = sim.truth
    st = truth.stream(stream)
    scene = Scene(rig.scene, rig.seed)
    cam = rig.cameras[0]
    chunks = _by_stream(sim.chunks())[stream]
    checked = 0
    prev = -math.inf
    k = 1 + st.drift_ppm * 1e-6
    for c in chunks:
        # invert the truth; where a negative step makes device time ambiguous, order decides: each chunk
        # sensed the scene after the previous one
        cands = [(c.t_dev_s - st.offset_s - j) / k - st.delay_s for _, j in st.segments]
        s0 = min(x for (start, _), x in zip(st.segments, cands) if start - 1e-9 <= x and x > prev)
        prev = s0
        s = s0 + np.arange(c.n) / (c.meta.rate_hz * k)
        assert st.dev_time(s0) == pytest.approx(c.t_dev_s, abs=1e-9)
        if stream in ("cam.mic", "room"):
            np.testing.assert_allclose(c.samples[:, 0], np.clip(scene.sound(s), -1, 1), atol=2e-6)
        elif stream == "imu":
            acc = scene.acceleration(s, 0)
            got = c.samples.astype(np.float64)
            got[:, 2] -= GRAVITY_MPS2
            bias = got - acc
            assert np.ptp(bias, axis=0).max() < 1e-4  # a constant per-device bias, nothing else
        else:
            assert c.samples.dtype == np.uint8
            p = scene.positions(s)
            assert p.shape == (c.n, rig.scene.objects, 3)
            from warpsync.sim.generator import _frame_renderer

            img = _frame_renderer(scene, cam, rig.seed, 0)(s, None)
            np.testing.assert_array_equal(c.samples, np.clip(np.rint(img), 0, 255).astype(np.uint8))
        checked += 1
    assert checked >= 10


def test_truth_offsets_drift_and_jump_are_what_was_configured():
    rig = _quiet_rig()
    sim = Simulator(rig)
    truth = sim.truth
    cam = truth.stream("cam")
    assert cam.offset_s == -12.0 and cam.drift_ppm == 180.0 and cam.capture_latency_s == 0.07
    assert truth.drift_ppm_of("cam") == pytest.approx(180.0)
    assert truth.drift_ppm_of("cam", reference="room") == pytest.approx(((1 + 180e-6) / (1 - 120e-6) - 1) * 1e6)
    # offset at t = device time of the sample sensing t, minus t
    t = 1.0
    assert truth.offset_at("cam", t) == pytest.approx(-12.0 + (1 + 180e-6) * (t + 0.07) - t)
    ((t_jump, step),) = cam.jumps
    assert step == -0.8 and 3.0 - 0.07 <= t_jump < 3.0 - 0.07 + 1 / 30 + 1e-9
    assert truth.offset_at("cam", t_jump + 0.02) - truth.offset_at("cam", t_jump - 0.02) == pytest.approx(
        -0.8, abs=1e-5
    )
    # the camera microphone shares the clock, and so the step (at its own chunk boundary)
    assert truth.stream("cam.mic").jumps[0][1] == -0.8
    # timestamps show the step
    chunks = _by_stream(sim.chunks())["cam"]
    steps = np.diff([c.t_dev_s for c in chunks])
    assert steps.min() == pytest.approx(-0.8 + 1 / 30, abs=1e-6)


def test_a_latency_step_moves_what_samples_sense_not_their_timestamps():
    """A capture latency change: the truth's mapping steps, the timestamps and arrivals do not (clock sync cannot
    see it); the samples are checked against the scene through the truth in the test above."""
    steps = (LatencyStepConfig("room", 2.0, 0.03), LatencyStepConfig("imu", 1.0, -0.004))
    rig = _quiet_rig(latency_steps=steps)
    sim = Simulator(rig)
    truth = sim.truth
    chunks = _by_stream(sim.chunks())
    for sid, at, step in (("room", 2.0, 0.03), ("imu", 1.0, -0.004)):
        st = truth.stream(sid)
        ((t_step, size),) = st.latency_steps
        assert size == step and at - st.delay_s - 0.03 <= t_step < at - st.delay_s + 0.03
        assert ("latency", t_step) in truth.events_s(sid)
        k = 1 + st.drift_ppm * 1e-6
        # the sample sensing scene time s after the step is stamped `step` later than before it (plus the drift)
        jump = truth.offset_at(sid, t_step + 0.1) - truth.offset_at(sid, t_step - 0.1)
        assert jump == pytest.approx(k * step + (k - 1) * 0.2, abs=1e-9)
        period = np.diff([c.t_dev_s for c in chunks[sid] if not c.restarted and c.t_dev_s < st.dev_time(1.9)])
        assert np.ptp(period) < 1e-9  # no step in the timestamps
    room = chunks["room"]
    arrivals = np.array([c.arrival_s for c in room])
    stamped = np.array([c.t_dev_s for c in room])
    # arrival minus device time stays within the network's jitter across the step
    lag = arrivals - stamped / (1 - 120e-6)
    assert np.ptp(lag) < 0.1
    assert np.median(lag[stamped < truth.stream("room").dev_time(1.9)]) == pytest.approx(
        np.median(lag[stamped > truth.stream("room").dev_time(2.2)]), abs=0.002
    )
    with pytest.raises(ValueError, match="not a stream of the rig"):
        _quiet_rig(latency_steps=(LatencyStepConfig("nope", 1.0, 0.01),))
    with pytest.raises(ValueError, match="more than one latency step"):
        _quiet_rig(latency_steps=steps + (LatencyStepConfig("room", 3.0, 0.01),))
    with pytest.raises(ValueError, match="latencies"):
        _quiet_rig(latency_steps=(LatencyStepConfig("imu", 1.0, -1.0),))


def test_record_keeps_every_sample_the_network_would_lose():
    """`record`: what each device saved locally. The quiet rig's IMU restarts (0.5 s lost on the wire) and a
    lossy network drops chunks; the recording has every sample, identical to a lossless run, from the first
    one's timestamp."""
    from warpsync.sim import record

    rig = _quiet_rig(
        latency_steps=(),
        mics=(
            MicConfig(name="room", rate_hz=8000.0, chunk_samples=80, noise=0.0, network=NetworkConfig(drop_prob=0.2)),
        ),
    )
    truth, rec = record(rig)
    sent = _by_stream(Simulator(rig).chunks())
    assert sum(c.n for c in sent["room"]) < 0.9 * len(rec["room"].data)  # the network lost a fifth
    assert sum(c.n for c in sent["imu"]) < len(rec["imu"].data)  # and the restart's gap
    for sid, r in rec.items():
        st = truth.stream(sid)
        assert r.t_dev0_s == sent[sid][0].t_dev_s and r.rate_hz == st.rate_hz
        assert len(r.data) == pytest.approx(rig.duration_s * st.rate_hz, abs=2 * sent[sid][0].n)
    k = 1 + truth.stream("room").drift_ppm * 1e-6
    s0 = truth.stream("room").scene_time(rec["room"].t_dev0_s)
    s = s0 + np.arange(len(rec["room"].data)) / (8000.0 * k)
    scene = Scene(rig.scene, rig.seed)
    np.testing.assert_allclose(rec["room"].data[:, 0], np.clip(scene.sound(s), -1, 1), atol=2e-6)


def test_restart_loses_the_gap_keeps_seq_and_flags_the_first_chunk_back():
    sim = Simulator(_quiet_rig())
    imu = _by_stream(sim.chunks())["imu"]
    st = sim.truth.stream("imu")
    ((down, back),) = st.restarts
    assert down == 2.0 and back == pytest.approx(2.5 - st.delay_s, abs=2 / 500)
    flagged = [c for c in imu if c.restarted]
    assert len(flagged) == 1
    i = imu.index(flagged[0])
    assert imu[i].seq == imu[i - 1].seq + 1  # seq continues across the reconnect
    gap_dev = imu[i].t_dev_s - imu[i - 1].t_dev_s
    assert gap_dev == pytest.approx(0.5 + 0.25, abs=0.05)  # the gap plus the reboot's clock step
    assert imu[i].arrival_s >= 2.5 and imu[i - 1].arrival_s < 2.5 + 0.1
    assert [j for j, _ in st.jumps] == [pytest.approx(back)]


def test_drops_skip_seq_and_jitter_is_positive(rng):
    seed = int(rng.integers(1 << 30))
    rig = RigConfig(
        name="net",
        seed=seed,
        duration_s=20.0,
        mics=(
            MicConfig(
                name="m",
                rate_hz=8000.0,
                chunk_samples=80,
                network=NetworkConfig(base_delay_s=0.003, jitter_s=0.004, drop_prob=0.05, spike_prob=0.0),
            ),
        ),
    )
    sim = Simulator(rig)
    chunks = list(sim.chunks())
    seqs = np.array([c.seq for c in chunks])
    assert np.all(np.diff(seqs) >= 1)
    lost = (seqs[-1] + 1) - len(seqs)
    assert 0.02 * (seqs[-1] + 1) < lost < 0.09 * (seqs[-1] + 1)
    st = sim.truth.stream("m")
    # transit = arrival - time the last sample was stamped; at least the base delay
    stamped_last = np.array([st.scene_time(c.t_dev_s + (c.n - 1) / 8000.0) + st.delay_s for c in chunks])
    transit = np.array([c.arrival_s for c in chunks]) - stamped_last
    assert transit.min() >= 0.003 - 1e-9
    assert 0.003 + 0.002 < np.median(transit) < 0.003 + 0.006


def test_a_path_delay_step_moves_arrivals_not_timestamps_or_truth():
    """`delay_step_s` at `delay_step_at_s`: the chunks stamped after it arrive that much sooner (or later); their
    device times, their samples and the truth are those of the same rig without it."""
    mic = MicConfig(name="m", rate_hz=8000.0, chunk_samples=80, network=NetworkConfig(jitter_s=0.001, spike_prob=0.0))
    rig = RigConfig(name="path", seed=11, duration_s=6.0, mics=(mic,))
    stepped = dataclasses.replace(
        rig,
        mics=(
            dataclasses.replace(
                mic, network=dataclasses.replace(mic.network, delay_step_at_s=3.0, delay_step_s=-0.0015)
            ),
        ),
    )
    a, b = Simulator(rig), Simulator(stepped)
    ca, cb = list(a.chunks()), list(b.chunks())
    assert [c.t_dev_s for c in ca] == [c.t_dev_s for c in cb]
    assert all(np.array_equal(x.samples, y.samples) for x, y in zip(ca, cb))
    st = a.truth.stream("m")
    stamped = np.array([st.scene_time(c.t_dev_s + (c.n - 1) / 8000.0) + st.delay_s for c in ca])
    d = np.array([y.arrival_s - x.arrival_s for x, y in zip(ca, cb)])
    assert np.all(d[stamped < 3.0] == 0.0)
    assert np.median(d[stamped >= 3.01]) == pytest.approx(-0.0015, abs=1e-9)
    assert a.truth.offset_at("m", 4.0) == b.truth.offset_at("m", 4.0)
    with pytest.raises(ValueError, match="delay_step_s"):
        NetworkConfig(base_delay_s=0.001, delay_step_s=-0.002)


def test_truth_json_round_trip(tmp_path):
    truth = Simulator(_quiet_rig(), t0_host_s=1000.0).truth
    p = tmp_path / "truth.json"
    truth.write(p)
    back = Truth.read(p)
    assert back == truth
    assert back.offset_at("cam", 1001.0) == pytest.approx(truth.offset_at("cam", 1001.0))
    p.write_text("{}")
    with pytest.raises(ConfigError, match="not a warpsync truth file"):
        Truth.read(p)


def test_still_and_silence_intervals():
    rig = _quiet_rig(scene=SceneConfig(silence=((1.0, 2.0),), still=((3.0, 4.0),)))
    scene = Scene(rig.scene, rig.seed)
    t = np.arange(0.0, 5.0, 1 / 8000)
    y = scene.sound(t)
    assert np.all(y[(t > 1.01) & (t < 1.99)] == 0.0)
    assert np.abs(y[(t > 0.2) & (t < 0.9)]).max() > 0
    p = scene.positions(np.array([3.1, 3.5, 3.9]))
    np.testing.assert_allclose(p[0], p[2])
    assert np.all(scene.acceleration(np.array([3.2, 3.6]), 0) == 0)
    assert np.abs(scene.acceleration(np.array([2.5, 4.5]), 0)).max() > 0


@pytest.mark.parametrize("t0", [0.5, 127.99, 600.0, 5000.0])
def test_sound_late_in_a_run_takes_the_grid_path_and_equals_the_per_sample_reference(t0):
    """A 48 kHz block of samples is a uniform grid whatever the scene time, up to the rounding of the times
    themselves (from 128 s on, one unit in their last place is more than 1e-9 of a step: the grid test used to
    fail there, and every block of the room microphone went sample by sample, 35 times slower). The grid path's
    rotations equal the sample-by-sample evaluation."""
    from warpsync.sim.scene import _is_uniform

    scene = Scene(SceneConfig(sound_rate_hz=40.0), 7)
    t = t0 + np.arange(2400) / 48000.0
    assert _is_uniform(t)
    y = scene.sound(t)
    assert np.abs(y).max() > 0
    ref = np.concatenate([scene.sound(t[i : i + 1]) for i in range(t.size)])
    # each phase w * t rounds at a unit in the last place of t: late in a run, per sample as much as per grid
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-9 * max(1.0, t0 / 100.0))
    moved = t.copy()
    moved[1200] += 1e-3 / 48000.0  # a thousandth of a step off the grid is not a grid
    assert not _is_uniform(moved)


def test_random_rig_draws_over_the_issue_ranges():
    for seed in range(6):
        rig = random_rig(seed, cameras=2, mics=1, imus=2)
        devs = [*rig.cameras, *rig.mics, *rig.imus]
        assert all(abs(d.clock.offset_s) <= 30 and abs(d.clock.drift_ppm) <= 200 for d in devs)
        assert all(0 <= d.latency_s <= 0.15 for d in devs)
        assert sum(d.clock.jump_at_s is not None for d in devs) == 1
        assert sum(d.network.restart_at_s is not None for d in devs) == 1


def test_a_long_run_streams_with_bounded_memory():
    """Minutes of signal: the generator holds one block, not the run (tracemalloc peak)."""
    import tracemalloc

    rig = RigConfig(
        name="long",
        seed=5,
        duration_s=240.0,
        mics=(MicConfig(name="m", rate_hz=8000.0, chunk_samples=400),),
        imus=(ImuConfig(name="i", rate_hz=200.0, chunk_samples=20),),
    )
    tracemalloc.start()
    total = 0
    for c in Simulator(rig, block_s=1.0).chunks():
        total += c.samples.nbytes
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > 7_000_000
    assert peak < total / 5


def test_late_starting_devices_and_random_rigs_run():
    rig = RigConfig(
        name="late",
        seed=9,
        duration_s=4.0,
        mics=(
            MicConfig(name="early", rate_hz=8000.0, chunk_samples=160),
            MicConfig(name="late", rate_hz=8000.0, chunk_samples=160, start_at_s=2.0),
        ),
    )
    sim = Simulator(rig)
    chunks = _by_stream(sim.chunks())
    assert sim.truth.stream("late").start_s == 2.0
    assert min(c.arrival_s for c in chunks["late"]) >= 2.0 + 159 / 8000
    assert len(chunks["late"]) == pytest.approx(len(chunks["early"]) / 2, abs=2)
    for seed in range(3):
        r = random_rig(seed, duration_s=3.0, camera_output="motion")
        s = Simulator(r)
        got = {c.stream for c in s.chunks()}
        assert got == set(s.truth.streams)


@pytest.mark.parametrize("path", sorted(DEFAULT_RIG.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_rig_loads_and_runs(path):
    rig = load_rig(path)
    sim = Simulator(rig)
    got = {c.stream for c in sim.chunks(1.0)}
    assert got == set(sim.truth.streams)
