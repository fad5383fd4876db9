"""Benchmark: the sync engine scored by the rig simulator against the floors of issue 5.

Run: .venv/bin/python tests/benchmarks/bench_engine.py [--rig FILE] [--duration S] [--capacity-s S] [--live]
     [--skip scorecard,baselines,fallback,capacity]

1. scorecard: the default rig (configs/rigs/default.toml) fed straight into `EngineStage` (no sockets), in
   arrival order, scored against its ground truth: audio<->audio p95, video<->audio and IMU<->video p95 vs a
   quarter frame, drift error after 60 s, settle time, recovery after the clock jump and the publisher restart,
   event latency p99 (a single-server queue model of real time over the measured compute times).
2. baselines in the same run, on the same chunks, scored the same way: timestamps only (the engine with
   content sync off: LSL-style clock sync), raw arrival times (no dejittering: offset = stamp - arrival), and
   for sensors the engine with `content.cell_weighting` off (IMU vs the camera's summed kinetic envelope, the
   previous method): how many of its events are content-locked and how close.
3. fallback: the default rig with 15 s of silence and 15 s without motion: which method is published there
   and what confidence says.
4. capacity: one core (pinned, single-threaded numba/BLAS) processing 16 video streams at 60 fps + 4 audio at
   48 kHz + 8 IMUs at 1 kHz; chunks are generated before timing; prints the real-time factor (compute seconds
   per second of signal; < 1 keeps up).
5. --live: the same rig through a running service (in-process `Service`, ipc sockets), published in real time
   through warpsync_client Publishers and scored from the subscribed events.
6. --feature-lags: with perfect clocks (every feature stamped at the scene time its sample sensed, from the
   truth), at which lag each video feature of the fastest camera, and the IMU's, peaks against the room
   microphone's onset envelope in 8 s windows: the bias and spread content sync would have to live with.
The scorecard also prints, per IMU, how many of its object's kicks its camera sees (from the scene itself,
`warpsync.sim.visibility.seen_kicks`) per 4 s: the content an IMU<->video lock has to go on.
"""

from __future__ import annotations

import os

# one core, single-threaded kernels: must be set before numpy/numba load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import itertools
import sys
import time

import numpy as np
from prometheus_client import CollectorRegistry

from warpsync.config import parse_overrides
from warpsync.engine.config import ContentConfig, EngineConfig, FeatureConfig
from warpsync.engine.stage import EngineStage
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
    load_rig,
)
from warpsync.sim.run import replay_offline
from warpsync.sim.score import Scorer
from warpsync.stage import Samples


def _engine_card(rig: RigConfig, cfg: EngineConfig, duration_s: float):
    sim = Simulator(rig)
    stage = EngineStage(cfg, CollectorRegistry())
    scorer = Scorer(sim.truth)
    t = time.perf_counter()
    stats = replay_offline(sim, stage, duration_s, on_events=lambda evs, now: scorer.add_all(evs))
    stats["wall_s"] = time.perf_counter() - t
    stats["scorer"] = scorer
    return scorer.scorecard(), stats


def _raw_arrival_card(rig: RigConfig, duration_s: float, hop_s: float = 0.5):
    """No dejittering: each chunk's offset is its last sample's stamp minus its arrival time."""
    sim = Simulator(rig)
    scorer = Scorer(sim.truth)
    last: dict[str, float] = {}
    for c in sim.chunks(duration_s):
        if c.arrival_s - last.get(c.stream, -1e9) < hop_s:
            continue
        last[c.stream] = c.arrival_s
        t_end = c.t_dev_s + (c.n - 1) / c.meta.rate_hz
        scorer.add(
            {
                "event": "sync.offset",
                "stream": c.stream,
                "reference": "host",
                "t_s": c.arrival_s,
                "offset_s": t_end - c.arrival_s,
                "drift_ppm": 0.0,
                "method": "arrival",
                "settled": True,
                "confidence": 0.0,
            }
        )
    return scorer.scorecard()


def _floor_line(card, name: str):
    for f in card.floors:
        if f.name == name:
            return f
    return None


