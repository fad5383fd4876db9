"""The engine stage fed by the rig simulator, scored against its ground truth (the floors of issue 5).

Scored as `warpsync score` does: ``offset_s`` of each ``sync.offset`` against ``Truth.offset_at`` at the
event's reference time, with a stream as the session's reference (so that the reference's own capture latency,
which nothing can see, is part of the truth definition instead of an error).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from warpsync.engine.config import ContentConfig, EngineConfig, FeatureConfig, SessionConfig
from warpsync.engine.stage import EngineStage
from warpsync.sim import load_rig
from warpsync.sim.generator import Simulator
from warpsync.sim.rig import (
    CameraConfig,
    ClockConfig,
    ImuConfig,
    LatencyStepConfig,
    MicConfig,
    NetworkConfig,
    RigConfig,
    SceneConfig,
)
from warpsync.stage import Samples

T0_HOST = 1_700_000_000.0
LOCKED = ("content", "fused")
"""The methods of a stream that content sync has locked (`clock` and `lead` are not)."""
DEFAULT_RIG = Path(__file__).resolve().parents[2] / "configs" / "rigs" / "default.toml"


def rig_for(seed: int, duration_s: float, *, scene=None, cam_clock=None, cam1_net=None, imus=0, fps=10.0) -> RigConfig:
    """Two cameras with microphones (16 kHz) and a room microphone (48 kHz), clocks and latencies drawn from
    the issue's ranges by `seed` (offsets +-30 s, drift +-200 ppm, latency 0-150 ms)."""
    r = np.random.default_rng([seed, 77])

    def clock():
        return ClockConfig(offset_s=float(r.uniform(-30, 30)), drift_ppm=float(r.uniform(-200, 200)))

    def lat():
        return float(r.uniform(0.0, 0.15))

    cams = []
    for i in range(2):
        cams.append(
            CameraConfig(
                name=f"cam{i}",
                fps=fps,
                output="motion",
                azimuth_deg=180.0 * i + 20,
                latency_s=lat(),
                mic_latency_s=lat(),
                mic_acoustic_delay_s=float(r.uniform(0, 0.01)),
                clock=(cam_clock if (cam_clock is not None and i == 0) else clock()),
                network=(cam1_net if (cam1_net is not None and i == 1) else NetworkConfig()),
            )
        )
    room = MicConfig(name="room0", latency_s=lat(), acoustic_delay_s=float(r.uniform(0, 0.01)), clock=clock())
    imu = tuple(ImuConfig(name=f"imu{i}", object=i, latency_s=lat(), clock=clock()) for i in range(imus))
    return RigConfig(
        name=f"t{seed}",
        seed=seed,
        duration_s=duration_s,
        scene=scene or SceneConfig(),
        cameras=tuple(cams),
        mics=(room,),
        imus=imu,
    )


def run(rig: RigConfig, cfg: EngineConfig | None = None, reference: str = "room0", partners=None):
    sim = Simulator(rig, t0_host_s=T0_HOST)
    cfg = cfg or EngineConfig()
    cfg = dataclasses.replace(
        cfg, sessions={rig.name: SessionConfig(reference=reference, partners=dict(partners or {}))}
    )
    reg = CollectorRegistry()
    stage = EngineStage(cfg, reg)
    for m in sim.metas:
        stage.open(m, T0_HOST)
    out = defaultdict(list)
    events = []
    last_tick = T0_HOST
    for ch in sim.chunks():
        evs = []
        if ch.restarted:
            evs += stage.close(ch.stream, ch.arrival_s)
            evs += stage.open(ch.meta, ch.arrival_s)
        evs += stage.samples(ch.meta, Samples(ch.stream, ch.seq, ch.t_dev_s, ch.arrival_s, ch.samples))
        if ch.arrival_s - last_tick >= 0.05:
            evs += stage.tick(ch.arrival_s)
            last_tick = ch.arrival_s
        for e in evs:
            events.append((ch.arrival_s - T0_HOST, e))
            if e.name == "sync.offset":
                b = e.body
                err = b["offset_s"] - sim.truth.offset_at(e.stream, b["t_s"], reference=reference)
                drift_err = b["drift_ppm"] - sim.truth.drift_ppm_of(e.stream, reference)
                out[e.stream].append(dict(t=ch.arrival_s - T0_HOST, err=err, drift_err=drift_err, **b))
    return sim.truth, out, events, reg


@pytest.mark.parametrize("seed", [1, 2, 3, 24])
def test_audio_to_audio_floor_and_settling(seed):
    _truth, out, _, _ = run(rig_for(seed, 22.0))
    for mic in ("cam0.mic", "cam1.mic"):
        rows = out[mic]
        first_settled = next(r["t"] for r in rows if r["settled"] and r["method"] == "fused")
        assert first_settled <= 10.0, f"{mic} settled at {first_settled:.1f} s"
        errs = np.array([abs(r["err"]) for r in rows if r["t"] >= first_settled])
        assert np.percentile(errs, 95) <= 1e-3, f"{mic}: p95 {np.percentile(errs, 95) * 1e3:.3f} ms"
        assert all(r["method"] == "fused" for r in rows if r["t"] >= first_settled)
        late = [r for r in rows if r["t"] >= 15.0]
        assert all(r["uncertainty_s"] < 1e-3 for r in late)
        assert all(r["confidence"] > 0.5 for r in late)  # 1 ms / (1 ms + uncertainty)


def test_drift_after_60_s():
    _truth, out, _, _ = run(rig_for(4, 62.0, fps=5.0))
    for s in ("cam0.mic", "cam1.mic", "cam0", "cam1"):
        last = out[s][-1]
        assert last["t"] > 60.0
        assert abs(last["drift_err"]) <= 5.0, f"{s}: drift error {last['drift_err']:.2f} ppm"


