"""Where a camera's kinetic envelope puts each velocity change of the IMU's object, against the IMU's own.

Run: .venv/bin/python tools/engine/contact_timing.py [--seeds 1-8] [--duration 40] [--rig F] [--camera cam1]
[--by-corr]

For each seed it renders the rig's camera frames and the IMU's samples at scene times (no clocks, latencies or
network: only the features are compared), computes the kinetic envelopes the engine compares (`MotionEnvelope`
over `motion_baseline_frames`, its 16 cell columns combined with weights from how each correlates with the IMU's
kinetic envelope over the run, as `measure_lag_cells` weighs them per window; `SensorEnvelope`), and for every
kick of the IMU's object the camera sees (`warpsync.sim.visibility.seen_kicks`) the lag of the camera's envelope
against the IMU's over +-80 ms around the kick's middle (normalized cross-correlation, 0.5 ms steps, +-30 ms).
A launch (from rest) and a stop (back to rest) alternate. Both feature choices of `[engine.features]
motion_kinetic` are measured on the same frames: ``energy`` (each cell's motion energy) and ``flow`` (each cell's
motion vector). Prints, per seed, the median lag of launches and of stops and their gap; then the medians over
all seeds, and one kick's scatter over all of them (the robust standard deviation behind `content.event_sigma_s`).
With `--by-corr`, every kick of the IMU's object, seen or not, is measured on motion vectors within +-20 ms (as far
as the engine searches one event of a window) and counted by its peak's correlation: what an event the camera saw
and one it did not look like (`content.event_min_corr`). docs/engine-log.md, "Motion vectors instead of motion
energy" and "One event at a time", has the numbers it gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import pathlib
import sys

import numpy as np

from warpsync.engine.config import ContentConfig, FeatureConfig
from warpsync.engine.content import frame_smooth, gaussian_smooth
from warpsync.features.sensor import SensorEnvelope
from warpsync.features.video import KINETIC_SOURCES, MotionEnvelope
from warpsync.sim import Simulator, load_rig
from warpsync.sim.visibility import seen_kicks

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _seeds import parse_seeds

HALF_S = 0.08  # the stretch of envelope compared around each kick's middle
MAX_LAG_S = 0.03
EVENT_SEARCH_S = 0.02  # as far as the engine searches one event of a window around the window's lag
CORR_BANDS = (-1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
STEP_S = 0.0005


def _weighted(times: np.ndarray, cells: np.ndarray, ref_t: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The cell columns combined with non-negative weights: each column's correlation with the reference."""
    r = np.interp(times, ref_t, ref)
    w = np.array([max(0.0, np.corrcoef(c, r)[0, 1]) if c.std() > 0 else 0.0 for c in cells.T])
    return cells @ w


def _lag(
    t_a: np.ndarray, a: np.ndarray, t_b: np.ndarray, b: np.ndarray, mid: float, max_lag_s: float = MAX_LAG_S
) -> tuple[float, float]:
    """The lag (s) of envelope `a` against `b` around `mid` (positive where `a` peaks later), and the peak's
    correlation."""
    g = np.arange(-HALF_S, HALF_S, STEP_S)
    y = np.interp(mid + g, t_b, b)
    y = y - y.mean()
    best, best_l = -np.inf, 0.0
    for lag in np.arange(-max_lag_s, max_lag_s + STEP_S / 2, STEP_S):
        x = np.interp(mid + g + lag, t_a, a)
        x = x - x.mean()
        c = float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-300))
        if c > best:
            best, best_l = c, float(lag)
    return best_l, best


def contact_lags(rig, camera: str, duration_s: float) -> dict[str, np.ndarray]:
    """Per feature choice, ``(k, 2)``: (1 for a launch, 0 for a stop; lag in seconds) of every seen kick."""
    out = {}
    for source, (_, seen, launch, lag, _) in _kicks(rig, camera, duration_s, MAX_LAG_S).items():
        out[source] = np.column_stack([launch[seen], lag[seen]]) if seen.any() else np.zeros((0, 2))
    return out


def kick_correlations(rig, camera: str, duration_s: float) -> np.ndarray:
    """``(k, 3)`` for every kick of the IMU's object, seen or not, on motion vectors: (1 if the camera sees it,
    its lag in seconds within +-`EVENT_SEARCH_S`, the peak's correlation): what one event of an engine window
    looks like when the camera saw it and when it did not (`content.event_min_corr`)."""
    _, seen, _, lag, corr = _kicks(rig, camera, duration_s, EVENT_SEARCH_S, engine_shapes=True)["flow"]
    return np.column_stack([seen, lag, corr])