def _method_cell(v) -> str:
    p = v.get("p95_s")
    return f"{v.get('events', 0):>6}  {('-' if p is None else f'{p * 1e3:.3f}'):>7}"


def _print_floors(title: str, card) -> None:
    print(f"\n--- {title}")
    for f in card.floors:
        mark = "n/a " if f.ok is None else ("ok  " if f.ok else "FAIL")
        val = "-" if f.value is None else f"{f.value:.4g}"
        print(f"  [{mark}] {f.name:<42} {val:>10} {f.unit:<4} (limit {f.limit:g}) {f.detail}")


def _sensor_lines(scorer: Scorer, card) -> None:
    """Per sensor, over its settled events paired with its camera: how many were content-locked, how close, when
    the first was, and how many lie beyond the floor (the p95 floor allows 5 %)."""
    for sid, s in card.streams.items():
        if s.modality != "sensor" or not s.partner:
            continue
        obs = [o for o in scorer._relative(sid)[0] if o.settled]
        if not obs:
            continue
        err = np.array([abs(o.err_s) for o in obs])
        locked = np.array([o.method in ("content", "fused") for o in obs])
        t = np.array([o.t for o in obs])
        floor = scorer.floor_s(sid)
        lp95 = f"{np.percentile(err[locked], 95) * 1e3:.2f} ms" if locked.any() else "-"
        first = f"at {t[locked].min():.1f} s" if locked.any() else "never"
        over = int((err > floor).sum())
        print(
            f"{sid} vs {s.partner}: {len(obs)} settled events, {int(locked.sum())} content-locked (p95 {lp95}), first "
            f"content-locked settled event {first}; {over} ({100 * over / len(obs):.1f} %) beyond the {floor * 1e3:.2f} ms "
            f"floor"
        )


def _seen_lines(rig: RigConfig, card, bin_s: float = 4.0, until_s: float = 32.0) -> None:
    """Per sensor on an object, from the scene itself (not the engine): how many of its object's kicks its
    partner camera sees (in the frame, image velocity changing by >= 2 px/s) per `bin_s` seconds: the content
    an IMU<->video lock has to go on. The scorecard's p95 floor needs the lock within ~8 s of the start."""
    from warpsync.sim.scene import Scene
    from warpsync.sim.visibility import seen_kicks

    cams = {c.name: c for c in rig.cameras}
    scene = Scene(rig.scene, rig.seed)
    for imu in rig.imus:
        s = card.streams.get(imu.name)
        if s is None or s.partner not in cams:
            continue
        edges = np.arange(0.0, until_s + bin_s / 2, bin_s)
        kt, seen = seen_kicks(scene, cams[s.partner], imu.object, 0.0, until_s)
        cells = []
        for a, b in itertools.pairwise(edges):
            inside = (kt >= a) & (kt < b)
            cells.append(f"{int(seen[inside].sum())}/{int(inside.sum())}")
        print(
            f"{imu.name}: kicks of object {imu.object} seen by {s.partner} / made, per {bin_s:g} s from 0 to "
            f"{until_s:g} s: {' '.join(cells)}"
        )