def test_clock_jump_and_publisher_restart_recover_within_5_s():
    jump_at, restart_at = 10.0, 14.0
    rig = rig_for(
        5,
        26.0,
        cam_clock=ClockConfig(offset_s=12.0, drift_ppm=80.0, jump_at_s=jump_at, jump_s=1.7),
        cam1_net=NetworkConfig(restart_at_s=restart_at, restart_gap_s=1.0),
    )
    _truth, out, events, reg = run(rig)
    jumped = [t for t, e in events if e.name == "stream.status" and e.stream == "cam0.mic" and e.body["jumped"]]
    assert jumped and jump_at <= jumped[0] <= jump_at + 1.0
    assert reg.get_sample_value("warpsync_engine_clock_events_total", {"stream": "cam0.mic", "kind": "jump"}) >= 1
    for mic, t_ev in (("cam0.mic", jump_at), ("cam1.mic", restart_at + 1.0)):
        after = np.array([abs(r["err"]) for r in out[mic] if r["t"] >= t_ev + 5.0])
        assert len(after) > 5
        assert np.percentile(after, 95) <= 1e-3, f"{mic}: p95 {np.percentile(after, 95) * 1e3:.3f} ms after recovery"
    # while the clock model after the jump is young, the content correction rests on it: not settled (EVENTS-sync.md)
    young = [r for r in out["cam0.mic"] if jump_at <= r["t"] < jump_at + 5.0 and r["method"] == "content"]
    assert young and not any(r["settled"] for r in young)
    # and its uncertainty is published with it until content measures on the new model: the first event after the
    # jump said 0.07 ms while 1.0 ms off (and 0.02 ms while 0.2-0.3 ms off on the default rig's seeds 1-3)
    first = young[0]
    assert first["uncertainty_s"] >= 0.005 and abs(first["err"]) <= 2 * first["uncertainty_s"], first


def test_a_clock_that_jumps_before_its_fit_is_mature_keeps_its_slope():
    """cam0's clock steps 1.7 s at 8 s, when its fit spans under 10 s. The model used to start again with no slope:
    fits of two and three bins gave hundreds to thousands of ppm, every refit widened the locked microphone's rate
    (`ContentFilter.disturb`), and cam0.mic's rate reached 2854 ppm: 13.4 ms off (p95) from 5 s after the jump to
    the end. Any fit of 2 s or more now passes its slope on, until the new fit spans as much."""
    jump_at = 8.0
    rig = rig_for(8, 26.0, cam_clock=ClockConfig(offset_s=12.0, drift_ppm=80.0, jump_at_s=jump_at, jump_s=1.7))
    _truth, out, _, _ = run(rig)
    after = np.array([abs(r["err"]) for r in out["cam0.mic"] if r["t"] >= jump_at + 5.0])
    assert len(after) > 5
    assert np.percentile(after, 95) <= 1e-3 and after.max() <= 2e-3, f"p95 {np.percentile(after, 95) * 1e3:.3f} ms"


def test_silence_falls_back_to_clock_and_confidence_says_so():
    cfg = EngineConfig(content=ContentConfig(timeout_s=3.0))
    rig = rig_for(6, 24.0, scene=SceneConfig(silence=((12.0, 24.0),)))
    _truth, out, _, _ = run(rig, cfg)
    rows = out["cam0.mic"]
    before = [r for r in rows if 8.0 <= r["t"] < 12.0]
    # windows reach back window_s (4 s); then timeout_s (3 s) without an informative window
    during = [r for r in rows if 12.0 + 4.0 + 3.0 + 0.5 <= r["t"]]
    assert len(during) >= 6
    assert all(r["method"] == "fused" and r["confidence"] > 0.7 for r in before)
    assert all(r["method"] == "clock" and r["confidence"] <= 0.25 for r in during)
    assert {r["content"] for r in during} <= {"silent", "low_corr", "ambiguous", "edge"}
    # what content learned (capture latency) is kept: the clock fallback stays close to the truth
    assert max(abs(r["err"]) for r in during) < 2e-3
    assert all(r["uncertainty_s"] > before[-1]["uncertainty_s"] for r in during)


@pytest.mark.parametrize("bridge", [True, False])
def test_no_false_content_lock_across_modalities(bridge):
    """Video motion and IMUs vs audio: whatever content sync can or cannot measure, it never claims a lock
    (method content/fused) on a wrong offset. With the sensor bridge (default) the IMU is aligned to the room
    microphone and the cameras to the IMU, so every lock is checked against the reference (within what it says
    of its uncertainty); without it the IMU is aligned to cam0 and checked relative to it."""
    cfg = EngineConfig(content=ContentConfig(sensor_bridge=bridge))
    for seed in (7, 8):
        _truth, out, _, _ = run(rig_for(seed, 20.0, imus=1, fps=30.0), cfg)
        for s in ("cam0", "cam1", "imu0"):
            for r in out[s]:
                if r["method"] == "clock":
                    assert r["confidence"] <= 0.25
                elif r["method"] == "lead":
                    # not locked yet: the lag its windows point at, which may be wrong, and says so
                    assert r["confidence"] <= 0.25 and not r["settled"] and r["uncertainty_s"] >= 0.1
                elif s == "imu0" and not bridge:
                    # aligned to its camera: right relative to it, and no more certain than the camera is
                    pair = r["err"] - _partner_err(out["cam0"], r["t"])
                    assert abs(pair) < 0.02, f"{s} seed {seed}: {r['method']} with pair error {pair * 1e3:.1f} ms"
                    assert abs(r["err"]) <= 0.02 + 3 * r["uncertainty_s"]
                else:
                    # a camera aligned to the IMU before the IMU locked is right relative to the IMU and says how
                    # uncertain the IMU still is (its clock-only uncertainty, 115 ms)
                    assert abs(r["err"]) < 0.02 + 3 * r["uncertainty_s"], (
                        f"{s} seed {seed}: {r['method']} with error {r['err'] * 1e3:.1f} ms"
                    )


def _partner_err(rows, t):
    ts = np.array([r["t"] for r in rows])
    return float(np.interp(t, ts, np.array([r["err"] for r in rows])))


@pytest.mark.parametrize("seed", [21, 23])
def test_imu_aligned_to_its_camera_within_a_quarter_frame(seed):
    """An IMU on one object vs a 30 fps camera seeing three (motion vectors, dropped chunks): acceleration
    magnitude vs change of motion energy. Clock sync alone leaves the capture latencies between them (tens of
    ms); once content locks, the pair error stays within a quarter frame (8.3 ms). Seeds chosen after the
    method was fixed (not tuned on); seed 22 never locks in 40 s and stays on clock sync. With the sensor bridge
    the IMU locks to the microphone and the camera to the IMU: the pair is content-locked once both are."""
    fps = 30.0
    _truth, out, _, _ = run(rig_for(seed, 40.0, imus=1, fps=fps))
    cam = out["cam0"]
    cam_t = np.array([r["t"] for r in cam])

    def cam_locked(t):
        return cam[int(np.argmin(np.abs(cam_t - t)))]["method"] in LOCKED

    pairs = [(r, r["err"] - _partner_err(cam, r["t"])) for r in out["imu0"]]
    content = [abs(p) for r, p in pairs if r["method"] in LOCKED and cam_locked(r["t"])]
    clock = [abs(p) for r, p in pairs if r["method"] == "clock"]
    assert len(content) >= 0.5 * len(pairs), "content should hold for most of the run"
    assert np.percentile(content, 95) <= 0.25 / fps
    assert np.median(clock) > 2 * np.percentile(content, 95)  # what content sync removed