def _kicks(rig, camera: str, duration_s: float, max_lag_s: float, engine_shapes: bool = False) -> dict[str, tuple]:
    """Per feature choice: every kick of the IMU's object away from the ends (times, seen, launch, lag, corr).
    With `engine_shapes`, both envelopes as an engine window has them: on the content grid, the IMU's through the
    camera's frame weighting (`frame_smooth`), both Gaussian-smoothed by `features.smooth_s`."""
    sim = Simulator(rig)
    scene = sim.scene
    streams = {s.meta.stream: s for s in sim._streams}
    cam_cfg = next(c for c in rig.cameras if c.name == camera)
    imu_cfg = rig.imus[0]
    rng = np.random.default_rng([rig.seed, 0xC0])
    s_v = np.arange(0.0, duration_s, 1.0 / cam_cfg.fps)
    frames = np.concatenate([streams[camera].render(s_v[i : i + 240], rng) for i in range(0, len(s_v), 240)])
    if frames.ndim != 3:
        raise SystemExit(f"{camera} sends motion vectors, not frames: its kinetic envelope has no choice to make")
    s_i = np.arange(0.0, duration_s, 1.0 / imu_cfg.rate_hz)
    imu = SensorEnvelope(imu_cfg.rate_hz, 0.0, kinetic=True).push(streams[imu_cfg.name].render(s_i, rng))
    t_i, k_i = imu.times_s, imu.values[:, 1]
    kt, seen = seen_kicks(scene, cam_cfg, imu_cfg.object, 0.0, duration_s)  # every kick from the start
    launch = np.arange(kt.size) % 2 == 0  # objects start at rest: launches and stops alternate
    keep = (kt > 0.5) & (kt < duration_s - 0.5)
    mids = kt[keep] + scene.cfg.kick_s / 2
    baseline = FeatureConfig().motion_baseline_frames
    out = {}
    for source in KINETIC_SOURCES:
        env = MotionEnvelope(cam_cfg.fps, 0.0, cells=True, baseline_frames=baseline, kinetic_from=source).push(frames)
        t_v, v = env.times_s, _weighted(env.times_s, env.values[:, 2:], t_i, k_i)
        t_s, k_s = t_i, k_i
        if engine_shapes:
            g = ContentConfig().grid_s
            sm = FeatureConfig().smooth_s / g
            t_s = t_v = np.arange(0.0, duration_s, g)
            k_s = gaussian_smooth(frame_smooth(np.interp(t_s, t_i, k_i), 1.0 / (cam_cfg.fps * g), baseline), sm)
            v = gaussian_smooth(np.interp(t_v, env.times_s, v), sm)
        lc = np.array([_lag(t_v, v, t_s, k_s, m, max_lag_s) for m in mids]).reshape(-1, 2)
        out[source] = (kt[keep], seen[keep], launch[keep].astype(float), lc[:, 0], lc[:, 1])
    return out


def _by_corr(base, a) -> None:
    """Every kick, seen or not, by the correlation of its own peak within +-20 ms: how many, and how far off."""
    rows = np.concatenate(
        [kick_correlations(dataclasses.replace(base, seed=seed), a.camera, a.duration) for seed in parse_seeds(a.seeds)]
    )
    print(f"{a.camera} against {base.imus[0].name}, motion vectors: each kick's own peak within +-20 ms")
    print("correlation    seen: kicks  median |lag|  beyond 8 ms    not seen: kicks  median |lag|  beyond 8 ms")
    for lo, hi in itertools.pairwise(CORR_BANDS):
        cols = []
        for s in (1.0, 0.0):
            x = 1e3 * np.abs(rows[(rows[:, 0] == s) & (rows[:, 2] >= lo) & (rows[:, 2] < hi), 1])
            med = f"{np.median(x):9.1f} ms" if x.size else f"{'-':>12}"
            share = f"{np.mean(x > 8):11.2f}" if x.size else f"{'-':>11}"
            cols.append(f"{x.size:>11d}  {med}  {share}")
        print(f"[{lo:+.1f}, {min(hi, 1.0):.1f})  " + "    ".join(cols))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-8")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--rig", default=None)
    ap.add_argument("--camera", default="cam1")
    ap.add_argument(
        "--by-corr", action="store_true", help="every kick, seen or not, by its peak's correlation (motion vectors)"
    )
    a = ap.parse_args(argv)
    base = load_rig(a.rig)
    if a.by_corr:
        _by_corr(base, a)
        return
    per: dict[str, list[tuple[float, float]]] = {s: [] for s in KINETIC_SOURCES}
    every: dict[str, list[np.ndarray]] = {s: [] for s in KINETIC_SOURCES}
    print(f"{a.camera} against {base.imus[0].name}: lag of each seen kick (ms, + = the camera's envelope later)")
    print("seed  " + "  ".join(f"{s:>6} launch   stop    gap" for s in KINETIC_SOURCES))
    for seed in parse_seeds(a.seeds):
        lags = contact_lags(dataclasses.replace(base, seed=seed), a.camera, a.duration)
        cols = []
        for s in KINETIC_SOURCES:
            x = lags[s]
            every[s].append(x[:, 1])
            lm = 1e3 * np.median(x[x[:, 0] == 1, 1]) if (x[:, 0] == 1).any() else np.nan
            sm = 1e3 * np.median(x[x[:, 0] == 0, 1]) if (x[:, 0] == 0).any() else np.nan
            per[s].append((lm, sm))
            cols.append(f"{'':>6} {lm:+6.1f} {sm:+6.1f} {lm - sm:+6.1f}")
        print(f"{seed:>4}  " + "  ".join(cols))
    for s in KINETIC_SOURCES:
        m = np.array(per[s])
        print(
            f"{s}: over {len(m)} seeds, median launch {np.nanmedian(m[:, 0]):+.1f} ms, stop {np.nanmedian(m[:, 1]):+.1f} ms, "
            f"gap {np.nanmedian(m[:, 0] - m[:, 1]):+.1f} ms (seed gaps {np.nanmin(m[:, 0] - m[:, 1]):+.1f} to "
            f"{np.nanmax(m[:, 0] - m[:, 1]):+.1f})"
        )
    for s in KINETIC_SOURCES:
        # one kick's scatter: what a window's events are weighed with (`content.event_sigma_s`, `engine.events`)
        x = 1e3 * np.concatenate(every[s])
        if x.size:
            sd = 1.4826 * float(np.median(np.abs(x - np.median(x))))
            print(
                f"{s}: {x.size} kicks, median {np.median(x):+.2f} ms, robust sd {sd:.2f} ms, "
                f"beyond 8 ms {np.mean(np.abs(x) > 8):.3f}, 90th percentile of |lag| {np.percentile(np.abs(x), 90):.1f} ms"
            )


if __name__ == "__main__":
    main()