def _overrides(items: list[str], cls: type, flag: str) -> dict:
    """``KEY=VALUE`` strings to fields of the config dataclass `cls` (`warpsync.config.parse_overrides`)."""
    try:
        return parse_overrides(items, cls, flag)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def scorecard(args, rig: RigConfig) -> None:
    print(
        f"=== 1. scorecard: rig {rig.name!r}, seed {rig.seed}, {args.duration:g} s, EngineStage fed directly (offline replay)"
    )
    cfg = EngineConfig(
        content=dataclasses.replace(ContentConfig(), **args.content_overrides),
        features=dataclasses.replace(FeatureConfig(), **args.feature_overrides),
    )
    if args.content_overrides:
        print(f"[engine.content] overrides: {args.content_overrides}")
    if args.feature_overrides:
        print(f"[engine.features] overrides: {args.feature_overrides}")
    card, stats = _engine_card(rig, cfg, args.duration)
    print(
        f"engine compute {stats['compute_s']:.1f} s for {stats['simulated_s']:.1f} s of signal "
        f"(real-time factor {stats['realtime_factor']:.3f}, {len(rig.cameras)} cameras, "
        f"{len(rig.mics)} room mics, {len(rig.imus)} IMUs)"
    )
    print(card.format())
    _sensor_lines(stats["scorer"], card)
    _seen_lines(rig, card)
    args._card = card
    if "baselines" in args.skip:
        return
    print("\n=== 2. baselines in the same run (same chunks, same scorer)")
    clock_card, _ = _engine_card(rig, EngineConfig(content=ContentConfig(enabled=False)), args.duration)
    raw_card = _raw_arrival_card(rig, args.duration)
    _print_floors("timestamps only (engine with content sync off: LSL-style clock sync)", clock_card)
    _print_floors("raw arrival times (no dejittering)", raw_card)
    if rig.imus:
        sum_card, _ = _engine_card(rig, EngineConfig(content=ContentConfig(cell_weighting=False)), args.duration)
        print("\n--- sensors vs their camera: per-cell weighting (warpsync) vs the summed kinetic envelope")
        print("  stream        method   cells: events  p95_ms   summed: events  p95_ms")
        for sid, s in card.streams.items():
            if s.modality != "sensor":
                continue
            o = sum_card.streams.get(sid)
            for m in sorted(set(s.by_method) | set(o.by_method if o else {})):
                a = _method_cell(s.by_method.get(m, {}))
                b = _method_cell(o.by_method.get(m, {}) if o else {})
                print(f"  {sid:<12}  {m:<7}  {a}   {b}")
    print("\nratios (p95 |error| vs partner; warpsync / baseline, lower is better):")
    for sid, s in card.streams.items():
        if not s.partner:
            continue
        row = [f"  {sid:<12}"]
        for label, other in (("clock-only", clock_card), ("raw-arrival", raw_card)):
            o = other.streams.get(sid)
            if s.p95_s is not None and o is not None and o.p95_s:
                row.append(f"{label}: {s.p95_s * 1e3:.3f} / {o.p95_s * 1e3:.3f} ms = {s.p95_s / o.p95_s:.3f}")
            else:
                row.append(f"{label}: n/a")
        print("   ".join(row))


def fallback(args, rig: RigConfig) -> None:
    dur = min(args.duration, 100.0)
    scene = dataclasses.replace(rig.scene, silence=((40.0, 55.0),), still=((65.0, 80.0),))
    frig = dataclasses.replace(rig, scene=scene, name=f"{rig.name}-fallback")
    print(f"\n=== 3. fallback: {rig.name!r} with silence [40, 55) s and no motion [65, 80) s, {dur:g} s")
    card, _ = _engine_card(frig, EngineConfig(), dur)
    print("stream        interval  events  methods                        mean confidence  p95 |err| vs partner")
    for sid, s in card.streams.items():
        for kind in ("active", "silence", "still"):
            v = s.fallback.get(kind)
            if not v or not v["events"]:
                continue
            methods = " ".join(f"{m}:{c}" for m, c in sorted(v["methods"].items()))
            conf = "-" if v["mean_confidence"] is None else f"{v['mean_confidence']:.2f}"
            p95 = "-" if v["p95_s"] is None else f"{v['p95_s'] * 1e3:.3f} ms"
            print(f"  {sid:<12} {kind:<8} {v['events']:>7}  {methods:<30} {conf:>15}  {p95:>12}")


def capacity_rig(seed: int = 7) -> RigConfig:
    r = np.random.default_rng(seed)

    def clock():
        return ClockConfig(offset_s=float(r.uniform(-30, 30)), drift_ppm=float(r.uniform(-200, 200)))

    net = NetworkConfig()
    cams = tuple(
        CameraConfig(
            name=f"cam{i:02d}",
            fps=60.0,
            azimuth_deg=360.0 * i / 16,
            mic=False,
            latency_s=float(r.uniform(0, 0.15)),
            clock=clock(),
            network=net,
        )
        for i in range(16)
    )
    mics = tuple(
        MicConfig(
            name=f"mic{i}",
            rate_hz=48000.0,
            chunk_samples=960,
            latency_s=float(r.uniform(0, 0.15)),
            clock=clock(),
            network=net,
        )
        for i in range(4)
    )
    imus = tuple(
        ImuConfig(
            name=f"imu{i}",
            rate_hz=1000.0,
            chunk_samples=20,
            object=i % 3,
            latency_s=float(r.uniform(0, 0.15)),
            clock=clock(),
            network=net,
        )
        for i in range(8)
    )
    return RigConfig(
        name="capacity", seed=seed, duration_s=60.0, scene=SceneConfig(), cameras=cams, mics=mics, imus=imus
    )