NO_BRIDGE = EngineConfig(content=ContentConfig(sensor_bridge=False))
"""The IMU aligned to the fastest camera (the pairing these tests were written for), not to the room microphone."""


def _imu_vs_cam1(seed: int, duration_s: float, cfg: EngineConfig = NO_BRIDGE) -> tuple[list[float], int]:
    """The default rig: |IMU error - cam1 error| of the IMU's content-locked events, and its number of events.
    Without the sensor bridge: the IMU is aligned to cam1 (kinetic envelopes, cells weighted)."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=seed, duration_s=duration_s)
    _truth, out, _, _ = run(rig, cfg, reference="room")
    pairs = [(r, r["err"] - _partner_err(out["cam1"], r["t"])) for r in out["imu1"]]
    return [abs(p) for r, p in pairs if r["method"] in LOCKED], len(pairs)


ONE_FRAME = EngineConfig(
    content=ContentConfig(acquire_split=False, sensor_bridge=False),
    features=FeatureConfig(motion_baseline_frames=1, motion_kinetic="energy"),
)
"""Motion energy of consecutive frames and acquisition without the split-halves test: the engine before
motion_baseline_frames = 2 (and before motion vectors, `motion_kinetic`)."""
ENERGY = FeatureConfig(motion_kinetic="energy")
"""The kinetic envelope on motion energy, as before 2026-12-07 (docs/engine-log.md, "Motion vectors instead of
motion energy"): the feature the tests below found their failures on."""


@pytest.mark.parametrize("seed", [1, 5])
def test_imu_locks_to_a_camera_sending_raw_frames(seed):
    """The default rig (configs/rigs/default.toml, a 60 fps camera sending 24x32 frames) for 25 s: the IMU's
    object moves inside the camera's 4x4 cells most of the time, which only a per-cell mean |frame difference|
    sees (the change of a cell's mean sees only what crosses cell borders: with it the IMU never locked in this
    time, first lock at 48 s on seed 1). Once locked, within a quarter frame of the camera. Measured on
    differences of consecutive frames, the feature that fix was made in (with the default two-frame energies
    seed 1 locks later, at 22 s, see the next test's docstring)."""
    content, n = _imu_vs_cam1(seed, 25.0, ONE_FRAME)
    assert len(content) >= 0.3 * n, f"{len(content)} of {n} events content-locked"
    assert np.percentile(content, 95) <= 0.25 / 60.0


@pytest.mark.parametrize("seed", [3, 6])
def test_two_frame_motion_energy_locks_where_the_camera_sees_the_kicks(seed):
    """Seeds 3 and 6: cam1 sees 6 and 3 kicks of the IMU's object in the first 8 s (`warpsync.sim.visibility`),
    a fraction of a pixel per frame each, about what pixel noise changes. Motion energy over two frames doubles
    what they add, and windows whose halves agree may lock after 2 s of new data: the IMU locks within 9 s, on
    the right lag (locked p95 1.3 and 4.4 ms in these 20 s; seed 6's first locked seconds are 4.4 ms off, its
    locked p95 over 120 s is 1.5 ms), where consecutive-frame energies lock on 0 and 8 of 39 events. The
    quarter-frame p95 is the benchmark's to measure (docs/engine.md, "Numbers now"). Measured on motion energy,
    as then; the kinetic envelope follows motion vectors by default since 2026-12-07."""
    content, n = _imu_vs_cam1(seed, 20.0, EngineConfig(content=ContentConfig(sensor_bridge=False), features=ENERGY))
    before, _ = _imu_vs_cam1(seed, 20.0, ONE_FRAME)
    assert len(content) >= 0.5 * n, f"{len(content)} of {n} events content-locked"
    assert len(content) > len(before)
    assert max(content) < 0.5 / 60.0  # the right lag, not a neighbouring one


def test_split_halves_keep_a_chance_lock_out():
    """Seed 7: the camera sees no kick of the IMU's object before 8 s and four at 8.8-12.1 s. With two-frame
    energies, 8 s windows 4 s apart all contain those four and agree on a lag 192 ms from the truth, and without
    the split-halves test that locks; with it, each half of a window must find the lag on its own and nothing
    locks in 25 s. (On motion vectors, the default since 2026-12-07, this seed makes no chance lock even without
    the test: its locked events are within 2 ms; nor does it when the windows before the first lock are searched
    without their slow part, `acquire_highpass_s`, the default since the same day: the test pins both.)"""
    no_split = ContentConfig(acquire_split=False, sensor_bridge=False, acquire_highpass_s=0.0)
    chance, _ = _imu_vs_cam1(7, 25.0, EngineConfig(content=no_split, features=ENERGY))
    assert chance and max(chance) > 0.1  # the failure the test exists for
    split = ContentConfig(sensor_bridge=False, acquire_highpass_s=0.0)
    content, _ = _imu_vs_cam1(7, 25.0, EngineConfig(content=split, features=ENERGY))
    assert all(e <= 3.0 / 60.0 for e in content), f"locked {max(content) * 1e3:.1f} ms off"


def test_relock_needs_as_much_new_data_as_a_first_lock():
    """Default rig, seed 14, host reference as `warpsync simulate` runs it: cam1's microphone opens first and is
    the content anchor, the room microphone is aligned to it within 0.02 ms. At 83 s one loud event made three
    consecutive 4 s windows (0.5 s apart: mostly the same data) agree on a lag 13 ms off; three consistent
    outliers were enough to re-lock, and the room sat up to 13 ms off for 15 s (audio<->audio p95 4.9 ms over the
    run). A re-lock now needs outliers spanning `acquire_span_s`, as a first lock does."""
    from warpsync.sim.run import replay_offline
    from warpsync.sim.score import Scorer

    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=14)
    sim = Simulator(rig)
    scorer = Scorer(sim.truth)
    replay_offline(
        sim, EngineStage(EngineConfig(), CollectorRegistry()), 100.0, on_events=lambda e, _: scorer.add_all(e)
    )
    card = scorer.scorecard()
    assert card.streams["cam1.mic"].partner == "room"
    assert card.streams["cam1.mic"].p95_s < 1e-3


