"""Offline alignment of whole recordings with the same engine that runs live (`warpsync align`).

Each recording is an array with its rate and modality and, optionally, the time of its first sample on a
clock shared by all recordings (``t0_s``; e.g. from file metadata). Without ``t0_s`` a coarse global search
(cross-correlation of the activity envelopes over the whole overlap, up to `content.coarse_max_offset_s`)
gives the prior. Then the recordings are replayed, chunk by chunk in time order, through `SyncEngine`: the
prior stands in for the clock model (arrival = device time + prior, no jitter), and content sync refines it
every hop exactly as it does live. The result per recording: offset and drift against the reference,
uncertainty, confidence, the method behind them, and the fine warp (the mapping at every hop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from warpsync_client.protocol import StreamMeta

from ..errors import AlignmentError
from ..features.base import Frames, envelope_extractor
from .config import EngineConfig, SessionConfig
from .content import coarse_offset
from .session import Estimate, SyncEngine

SESSION = "offline"


@dataclass(frozen=True)
class Recording:
    """One recording: ``data`` is ``(n, *shape)`` samples at ``rate_hz``."""

    name: str
    data: np.ndarray
    rate_hz: float
    modality: Literal["audio", "video", "sensor"]
    t0_s: float | None = None
    """Time of the first sample on a clock shared by the recordings, seconds; None when unknown."""


@dataclass(frozen=True)
class OfflineResult:
    stream: str
    reference: str
    t_s: float
    """Reference time `offset_s` refers to (the end of the data), seconds."""
    offset_s: float
    """``t_local - t_ref`` at reference time `t_s` (a sample at local time t is at reference time
    ``t - offset_s``; local time starts at ``t0_s``, or 0 without it), seconds. At another reference time T
    it is ``offset_s + drift_ppm * 1e-6 * (T - t_s)``."""
    drift_ppm: float
    """``(d t_local / d t_ref - 1) * 1e6``."""
    uncertainty_s: float
    confidence: float
    method: str
    """``reference``, ``content`` (content sync refined the prior), or ``timestamps``/``coarse`` (content was
    uninformative: the prior from ``t0_s`` or from the coarse search stands)."""
    prior: str
    """Where the prior came from: ``timestamps`` or ``coarse`` (or ``none`` for the reference)."""
    windows: int
    informative: int
    """Content windows in total and those that were informative."""
    warp: np.ndarray
    """``(k, 2)``: (local time, reference time) of the mapping at every hop, seconds: the fine warp."""


def _activity(rec: Recording, cfg: EngineConfig) -> Frames:
    ext = envelope_extractor(
        rec.modality,
        rec.rate_hz,
        tuple(rec.data.shape[1:]),
        audio_hop_ms=cfg.features.audio_hop_ms,
        sensor_highpass_hz=min(cfg.features.sensor_highpass_hz, 0.45 * rec.rate_hz),
    )
    return ext.push(0.0, rec.data)


def _validate(recs: Sequence[Recording]) -> None:
    if len(recs) < 2:
        raise AlignmentError("align needs at least two recordings (one of them the reference)")
    names = [r.name for r in recs]
    if len(set(names)) != len(names):
        raise AlignmentError(f"recording names must be unique, got {names}")
    for r in recs:
        if r.modality not in ("audio", "video", "sensor"):
            raise AlignmentError(f"{r.name}: modality {r.modality!r} cannot be aligned (audio, video or sensor)")
        if not (np.isfinite(r.rate_hz) and r.rate_hz > 0):
            raise AlignmentError(f"{r.name}: rate must be a positive number of Hz, got {r.rate_hz}")
        if r.data.ndim < 1 or len(r.data) < 2:
            raise AlignmentError(f"{r.name}: needs at least two samples, got shape {r.data.shape}")
        if not np.all(np.isfinite(r.data)):
            raise AlignmentError(f"{r.name}: contains NaN or Inf samples; clean or interpolate them first")


def align_recordings(
    recordings: Sequence[Recording],
    *,
    reference: str | None = None,
    cfg: EngineConfig | None = None,
    chunk_s: float = 0.1,
    progress: Callable[[float], None] | None = None,
) -> dict[str, OfflineResult]:
    """Align every recording to `reference` (default: the first). Returns results by recording name."""
    _validate(recordings)
    cfg = cfg or EngineConfig()
    ref_name = reference or recordings[0].name
    by_name = {r.name: r for r in recordings}
    if ref_name not in by_name:
        raise AlignmentError(f"reference {ref_name!r} is not one of the recordings ({', '.join(by_name)})")
    if not chunk_s > 0:
        raise AlignmentError(f"chunk_s must be positive, got {chunk_s}")
    ref = by_name[ref_name]
    ref_t0 = ref.t0_s if ref.t0_s is not None else 0.0
    # priors: local time of each recording starts at t0_s (or 0); prior = t_ref - t_local
    priors: dict[str, tuple[float, str]] = {ref_name: (0.0, "none")}
    ref_act = None
    for r in recordings:
        if r.name == ref_name:
            continue
        if r.t0_s is not None and ref.t0_s is not None:
            priors[r.name] = (0.0, "timestamps")  # same clock: t_ref = t_local
            continue
        if ref_act is None:
            ref_act = _activity(ref, cfg)
        act = _activity(r, cfg)
        m = coarse_offset(
            ref_act.times_s,
            ref_act.values,
            act.times_s,
            act.values,
            grid_s=cfg.content.coarse_grid_s,
            max_offset_s=cfg.content.coarse_max_offset_s,
        )
        if not m.informative:
            raise AlignmentError(
                f"{r.name}: no timestamps and the coarse search found no clear match with "
                f"{ref_name} (peak {m.corr:.2f}, prominence {m.prominence:.2f}); give its start "
                "time or a recording with more shared events"
            )
        # both envelopes start at 0: t_ref - ref_t0 = (t_local - r_t0) + lag
        priors[r.name] = (m.lag_s + ref_t0 - (r.t0_s if r.t0_s is not None else 0.0), "coarse")
    sessions = {SESSION: SessionConfig(reference=ref_name)}
    # no clock model offline: the whole drift is content's to find
    content = replace(cfg.content, rate_prior_ppm=max(cfg.content.rate_prior_ppm, 500.0))
    engine = SyncEngine(replace(cfg, sessions=sessions, default_session=SESSION, content=content), record=True)
    metas = {}
    for r in recordings:
        meta = StreamMeta(
            r.name,
            r.modality,
            float(r.rate_hz),
            tuple(int(x) for x in r.data.shape[1:]),
            "f8",
            clock=r.name,
            session=SESSION,
        )
        metas[r.name] = meta
        engine.open(meta, 0.0)
    # replay in order of reference time
    starts = {r.name: (r.t0_s if r.t0_s is not None else 0.0) for r in recordings}
    plan = []
    for r in recordings:
        n = len(r.data)
        step = max(1, round(chunk_s * r.rate_hz))
        for i in range(0, n, step):
            j = min(n, i + step)
            t_dev = starts[r.name] + i / r.rate_hz
            t_end = starts[r.name] + j / r.rate_hz
            plan.append((t_end + priors[r.name][0], r.name, i, j, t_dev))
    plan.sort()
    warps: dict[str, list[tuple[float, float]]] = {r.name: [] for r in recordings}
    counts = {r.name: [0, 0] for r in recordings}
    last: dict[str, Estimate] = {}
    for k, (arr, name, i, j, t_dev) in enumerate(plan):
        r = by_name[name]
        engine.add(name, t_dev, arr, r.data[i:j])
        if engine.due(SESSION, arr):
            for e in engine.hop(SESSION, arr):
                last[e.stream] = e
                warps[e.stream].append((e.t_local_s, e.t_s))
                if e.stream != ref_name:
                    counts[e.stream][0] += 1
                    counts[e.stream][1] += e.content_reason == ""
        if progress is not None and k % 64 == 0:
            progress(k / len(plan))
    for st in engine.streams.values():
        st.next_hop_host_s = -math.inf  # a last hop for every stream, on all the data
    for e in engine.hop(SESSION, math.inf, max_streams=None):
        last[e.stream] = e
        warps[e.stream].append((e.t_local_s, e.t_s))
    if progress is not None:
        progress(1.0)
    out: dict[str, OfflineResult] = {}
    c = cfg.content
    for r in recordings:
        e = last.get(r.name)
        if e is None:
            raise AlignmentError(f"{r.name}: too short to align (no estimate after {len(r.data)} samples)")
        prior, prior_kind = priors[r.name]
        st = engine.streams[r.name]
        fit = robust_line(st.measurements) if r.name != ref_name else None
        n_windows = counts[r.name][0]
        informative = len(st.measurements)
        if r.name == ref_name:
            out[r.name] = OfflineResult(
                r.name,
                ref_name,
                e.t_s,
                0.0,
                0.0,
                0.0,
                1.0,
                "reference",
                "none",
                0,
                0,
                np.array(warps[r.name]).reshape(-1, 2),
            )
            continue
        if fit is None:
            # content never informative: the prior stands (the online estimate is the same mapping)
            out[r.name] = OfflineResult(
                r.name,
                ref_name,
                e.t_s,
                e.offset_s,
                e.drift_ppm,
                e.uncertainty_s,
                e.confidence,
                prior_kind,
                prior_kind,
                n_windows,
                informative,
                np.array(warps[r.name]).reshape(-1, 2),
            )
            continue
        a, b, sigma_a, inliers = fit
        T_end = e.t_s
        # t_ref = t_local + prior - d(T), d(T) = a + b T  ->  offset = t_local - t_ref = d(T) - prior
        d_end = a + b * T_end
        pts = np.array([(T - prior + z, T) for (T, z, _s), ok in zip(st.measurements, inliers) if ok])
        unc = math.hypot(sigma_a, 0.0)
        out[r.name] = OfflineResult(
            stream=r.name,
            reference=ref_name,
            t_s=float(T_end),
            offset_s=float(d_end - prior),
            drift_ppm=float((1.0 / (1.0 - b) - 1.0) * 1e6),
            uncertainty_s=float(unc),
            confidence=float(c.confidence_scale_s / (c.confidence_scale_s + unc) * float(np.mean(inliers))),
            method="content",
            prior=prior_kind,
            windows=n_windows,
            informative=informative,
            warp=pts,
        )
    return out


def robust_line(meas: list[tuple[float, float, float]], min_points: int = 3):
    """Robust fit ``z = a + b T`` to (T, z, sigma) measurements: Theil-Sen start, then weighted least squares
    on the points within 5 robust sigmas (at least 0.2 ms). Returns (a, b, sigma of the fit at the last T,
    inlier mask) or None with fewer than `min_points` inliers."""
    if len(meas) < min_points:
        return None
    T = np.array([m[0] for m in meas])
    z = np.array([m[1] for m in meas])
    s = np.array([m[2] for m in meas])
    i, j = np.triu_indices(len(T), 1)
    dT = T[j] - T[i]
    ok = dT > 1e-9
    b = float(np.median((z[j] - z[i])[ok] / dT[ok])) if ok.any() else 0.0
    a = float(np.median(z - b * T))
    for _ in range(3):
        res = z - (a + b * T)
        mad = 1.4826 * float(np.median(np.abs(res - np.median(res))))
        inl = np.abs(res) <= max(5.0 * mad, 2e-4)
        if inl.sum() < min_points:
            return None
        w = 1.0 / np.maximum(s[inl], 1e-6) ** 2
        A = np.stack([np.ones(inl.sum()), T[inl]], axis=1)
        AtW = A.T * w
        try:
            cov = np.linalg.inv(AtW @ A)
        except np.linalg.LinAlgError:
            return None
        a, b = cov @ (AtW @ z[inl])
    res = z[inl] - (a + b * T[inl])
    # scale the formal covariance by the residual spread (measurement sigmas may be optimistic)
    chi2 = float(np.sum(w * res**2) / max(1, inl.sum() - 2))
    x = np.array([1.0, T[-1]])
    sig = math.sqrt(max(float(x @ cov @ x) * max(chi2, 1.0), 0.0))
    return float(a), float(b), sig, inl