def capacity(args) -> None:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        pinned = "not pinned (no sched_setaffinity)"
    rig = capacity_rig()
    dur = args.capacity_s
    print(
        f"\n=== 4. capacity: 16 video @ 60 fps (24x32 frames) + 4 audio @ 48 kHz + 8 IMU @ 1 kHz, {dur:g} s, "
        f"one core ({pinned})"
    )
    t = time.perf_counter()
    sim = Simulator(rig)
    chunks = list(sim.chunks(dur))
    gen_s = time.perf_counter() - t
    nbytes = sum(c.samples.nbytes for c in chunks)
    print(f"generated {len(chunks)} chunks ({nbytes / 1e6:.1f} MB) in {gen_s:.1f} s (not timed below)")
    # the same [engine.content] / [engine.features] overrides as the scorecard
    cfg = EngineConfig(
        content=dataclasses.replace(ContentConfig(), **args.content_overrides),
        features=dataclasses.replace(FeatureConfig(), **args.feature_overrides),
    )
    if args.content_overrides or args.feature_overrides:
        print(f"overrides: content {args.content_overrides}, features {args.feature_overrides}")
    # warm-up: compile every kernel on a separate engine with the first 3 s
    warm = EngineStage(cfg, CollectorRegistry())
    _feed(warm, [c for c in chunks if c.arrival_s < 3.0])
    stage = EngineStage(cfg, CollectorRegistry())
    t, c0 = time.perf_counter(), time.process_time()
    n_events = _feed(stage, chunks)
    wall, cpu = time.perf_counter() - t, time.process_time() - c0
    sig = max(c.arrival_s for c in chunks) - sim.t0_host_s
    print(
        f"engine: {cpu:.2f} s of CPU ({wall:.2f} s wall) for {sig:.2f} s of signal -> real-time factor "
        f"{cpu / sig:.3f} by CPU time, {wall / sig:.3f} by wall time ({n_events} events); one dedicated core "
        f"{'keeps up' if cpu / sig < 1 else 'does NOT keep up'} (the wall figure includes other processes "
        f"sharing this core: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


def _feed(stage, chunks) -> int:
    opened: set[str] = set()
    n = 0
    next_tick = None
    for c in chunks:
        if next_tick is None:
            next_tick = c.arrival_s
        while next_tick <= c.arrival_s:
            n += len(stage.tick(next_tick))
            next_tick += 0.05
        if c.stream not in opened or c.restarted:
            n += len(stage.open(c.meta, c.arrival_s))
            opened.add(c.stream)
        n += len(stage.samples(c.meta, Samples(c.stream, c.seq, c.t_dev_s, c.arrival_s, c.samples)))
    return n


def feature_lags(args, rig: RigConfig) -> None:
    from warpsync.engine.content import gaussian_smooth, measure_lag, resample
    from warpsync.features.base import envelope_extractor
    from warpsync.features.impact import impact_extractor

    cams = sorted(rig.cameras, key=lambda c: -c.fps)
    if not cams or not rig.mics:
        print("\n=== 6. feature lags: the rig needs a camera and a room microphone")
        return
    cam, mic = cams[0].name, rig.mics[0].name
    imu = rig.imus[0].name if rig.imus else None
    dur = min(args.duration, 60.0)
    sim = Simulator(rig)
    truth = sim.truth
    feats = FeatureConfig()
    ext, parts = {}, {}
    for ch in sim.chunks(dur):
        if ch.stream not in (cam, mic, imu):
            continue
        m = ch.meta
        if ch.stream not in ext:
            # consecutive-frame motion energy: what the engine compares with audio
            ext[ch.stream] = envelope_extractor(
                m.modality, m.rate_hz, tuple(m.shape), units=m.units, kinetic=m.modality != "audio"
            )
            if m.modality == "video":  # the cells the engine weighs against a sensor (B-frame motion energy)
                ext[(ch.stream, "cells")] = envelope_extractor(
                    m.modality,
                    m.rate_hz,
                    tuple(m.shape),
                    units=m.units,
                    kinetic=True,
                    cells=True,
                    motion_baseline_frames=feats.motion_baseline_frames,
                    kinetic_from=feats.motion_kinetic,
                )
            else:
                ext[(ch.stream, "impacts")] = impact_extractor(m.modality, m.rate_hz)
        for key in (ch.stream, (ch.stream, "cells"), (ch.stream, "impacts")):
            if key in ext:
                fr = ext[key].push(ch.t_dev_s, ch.samples)
                if len(fr):
                    parts.setdefault(key, []).append((fr.times_s, fr.values))

    def series(key):
        name = key if isinstance(key, str) else key[0]
        t = np.concatenate([a for a, _ in parts[key]])
        st = truth.streams[name]
        return np.array([st.scene_time(x) for x in t]), np.concatenate([b for _, b in parts[key]])

    g, w_s, max_lag = 0.001, 8.0, 100
    grid = np.arange(5.0, dur - 1.0, g)
    t_a, v_a = series(mic)
    audio = gaussian_smooth(resample(t_a, v_a, grid, 0.01), 4)

    def row(label, t, v, gap_s):
        x = gaussian_smooth(resample(t, v, grid, gap_s), 4)
        lags, corrs = [], []
        n = int(w_s / g)
        for t0 in np.arange(grid[0] + 0.2, grid[-1] - w_s - 0.2, 2.0):
            i0 = int((t0 - grid[0]) / g)
            m = measure_lag(audio[i0 : i0 + n], x[i0 - max_lag : i0 + n + max_lag], g, max_lag * g, min_corr=0.0)
            lags.append(m.lag_s * 1e3)
            corrs.append(m.corr)
        lags = np.array(lags)
        q1, q3 = np.percentile(lags, [25, 75])
        print(
            f"  {label:<34} {len(lags):>3} windows  corr {np.median(corrs):.2f}  lag median {np.median(lags):6.1f} ms "
            f"(IQR {q1:6.1f} .. {q3:6.1f})  within a quarter frame: {np.mean(np.abs(lags) <= 250 / cams[0].fps):.0%}"
        )

    fps = cams[0].fps
    print(
        f"\n=== 6. feature lags with perfect clocks: {cam} ({fps:g} fps) and {imu or 'no IMU'} vs {mic}'s onsets, "
        f"8 s windows every 2 s, {dur:g} s (lag > 0: the feature peaks after the sound starts)"
    )
    t_v, v_v = series(cam)
    act, kin = v_v[:, 0], v_v[:, 1]
    dec = kin - act  # rectified decrease of motion energy: motion stopping
    dm = act - dec  # m_k - m_{k-1}
    rise = np.maximum(np.diff(np.abs(dm), prepend=0.0), 0.0)  # |dm| starting to rise, between its two entries
    row("activity (motion energy rising)", t_v, act, 2.5 / fps)
    row("decrease (motion energy falling)", t_v, dec, 2.5 / fps)
    row("kinetic |dm|", t_v, kin, 2.5 / fps)
    row("onset: |dm| starting to rise", t_v - 0.5 / fps, rise, 2.5 / fps)
    if imu:
        t_i, v_i = series(imu)
        row(f"{imu} activity (jolt rising)", t_i, v_i[:, 0], 0.01)
        _cell_lags(
            rig,
            cams[0],
            series((cam, "cells")),
            series((imu, "impacts")),
            t_i,
            v_i[:, 1],
            series((mic, "impacts")),
            dur,
            feats,
        )


def _cell_lags(rig, camera, cells, imu_impacts, t_imu, imu_kinetic, mic_impacts, dur, feats) -> None:
    """The camera's cells against a sensor as the engine weighs them (`measure_lag_cells`, 8 s windows every
    second from 8.5 s), with perfect clocks: the IMU's kinetic envelope (the engine's camera<->IMU pair), and
    the room microphone's impact envelope through a response that turns contact starts into what a camera's
    kinetic envelope shows (every object's, where the IMU feels one): the scene's own velocity change
    (|acceleration| of a raised-cosine change of `kick_s`, known only to the simulator), the response the engine
    learns (`content.contact_response`: the IMU's kinetic envelope regressed on the room's impacts, a FIR over
    -30..+90 ms, here over the whole run), and the same regressed on the IMU's own impacts instead."""
    from warpsync.engine.content import (
        frame_smooth,
        gaussian_smooth,
        gaussian_smooth_columns,
        measure_lag_cells,
        resample,
    )
    from warpsync.engine.response import ContactResponse, through_response

    g, fps = 0.001, camera.fps
    grid = np.arange(0.0, dur, g)
    k = max(1, int(0.25 / (fps * g)))
    M = k * int(np.ceil(0.2 / (k * g)))
    n = int(8.0 / g)
    t_c, v_c = cells

    def on_grid(t, v):
        return np.nan_to_num(resample(t, v if v.ndim == 1 else v[:, 0], grid, 0.01))

    imu_i, imu_k, mic_i = on_grid(*imu_impacts), on_grid(t_imu, imu_kinetic), on_grid(*mic_impacts)

    def through(x, lo, hi, r):
        # the whole run through a response, zeros before and after it (what `ContactResponse.apply` computes)
        return through_response(np.concatenate([np.zeros(hi), x, np.zeros(-lo)]), r, lo, hi)

    lo, hi = -30, 90
    n_out = len(grid) + lo - hi
    # what the engine learns (`ContactResponse`): the IMU's kinetic envelope against the microphone's impacts;
    # and, for comparison, against the IMU's own impacts (its jerk also rises within a contact's second half)
    response = {}
    for name, x in (("room", mic_i), ("own", imu_i)):
        r = ContactResponse(g, (lo * g, hi * g))
        r.add(x[: n_out + hi - lo], imu_k[hi : hi + n_out])
        response[name] = r.response
    ks = round(rig.scene.kick_s / g)
    shape = np.sin(np.pi * np.arange(ks + 1) / ks)
    q = 250.0 / fps
    print(f"  {camera.name}'s cells (the engine's per-cell weighting, 8 s windows every 1 s from 8.5 s) against:")
    for label, x in (
        ("imu1 kinetic (the engine's pair)", imu_k),
        ("room impacts through the kick's shape", through(mic_i, 0, ks, shape)),
        ("room impacts through the IMU's response", through(mic_i, lo, hi, response["room"])),
        ("  the same learned on the IMU's impacts", through(mic_i, lo, hi, response["own"])),
    ):
        found = []
        for t_end in np.arange(8.5, dur - 0.3, 1.0):
            i1 = int(t_end / g)
            i0 = i1 - n
            if i0 - M < 0 or i1 + M > len(grid):
                continue
            ref = gaussian_smooth_columns(resample(t_c, v_c[:, 2:], grid[i0:i1:k], 2.5 / fps), feats.smooth_s / (k * g))
            cand = gaussian_smooth(
                frame_smooth(x[i0 - M : i1 + M].copy(), 1.0 / (fps * g), feats.motion_baseline_frames),
                feats.smooth_s / g,
            )
            m, _ = measure_lag_cells(ref, cand[::k], k * g, M * g, max_lobe_s=3.0 / fps)
            found.append((m.informative, m.lag_s * 1e3))
        lag_ms = np.array([lag for inf, lag in found if inf])
        if len(lag_ms) == 0:
            print(f"    {label:<40} no informative window of {len(found)}")
            continue
        q1, q3 = np.percentile(lag_ms, [25, 75])
        print(
            f"    {label:<40} informative {len(lag_ms):>2} of {len(found)}  lag median {np.median(lag_ms):6.1f} ms "
            f"(IQR {q1:6.1f} .. {q3:6.1f})  within a quarter frame: {np.mean(np.abs(lag_ms) <= q):.0%}, "
            f"three: {np.mean(np.abs(lag_ms) <= 3 * q):.0%}"
        )


def live(args, rig: RigConfig) -> None:
    import tempfile
    import threading

    from warpsync.config import Config, ControlConfig, MetricsConfig
    from warpsync.server import Service
    from warpsync.sim.run import EventCollector, SendLog, attach_latency, publish_rig

    dur = min(args.duration, args.live_s)
    d = tempfile.mkdtemp(prefix="wsbench", dir="/tmp")
    base = Config()
    cfg = dataclasses.replace(
        base,
        ingest=dataclasses.replace(
            base.ingest, endpoint=f"ipc://{d}/in", **({"worker_mode": args.worker_mode} if args.worker_mode else {})
        ),
        publish=dataclasses.replace(base.publish, endpoint=f"ipc://{d}/pub"),
        control=ControlConfig(endpoint=f"ipc://{d}/ctl"),
        metrics=MetricsConfig(port=0),
    )
    print(
        f"\n=== 5. live: rig {rig.name!r} through a running service (in-process, ipc, ingest workers "
        f"{cfg.ingest.worker_mode}), {dur:g} s in real time"
    )
    svc = Service(cfg)
    th = threading.Thread(target=svc.run, name="service", daemon=True)
    th.start()
    if not svc.ready.wait(60):
        print("service did not start")
        return
    ep = svc.endpoints
    try:
        log = SendLog()
        coll = EventCollector(ep.publish, send_log=log).start()
        res = publish_rig(rig, ep.control, dur, realtime=True, send_log=log)
        events = coll.stop(linger_s=1.0)
    finally:
        svc.request_stop()
        th.join(30)
    attach_latency(events, res.truth, log)
    offsets = [e for e in events if e.get("event") == "sync.offset"]
    if not offsets:
        print(f"no sync.offset events received ({len(events)} events)")
        return
    print(Scorer(res.truth).add_all(events).scorecard().format())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default=None, help="rig TOML (default configs/rigs/default.toml)")
    ap.add_argument("--duration", type=float, default=None, help="seconds of signal (default: the rig's)")
    ap.add_argument("--capacity-s", type=float, default=20.0, help="seconds of signal for the capacity check")
    ap.add_argument("--live", action="store_true", help="also run the rig through a live service")
    ap.add_argument("--live-s", type=float, default=40.0, help="seconds of the live run (real time)")
    ap.add_argument("--worker-mode", choices=("inline", "process"), default=None, help="ingest workers of the live run")
    ap.add_argument("--feature-lags", action="store_true", help="also measure feature lags with perfect clocks")
    ap.add_argument("--skip", default="", help="comma-separated: scorecard,baselines,fallback,capacity")
    ap.add_argument("--seed", type=int, default=None, help="the rig's seed (default: the rig file's)")
    ap.add_argument(
        "--content",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an [engine.content] setting for the scorecard, e.g. kinetic_window_s=4 (repeatable)",
    )
    ap.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an [engine.features] setting for the scorecard, e.g. motion_baseline_frames=1 (repeatable)",
    )
    args = ap.parse_args()
    args.skip = set(filter(None, args.skip.split(",")))
    rig = load_rig(args.rig)
    if args.seed is not None:
        rig = dataclasses.replace(rig, seed=args.seed)
    args.content_overrides = _overrides(args.content, ContentConfig, "--content")
    args.feature_overrides = _overrides(args.feature, FeatureConfig, "--feature")
    if args.duration is None:
        args.duration = rig.duration_s
    print(f"warpsync bench_engine: python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible")
    if "scorecard" not in args.skip:
        scorecard(args, rig)
    if "fallback" not in args.skip:
        fallback(args, rig)
    if args.feature_lags:
        feature_lags(args, rig)
    if args.live:
        live(args, rig)
    if "capacity" not in args.skip:
        capacity(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