def test_a_latency_change_beyond_the_locked_search_relocks():
    """cam0's microphone gains 60 ms of capture latency at 12 s: no step in its timestamps or arrivals, so clock
    sync cannot see it, and 60 ms is three times the locked search (20 ms). Windows around the lock then find
    nothing (`low_corr`, `edge`), the same windows searched as widely as for a first lock find the new lag, and
    consecutive ones re-lock: within 1 ms again from 8 s after the change. Without the wider search it stays
    60 ms off for good (the failure the test exists for)."""
    at = 12.0
    rig = dataclasses.replace(rig_for(2, 28.0), latency_steps=(LatencyStepConfig("cam0.mic", at, 0.06),))
    for audit in (False, True):
        _truth, out, _, _ = run(rig, EngineConfig(content=ContentConfig(audit_search=audit)))
        before = np.array([abs(r["err"]) for r in out["cam0.mic"] if 8.0 <= r["t"] < at])
        after = np.array([abs(r["err"]) for r in out["cam0.mic"] if r["t"] >= at + 8.0])
        assert len(before) > 5 and len(after) > 10
        assert np.percentile(before, 95) <= 1e-3  # locked before the change
        if audit:
            assert np.percentile(after, 95) <= 1e-3, f"p95 {np.percentile(after, 95) * 1e3:.3f} ms after the change"
        else:
            assert np.median(after) > 0.05
    # the other microphone is untouched
    assert np.percentile([abs(r["err"]) for r in out["cam1.mic"] if r["t"] >= 8.0], 95) <= 1e-3


@pytest.mark.parametrize(("seed", "duration_s", "back_by_s"), [(7, 42.0, 36.5), (1, 38.0, 34.0)])
def test_a_step_beyond_the_locked_search_is_seen_before_the_windows_reach_its_edge(seed, duration_s, back_by_s):
    """The latency rig (`configs/rigs/latency.toml`): the camera microphone's capture latency grows by 50 ms at
    30 s, beyond the 20 ms its locked windows search, and the audit searches wider only where they find nothing
    there (at the range's edge). Seed 7: as the windows filled with new data they peaked 9-14 ms from the lock, a
    weaker local peak the smoother took, and reached the edge only at 36.6 s: 50 ms off until 38.2 s. Seed 1: they
    kept peaking within 1.2 ms of the lock while their older part held the louder events, their correlation
    falling from 0.81 to 0.42, and reached the edge at 33.6 s: back within 1 ms at 36.1 s (and at 36.1 s too with
    the wider search only for a window peaking over 10 ms from the lock). Every locked audio window is searched as
    widely as the audit does (`content.far_peak_search`), its wider peak taken where it lies beyond the locked
    search and correlates better: seed 7 within 1 ms again from 36.5 s; seed 1 from 34.1 s (the wider peak
    correlates better from 31.6 s, 0.61 against 0.55)."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG.parent / "latency.toml"), seed=seed, duration_s=duration_s)
    for far in (True, False):
        _truth, out, _, _ = run(rig, EngineConfig(content=ContentConfig(far_peak_search=far)), reference="room")
        rows = out["cam.mic"]
        assert max(abs(r["err"]) for r in rows if 20.0 <= r["t"] < 30.0) <= 1e-3  # locked before the change
        after = max(abs(r["err"]) for r in rows if r["t"] >= back_by_s)
        assert (after <= 1e-3) if far else (after > 0.04), f"far_peak_search={far}: {after * 1e3:.2f} ms"


def test_envelope_windows_that_peak_off_do_not_move_a_lock_the_raw_audio_holds(monkeypatch):
    """The default rig at 846 s: four consecutive 4 s windows of cam1's microphone against the room peaked 13 ms
    off (correlation 0.62-0.67) and re-locked it; it sat 13 ms off, flagged settled, for 3.5 s, while GCC-PHAT on
    the raw audio peaked at the lock at 60-240 times its mean (a 15-minute run; `soak_service.py` found it).
    Here eight windows of cam0's microphone (4 s of hops) have their envelope lag moved 13 ms, the raw audio
    untouched: searched from the lock to beyond the envelope's lag, GCC still peaks at the lock, and the lock
    stands. Without that search the microphone re-locked 13 ms off (the failure the test exists for)."""
    from warpsync.engine import hop as H

    real = H.ContentHop._measure
    locked_windows = defaultdict(int)

    def measure(self, w, L, sig_pred, locked, negate=False):
        m = real(self, w, L, sig_pred, locked, negate)
        if w.st.name == "cam0.mic" and locked and m.informative:
            locked_windows["n"] += 1
            if 10 <= locked_windows["n"] < 18:
                return dataclasses.replace(m, lag_s=m.lag_s + 0.013)
        return m

    monkeypatch.setattr(H.ContentHop, "_measure", measure)
    _truth, out, _, _ = run(rig_for(2, 24.0))
    assert locked_windows["n"] >= 24  # the moved windows and 3 s of windows after them
    first_settled = next(r["t"] for r in out["cam0.mic"] if r["settled"] and r["method"] == "fused")
    errs = np.array([abs(r["err"]) for r in out["cam0.mic"] if r["t"] >= first_settled])
    assert errs.max() <= 1e-3, f"cam0.mic up to {errs.max() * 1e3:.2f} ms off"


def test_a_network_path_that_gets_faster_does_not_move_a_locked_audio_pair():
    """cam1's network path gets 1.5 ms faster at 20 s (a route change, a host that stopped being busy). Its
    timestamps see that, the truth does not: the clock model's delay envelope drops and its refit moves cam1's
    mapping. Content sync had the camera's microphone locked to the room within tens of microseconds. Its
    GCC-PHAT lags, outside the tight lock's gate, were taken for wrong peaks while the envelope agreed within
    its 1 ms floor, so the microphone stayed 1.8-2.3 ms off for 30 s. The engine takes a refit's move back from a
    content-locked stream (`SyncEngine._hold_mapping`), and the pair stays within a fraction of a millisecond."""
    rig = rig_for(2, 40.0, cam1_net=NetworkConfig(delay_step_at_s=20.0, delay_step_s=-0.0015))
    _truth, out, _, _ = run(rig)
    before = [abs(r["err"]) for r in out["cam1.mic"] if 10.0 <= r["t"] < 20.0]
    after = [abs(r["err"]) for r in out["cam1.mic"] if r["t"] >= 20.0]
    assert len(before) > 10 and len(after) > 20
    assert np.percentile(before, 95) <= 0.2e-3  # locked before the change
    assert np.percentile(after, 95) <= 0.4e-3, f"p95 {np.percentile(after, 95) * 1e3:.3f} ms after the change"


def test_a_path_that_gets_faster_while_the_clock_model_is_young_is_covered_then_taken_back():
    """cam1's path gets 0.6 ms faster at 6 s, while its clock model rests on 6 s of timestamps. A young model's
    refits are not held (it is still finding the path's least delay), and its lower envelope tilts: the slope
    moves by about 120 ppm. The smoother's gate took the GCC-PHAT lags that saw it for wrong peaks (0.6-1.2 ms
    off, under an uncertainty of 0.04-0.19 ms); after the model's fit dropped the tilt (14 s), one late lag put
    -94 ppm into the smoother's rate, and the microphone ran off at 100 ppm, 1.5 ms by 30 s. Now a young
    refit's move is process noise the published uncertainty covers and the next lags correct, and a refit's
    change of slope moves the correction's rate as far as measurements fixed it (docs/engine-log.md, "A young
    clock's refits")."""
    rig = rig_for(9, 30.0, cam1_net=NetworkConfig(delay_step_at_s=6.0, delay_step_s=-0.0006))
    _truth, out, _, _ = run(rig)
    early = [r for r in out["cam1.mic"] if 6.0 <= r["t"] < 13.0 and r["method"] in LOCKED]
    late = [abs(r["err"]) for r in out["cam1.mic"] if r["t"] >= 13.0]
    assert len(early) > 8 and len(late) > 20
    covered = np.mean([abs(r["err"]) <= 2 * r["uncertainty_s"] for r in early])
    assert covered >= 0.9, f"{covered:.2f} of the errors within twice the published uncertainty at 6-13 s"
    assert np.percentile(late, 95) <= 0.1e-3, f"p95 {np.percentile(late, 95) * 1e3:.3f} ms from 13 s"


def test_a_sub_millisecond_latency_change_is_followed():
    """cam0's microphone gains 0.4 ms of capture latency at 20 s: inside its envelope's 1 ms sigma, outside the
    locked GCC-PHAT gate (6 sigma of tens of microseconds). Those GCC lags were taken for wrong peaks (one loud
    event can hold one for a raw window), so the pair stayed 0.4 ms off for 15 s. GCC lags that agree with each
    other for longer than a raw window are news: the smoother re-locks on them."""
    rig = dataclasses.replace(rig_for(2, 40.0), latency_steps=(LatencyStepConfig("cam0.mic", 20.0, 0.0004),))
    _truth, out, _, _ = run(rig)
    before = [abs(r["err"]) for r in out["cam0.mic"] if 10.0 <= r["t"] < 20.0]
    after = [abs(r["err"]) for r in out["cam0.mic"] if r["t"] >= 28.0]
    assert len(before) > 10 and len(after) > 10
    assert np.percentile(before, 95) <= 0.1e-3
    assert np.percentile(after, 95) <= 0.1e-3, f"p95 {np.percentile(after, 95) * 1e3:.3f} ms from 8 s after"


def _locked(rows, t_from: float = 0.0):
    return [r for r in rows if r["method"] in LOCKED and r["t"] >= t_from]


def _p95_locked(rows, t_from: float) -> float:
    """The 95th percentile of the |error| of the locked events from `t_from` on."""
    return float(np.percentile([abs(r["err"]) for r in _locked(rows, t_from)], 95))


@pytest.mark.parametrize("seed", [3, 10])
def test_a_sensor_bridges_the_cameras_to_the_room_microphone(seed):
    """The default rig (configs/rigs/default.toml), 40 s, the room microphone as reference. A camera's motion
    peaks in the middle of a velocity change, its sound at the start: compared directly, they never lock, and
    the cameras keep the capture latencies clocks cannot see (12-63 ms). The IMU on object 0 feels the start of
    each of its contacts as the microphone hears it (impact envelopes): it locks to the microphone within 1 ms,
    and the cameras lock to it by velocity changes, so a camera's lock is against the microphone's timeline:
    within a quarter of its frame of the truth. Without the bridge (`content.sensor_bridge = false`) no camera
    locks."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=seed, duration_s=40.0)
    _truth, out, _, _ = run(rig, reference="room")
    assert {r["partner"] for r in out["imu1"]} == {"room"}  # what each event says it is aligned to
    assert {r["partner"] for r in out["cam1"] + out["cam2"]} == {"imu1"}
    imu = _locked(out["imu1"])
    assert imu and imu[0]["t"] <= 15.0, "the IMU locks to the microphone"
    assert np.percentile([abs(r["err"]) for r in imu], 95) <= 1e-3
    cams = {c: _locked(out[c]) for c in ("cam1", "cam2")}
    assert any(len(rows) >= 0.3 * len(out[c]) for c, rows in cams.items()), "a camera locks for most of the run"
    for c, rows in cams.items():
        if rows:
            quarter = 0.25 / (60.0 if c == "cam1" else 30.0)
            assert np.percentile([abs(r["err"]) for r in rows], 95) <= quarter, c
    _truth, off, _, _ = run(rig, NO_BRIDGE, reference="room")
    assert {r["partner"] for r in off["imu1"]} == {"cam1"} and {r["partner"] for r in off["cam1"]} == {"room"}
    assert not _locked(off["cam1"]) and not _locked(off["cam2"])
    # nor do they publish a lead: a camera's motion and a microphone's onsets are no matched feature
    assert not any(r["method"] == "lead" for r in off["cam1"] + off["cam2"])
    assert min(abs(r["err"]) for r in off["cam1"] + off["cam2"]) > 0.01  # the latencies the bridge removes


def _first_lock(rows) -> float:
    return next((r["t"] for r in rows if r["method"] in LOCKED), float("inf"))


def _within_from(rows, floor_s: float) -> float:
    """The first time after which every published |error| is within `floor_s` (inf if the last one is not)."""
    out = [r["t"] for r in rows if abs(r["err"]) > floor_s]
    if not out:
        return rows[0]["t"]
    later = [r["t"] for r in rows if r["t"] > out[-1]]
    return later[0] if later else float("inf")


def test_a_lead_is_published_until_the_first_lock_and_moves_no_lock():
    """The default rig, seed 56, 16 s. Before a stream's first lock its published offset is its lead
    (`content.publish_lead`): the lag its windows point at, with method `lead`, not settled, the clock's 115 ms
    uncertainty and a confidence of at most 0.25. cam2 (30 fps, 110 ms of capture latency) locks at 15.1 s; its
    lead is within its quarter frame from 7.1 s on, where the clock's mapping stays a capture latency off until the
    lock.
    Publishing leads changes nothing the engine measures: with `publish_lead = false` every stream locks at the
    same time and ends at the same offset, and no event is a lead.
    Measured on whole envelopes before the first lock (`acquire_highpass_s = 0`): without their slow part, the
    default since 2026-12-07, cam2 locks at 10.1 s, 8.2-8.6 ms off, at its quarter frame (8.3 ms) until 11.1 s,
    and leads and clock meet the floor at the same time."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=56, duration_s=16.0)
    whole = dataclasses.replace(ContentConfig(), acquire_highpass_s=0.0)
    _truth, on, _, _ = run(rig, EngineConfig(content=whole), reference="room")
    quiet = EngineConfig(content=dataclasses.replace(whole, publish_lead=False))
    _truth, off, _, _ = run(rig, quiet, reference="room")
    assert any(r["method"] == "lead" for s in on for r in on[s])
    for s in on:
        assert not any(r["method"] == "lead" for r in off[s]), s
        assert _first_lock(on[s]) == _first_lock(off[s]), s
        assert on[s][-1]["offset_s"] == pytest.approx(off[s][-1]["offset_s"], abs=1e-9), s
        for r in on[s]:
            if r["method"] == "lead":
                assert r["t"] < _first_lock(on[s]) and not r["settled"], s
                assert r["uncertainty_s"] >= 0.1 and r["confidence"] <= 0.25, s
    quarter = 0.25 / 30.0
    assert _within_from(on["cam2"], quarter) <= 10.0 < _within_from(off["cam2"], quarter)


def test_windows_broader_than_their_content_lead(monkeypatch):
    """The default rig, seed 2, 12 s. From 6.5 s cam1's windows through imu1's contact response peak within 2-4 ms
    of the truth, but with a main lobe broader than the content explains (`broad`): they count towards no lock,
    and cam1 locks at 11.1 s. They now lead (`hop._lead_only`): cam1 is within its quarter frame (4.2 ms at 60 fps)
    from 7.1 s on. On the rule before (only `split` windows lead) it was from 10.1 s, after a lead 58 ms off at
    9.6 s. What it costs is here too: at 5-6 s broad windows against imu1 itself led cam1 39 ms off, where the
    clock's mapping was 12 ms off. Measured on whole envelopes before the first lock (`acquire_highpass_s = 0`):
    without their slow part, the default since 2026-12-07, fewer windows are broad, and with `split` leads only
    cam1 is within its quarter frame from 6.6 s."""
    from warpsync.engine import hop

    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=2, duration_s=12.0)
    quarter = 0.25 / 60.0
    whole = EngineConfig(content=dataclasses.replace(ContentConfig(), acquire_highpass_s=0.0))
    _truth, on, _, _ = run(rig, whole, reference="room")
    assert _within_from(on["cam1"], quarter) <= 8.0
    assert any(r["method"] == "lead" for r in on["cam1"] if r["t"] <= 8.0)
    monkeypatch.setattr(hop, "_lead_only", lambda m, c: m.reason == "split")
    _truth, before, _, _ = run(rig, whole, reference="room")
    assert _within_from(before["cam1"], quarter) > 9.5


def test_a_locked_camera_takes_neither_of_two_sources_that_disagree():
    """The default rig, seed 14, 20 s. Once imu1 has learned its contact response, a locked camera's hop used its
    window through that response whenever it was informative. From 9.5 s to 12.5 s cam1's windows through it sat
    4.5-8.2 ms off the truth, while its windows against imu1 itself were within 1.2 ms; the smoother followed the
    first, and cam1 left its quarter frame (4.2 ms at 60 fps) for 5 s. Measured against imu1 too, a hop whose two
    windows differ by more than a quarter frame takes neither (`content.source_conflict`): cam1 is within its
    quarter frame from 5.1 s on, and its p95 after 8 s is 3.5 ms instead of 5.2 ms. Measured on motion energy,
    where it was found: on motion vectors (the default since 2026-12-07) cam1's windows through the response are
    nearer, and without the rule its p95 after 8 s is 3.5 ms, within the floor. And on the windows' peaks: with
    each locked window measured one event at a time (`content.event_lags`, the default since the same day),
    cam1's p95 after 8 s without the rule is 3.6 ms on motion energy too."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=14, duration_s=20.0)
    quarter = 0.25 / 60.0
    peaks = dataclasses.replace(ContentConfig(), event_lags=False)
    _truth, on, _, _ = run(rig, EngineConfig(content=peaks, features=ENERGY), reference="room")
    assert _within_from(on["cam1"], quarter) <= 6.0
    assert _p95_locked(on["cam1"], 8.0) <= 0.9 * quarter
    assert any(r["content"] == "conflict" for r in on["cam1"])
    one = EngineConfig(content=dataclasses.replace(peaks, source_conflict=False), features=ENERGY)
    _truth, off, _, _ = run(rig, one, reference="room")
    assert _p95_locked(off["cam1"], 8.0) > quarter
    assert _within_from(off["cam1"], quarter) > 12.0
    assert not any(r["content"] == "conflict" for r in off["cam1"])


def test_a_source_that_says_nothing_still_holds_the_other_off():
    """The default rig, seed 121, 19 s. cam1 locks at 12 s through imu1's contact response, within 1 ms. From
    12.5 to 14 s its windows against imu1 itself sit 6-16 ms off and conflict with those through the response
    (`content.source_conflict`), so the hops take neither. From 14.5 s the windows through the response fall
    under `min_corr` while imu1's, still 13-16 ms off, are informative, and with nothing to compare them with the
    hops took them: cam1 went 9.4 ms off by 16 s, over twice its quarter frame (4.2 ms at 60 fps). The response's
    last word, a hop before and on most of the same data, now stands for it (`content.source_memory`): the next
    two hops, whose windows against imu1 lie further from it than their sigmas explain, report `conflict`
    too, and cam1 stays within 2.7 ms after its lock."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=121, duration_s=19.0)
    quarter = 0.25 / 60.0
    _truth, on, _, _ = run(rig, reference="room")
    assert max(abs(r["err"]) for r in _locked(on["cam1"], 12.5)) <= quarter
    assert sum(r["content"] == "conflict" for r in _locked(on["cam1"], 14.5)) >= 2
    off = EngineConfig(content=dataclasses.replace(ContentConfig(), source_memory=0.0))
    _truth, before, _, _ = run(rig, off, reference="room")
    assert max(abs(r["err"]) for r in _locked(before["cam1"], 12.5)) > 2 * quarter


def test_a_wide_search_window_is_held_against_the_silent_sources_last_word():
    """The default rig, seed 166, 66 s. cam1 is within its floor from 6 s. From 61.7 s its windows at the lock find
    nothing, and the wide search (`content.audit_search`) finds cam1 161 ms later than imu1 on its window against
    imu1 itself: two kicks of another object, which cam1 sees, followed two of imu1's object, which it does not, by
    157-161 ms. The window through imu1's contact response peaks near the lock there (not informatively), and its
    last informative lag, at 61.2 s, was 3 ms from the lock. The last word held only the hop's own search out, so
    five such windows re-locked cam1 159 ms off at 64.7 s. Held against it in the wide search too
    (`content.wide_last_word`), those windows are not taken, and cam1 stays within its quarter frame."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=166, duration_s=66.0)
    quarter = 0.25 / 60.0
    _truth, now, _, _ = run(rig, reference="room")
    assert max(abs(r["err"]) for r in now["cam1"] if r["t"] >= 20.0) <= quarter
    off = EngineConfig(content=dataclasses.replace(ContentConfig(), wide_last_word=False))
    _truth, before, _, _ = run(rig, off, reference="room")
    assert max(abs(r["err"]) for r in before["cam1"] if r["t"] >= 20.0) > 0.1


def test_a_locked_cameras_window_takes_the_median_of_its_events():
    """The default rig, seed 1 (the demo's), 20 s. cam1's kicks of imu1's object in its first 20 s measure -4,
    -0.5, -9, -2, -3.5 and -22.5 ms (`tools/engine/contact_timing.py`), and its 8 s windows against imu1, the
    peaks of their cross-correlation, an energy-weighted mean of three or four of them, were 5-8.5 ms off from 6.5
    to 11 s: cam1 published 5.6 ms off and came within its quarter frame (4.2 ms at 60 fps) only at 17.1 s. Each
    locked window measured one event at a time, its lag the weighted median of its events' own
    (`content.event_lags`), cam1 is within it from 4.6 s on, and its p95 after 8 s is 3.1 ms."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=1, duration_s=20.0)
    quarter = 0.25 / 60.0
    _truth, events, _, _ = run(rig, reference="room")
    assert _within_from(events["cam1"], quarter) <= 6.0
    assert _p95_locked(events["cam1"], 8.0) <= 0.8 * quarter
    peaks = EngineConfig(content=dataclasses.replace(ContentConfig(), event_lags=False))
    _truth, before, _, _ = run(rig, peaks, reference="room")
    assert _p95_locked(before["cam1"], 8.0) > 1.2 * quarter
    assert _within_from(before["cam1"], quarter) > 12.0


def test_a_sensors_own_latency_change_does_not_move_the_camera_locked_to_it(monkeypatch):
    """The latency rig (`configs/rigs/latency.toml`, seed 3), 62 s: the IMU's capture latency drops by 20 ms at
    40 s. Its windows against the room see it, and it re-locks at 51.4 s. The camera is locked to the IMU, and
    a stream's correction used to move with every move of its partner's: right for a sensor's first lock (the
    camera had measured against its clock mapping), wrong here, where the change is the IMU's own, and the camera
    was 19.5 ms off from 51.4 to 54.4 s, until its own windows re-locked it. A sensor's confirmed lock that
    re-locks against the microphone no longer moves the streams locked to it: the camera stays within a quarter
    of its quarter frame of the truth from 40 s on."""
    from warpsync.engine import hop as H

    rig = dataclasses.replace(load_rig(DEFAULT_RIG.parent / "latency.toml"), seed=3, duration_s=62.0)
    quarter = 0.25 / 60.0
    _truth, now, _, _ = run(rig, reference="room")
    assert max(abs(r["err"]) for r in now["imu"] if 40.0 <= r["t"] <= 50.0) > 0.015  # the IMU's change, seen late
    assert max(abs(r["err"]) for r in now["imu"] if r["t"] >= 55.0) <= quarter
    assert max(abs(r["err"]) for r in now["cam"] if r["t"] >= 40.0) <= 0.25 * quarter
    real = H.ContentHop._propagate
    monkeypatch.setattr(H.ContentHop, "_propagate", lambda self, st, d, _depth=0, own=False: real(self, st, d, _depth))
    _truth, moved, _, _ = run(rig, reference="room")
    assert max(abs(r["err"]) for r in moved["cam"] if r["t"] >= 40.0) > 0.015


def test_a_sensors_step_shows_in_its_halves_before_it_fills_a_window():
    """The latency rig, seed 3, as above: the IMU's capture latency drops by 20 ms at 40 s. Its 8 s windows against
    the room peak at the new lag from 44.2 s, but a lag beyond the lock's gate had to show in both halves of a
    window, and a window that holds the step shows it in its newer half only: those windows were `split` until
    46.7 s and again at 49.2-50.2 s, and the IMU re-locked at 51.2 s. A window whose newer half carries the new lag
    while its older half peaks at the lock is a step (`content.step_halves`), an outlier like any other: the IMU is
    back within a quarter of the camera's frame from 49 s, where without the rule it is still 20 ms off at 50.5 s."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG.parent / "latency.toml"), seed=3, duration_s=52.0)
    quarter = 0.25 / 60.0
    for step in (True, False):
        _truth, out, _, _ = run(rig, EngineConfig(content=ContentConfig(step_halves=step)), reference="room")
        rows = out["imu"]
        assert max(abs(r["err"]) for r in rows if 30.0 <= r["t"] < 40.0) <= quarter  # locked before the change
        if step:
            assert max(abs(r["err"]) for r in rows if r["t"] >= 49.0) <= quarter
        else:
            assert min(abs(r["err"]) for r in rows if 49.0 <= r["t"] <= 50.5) > 0.015


def test_a_camera_acquires_on_its_fast_motion_not_on_slow_humps():
    """The default rig, seed 16, 20 s. Before its first lock cam1's windows against imu1 were `broad` (humps of
    slow motion) from 6.5 to 10.5 s (`tools/engine/trace_windows.py --seed 16`, where its lead followed them 200 ms
    off): here cam1 published the clock's mapping 12.4 ms off until 7.6 s, then a lead at its quarter frame's edge
    (4.2 ms), and locked at 14.1 s, within its quarter frame from 9.6 s. Searched without their slow part before
    the first lock (a Gaussian of 100 ms subtracted from the cells and the sensor: `content.acquire_highpass_s`)
    its windows carry the kicks' lag: a lead 1.0-1.6 ms off from 5.0 s, a lock at 6.6 s, within its quarter frame
    from 5.1 s; once locked it is measured on the whole envelopes, as before."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=16, duration_s=20.0)
    quarter = 0.25 / 60.0
    _truth, events, _, _ = run(rig, reference="room")
    assert _first_lock(events["cam1"]) <= 8.0
    assert _within_from(events["cam1"], quarter) <= 6.0
    assert _p95_locked(events["cam1"], 8.0) <= 0.5 * quarter
    whole = EngineConfig(content=dataclasses.replace(ContentConfig(), acquire_highpass_s=0.0))
    _truth, before, _, _ = run(rig, whole, reference="room")
    assert _first_lock(before["cam1"]) > 12.0
    assert _within_from(before["cam1"], quarter) > 9.0


@pytest.mark.parametrize(("seed", "poor"), [(1, "imu1"), (4, "imu0")])
def test_cameras_try_each_bridge_sensor_until_one_locks(seed, poor):
    """Two IMUs on two objects (test rig, 30 fps motion vectors, 40 s): which one a camera sees change speed
    early depends on the scene. Told to use the poorer one (`partners`), a camera locks at 20-35 s (seed 1: imu1
    for both cameras; seed 4: imu0 for cam0); left to the bridge it takes the sensors in turn until one locks,
    and both cameras lock within 10 s, within a quarter frame of the reference, and are flagged settled within
    7 s of their lock (their published uncertainty, which includes a tenth of a frame of systematic uncertainty,
    `kinetic_bias_frames`, falls to 5 ms: 1.5-4.0 s after the lock on the windows' peaks, 2.0-6.0 s with each locked
    window measured one event at a time, `content.event_lags`, whose windows on one or two events weigh less, and
    2.0-6.6 s with the windows before the lock searched without their slow part, `acquire_highpass_s`: seed 4's
    cam1 locks at 7.1 s as before, and is flagged one hop later).
    (Seeds from the experiment that showed it, docs/engine-log.md.) Through the poorer sensor's learned contact
    response they lock by 12 s all the same."""
    rig = rig_for(seed, 40.0, imus=2, fps=30.0)
    # the turn-taking on the sensors' own envelopes (with the contact response, seed 1's cam0 is weighed through
    # the room after its lock and flagged 7 s after it: docs/engine-log.md, "Every contact the microphone hears")
    own = EngineConfig(content=dataclasses.replace(ContentConfig(), contact_response=False))
    _truth, out, _, _ = run(rig, own)
    for cam in ("cam0", "cam1"):
        lock = _first_lock(out[cam])
        assert lock <= 10.0, cam
        assert next(r["t"] for r in out[cam] if r["settled"] and r["t"] >= lock) <= lock + 7.0, cam
        locked = [abs(r["err"]) for r in out[cam] if r["method"] in LOCKED and r["settled"]]
        assert np.percentile(locked, 95) <= 0.25 / 30.0, cam
    told = {"cam0": poor, "cam1": poor}
    _truth, alone, _, _ = run(rig, own, partners=told)
    assert max(_first_lock(alone["cam0"]), _first_lock(alone["cam1"])) > 15.0
    # through the poorer sensor's contact response the cameras see every contact the microphone hears, not only
    # its object's, and lock on it as soon (`content.contact_response`)
    _truth, heard, _, _ = run(rig, partners=told)
    for cam in ("cam0", "cam1"):
        assert _first_lock(heard[cam]) <= 12.0, cam
        locked = [abs(r["err"]) for r in heard[cam] if r["method"] in LOCKED and r["settled"]]
        assert np.percentile(locked, 95) <= 0.25 / 30.0, cam


def test_drift_right_after_a_clock_jump_is_the_kept_slope():
    """Default rig, seed 1: cam2's clock steps by 1.5 s at 70 s. For the 2 s its clock model takes to settle again
    the method is `content`, and its drift used to come from the content smoother's rate, which for a camera
    aligned to the IMU had absorbed 5.6 ppm (cam2.mic 0.5 ppm). The clock model keeps the slope of its long fit
    across the step (the same oscillator), so that is the drift published: within 1 ppm throughout."""
    rig = dataclasses.replace(load_rig(DEFAULT_RIG), seed=1, duration_s=75.0)
    _truth, out, _, _ = run(rig, reference="room")
    for s in ("cam2", "cam2.mic"):
        after = [r for r in out[s] if 70.0 <= r["t"] < 74.0]
        assert any(r["method"] == "content" for r in after), s  # the clock model is young again
        assert max(abs(r["drift_err"]) for r in after) <= 1.0, s


def _wandering(rig: RigConfig, wander_s: float) -> RigConfig:
    def net(x):
        return dataclasses.replace(x, network=dataclasses.replace(x.network, wander_s=wander_s))

    return dataclasses.replace(
        rig,
        cameras=tuple(net(c) for c in rig.cameras),
        mics=tuple(net(m) for m in rig.mics),
        imus=tuple(net(i) for i in rig.imus),
    )


def test_a_wandering_network_delay_tilts_the_clocks_drift_and_not_the_microphones_pairs():
    """Default rig, seed 2, every path's fixed delay wandering over 0.3 ms (a live host's load): the clock
    models' slopes against the host tilt with it, and the drift they give the cameras and their microphones
    after 60 s is 2-5 ppm off. A microphone locked to the room microphone by raw audio pairs the two device
    clocks' times at every hop (`engine.rate`): the drift from those pairs, published for every stream of its
    clock, stays within 1 ppm, cam2's across its clock's 1.5 s step at 70 s too (the rate from before it)."""
    rig = _wandering(dataclasses.replace(load_rig(DEFAULT_RIG), seed=2, duration_s=76.0), 3e-4)
    worst = {}
    for on in (True, False):
        cfg = EngineConfig(content=ContentConfig(audio_drift=on))
        _truth, out, _, _ = run(rig, cfg, reference="room")
        worst[on] = {
            s: max(abs(r["drift_err"]) for r in out[s] if r["t"] >= 60.0)
            for s in ("cam1", "cam1.mic", "cam2", "cam2.mic")
        }
    assert max(worst[True].values()) <= 1.0, worst[True]
    assert max(worst[False].values()) >= 2.0, worst[False]
