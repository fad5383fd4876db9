"""Sessions: the streams of one rig, their reference timeline, and the per-hop fusion of clock and content.

Pure and synchronous: `SyncEngine` is fed stream opens, chunks (device time, host arrival time, samples) and
ticks (host time), and returns `Estimate`s and status changes; it owns no socket, thread or clock.

Mapping of a stream S onto the reference timeline (seconds):

    t_ref(t_local) = ref_from_host(clock_S.to_host(t_local)) - correction_S(t_ref)

`clock_S` is the device clock's model (from timestamps), `ref_from_host` is the identity when the reference is
the host clock and the reference stream's clock model inverted otherwise, and ``correction_S`` is what content
sync measured (capture latency, acoustic delay, the minimum network delay difference, residual drift), smoothed
by a `ContentFilter`. Reported offsets follow the scorecard's convention: ``offset_s = t_local - t_ref`` and
``drift_ppm = (d t_local / d t_ref - 1) * 1e6``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from warpsync_client.protocol import StreamMeta

from ..errors import AlignmentError
from ..features.audio import to_float_mono
from ..features.base import SegmentedExtractor, envelope_extractor
from .clock import ClockModel
from .config import EngineConfig, SessionConfig
from .content import (
    ContentFilter,
    LagMeasurement,
    TimedBuffer,
    coarse_offset,
    frame_smooth,
    gaussian_smooth,
    gaussian_smooth_columns,
    gcc_phat_lag,
    measure_lag,
    measure_lag_cells,
    resample,
)

log = logging.getLogger(__name__)

Method = Literal["clock", "content", "fused"]
HOST = "host"
RAW_RATE_MAX_HZ = 8000.0
"""Raw audio kept for GCC-PHAT refinement is block-averaged down to at most this rate, Hz."""
RAW_WINDOW_S = 2.0
"""Length of the raw-audio window refined by GCC-PHAT, seconds."""
KINETIC_MODALITIES = ("video", "sensor")
"""Modalities that also keep a kinetic envelope (what video and sensors share: velocity changes)."""
AUDIT_REASONS = ("low_corr", "edge", "ambiguous", "broad")
"""Why a locked window around the lock can fail while the streams have content: then the search widens
(`ContentConfig.audit_search`)."""


@dataclass(frozen=True)
class Estimate:
    """One stream's mapping onto its session's reference timeline, at reference time `t_s`."""

    stream: str
    session: str
    reference: str
    """Reference stream id, or ``host``."""
    t_s: float
    """Reference time the estimate refers to (the stream's newest data), seconds."""
    t_local_s: float
    """The stream's own time at `t_s`, seconds."""
    offset_s: float
    """``t_local - t_ref``: a sample stamped ``t_local`` is at reference time ``t_local - offset_s``, seconds."""
    drift_ppm: float
    """``(d t_local / d t_ref - 1) * 1e6``."""
    uncertainty_s: float
    """One-sigma uncertainty of `offset_s`, seconds."""
    method: Method
    settled: bool
    confidence: float
    """In [0, 1]: ``scale / (scale + uncertainty_s)`` (`ContentConfig.confidence_scale_s`), decaying with the age
    of the last informative content window; at most 0.25 for ``clock`` (timestamps cannot see capture latency)."""
    content_reason: str = ""
    """Why the last content window was not used (``silent``, ``low_corr``, ...), empty when it was."""


@dataclass
class StreamState:
    meta: StreamMeta
    session: str
    clock: ClockModel
    extractor: SegmentedExtractor | None
    activity: SegmentedExtractor | None = None
    """Raw video with a motion baseline of more than one frame: the activity envelope (what audio onsets are
    compared with) from consecutive frames, by its own extractor; the baseline is for the kinetic envelope and
    its cells (what sensors are compared with). Smoother two-frame activity let chance correlations with the room
    microphone lock cameras up to 160 ms off."""
    env: TimedBuffer = field(default_factory=TimedBuffer)
    kin: TimedBuffer | None = None
    """Kinetic envelope (video: change of motion energy; sensor: acceleration magnitude), for video-sensor pairs."""
    cells: TimedBuffer | None = None
    """Video: the kinetic envelope's per-cell terms (n, cells), weighted against a sensor partner per window."""
    raw: TimedBuffer | None = None
    raw_rate_hz: float = 0.0
    raw_factor: int = 1
    raw_tail: np.ndarray = field(default_factory=lambda: np.zeros(0))
    raw_next_t: float = math.nan
    filter: ContentFilter | None = None
    open: bool = True
    last_arrival_s: float = -math.inf
    last_t_end_s: float = -math.inf
    first_t_s: float = math.nan
    last_accept_T: float = -math.inf
    corr_ema: float = 0.0
    last_reason: str = ""
    edge_count: int = 0
    acquire: list = field(default_factory=list)
    next_hop_host_s: float = -math.inf
    measurements: list = field(default_factory=list)  # (T, correction, sigma) of informative windows (offline)
    stalled: bool = False
    jumped: bool = False
    last_status: tuple | None = None
    last_published_s: float = -math.inf
    last_published_method: str = ""
    samples_total: int = 0
    segments: deque = field(default_factory=lambda: deque(maxlen=4096))  # (t_dev_first, n, index_first)

    @property
    def name(self) -> str:
        return self.meta.stream

    def local_to_index(self, t_local: float) -> tuple[int, float] | None:
        """Nearest sample index to local time and that sample's local time (None inside a gap / unknown)."""
        rate = self.meta.rate_hz
        for t0, n, i0 in reversed(self.segments):
            if t_local >= t0 - 0.5 / rate:
                k = round((t_local - t0) * rate)
                if 0 <= k < n:
                    return i0 + k, t0 + k / rate
                return None
        return None


@dataclass(frozen=True)
class _Window:
    """What one hop aligns: the tails of a stream's and its partner's envelopes, on the reference timeline."""

    st: StreamState
    partner: StreamState
    kinetic: bool
    cells: bool
    span: float
    s_t: np.ndarray
    s_v: np.ndarray
    p_t: np.ndarray
    p_v: np.ndarray
    ts: np.ndarray
    tp: np.ndarray
    T_start: float
    n: int


@dataclass
class Session:
    name: str
    cfg: SessionConfig
    reference: str = ""  # stream id or "" for host
    anchor: str = ""
    members: list[str] = field(default_factory=list)
    next_hop_host_s: float = -math.inf


class SyncEngine:
    """All sessions of one service: clock models by clock id, stream states, content sync and fusion."""

    def __init__(self, cfg: EngineConfig | None = None, *, record: bool = False) -> None:
        """`record` keeps every informative window's measurement (unbounded: for the offline API only)."""
        self.cfg = cfg or EngineConfig()
        self.record = record
        self.clocks: dict[str, ClockModel] = {}
        self.streams: dict[str, StreamState] = {}
        self.sessions: dict[str, Session] = {}
        self.hop_seconds: list[float] = []  # compute time of hops, for the stage's histogram (drained there)

    # ----------------------------------------------------------------------------------------- membership
    def _session_of(self, meta: StreamMeta) -> str:
        for name, sc in self.cfg.sessions.items():
            if meta.stream in sc.streams:
                return name
        return meta.session or self.cfg.default_session

    def open(self, meta: StreamMeta, now_s: float) -> StreamState:
        """A stream opened (or re-opened after a publisher restart: its clock model and content state are
        kept when the clock id is the same)."""
        ccfg = self.cfg
        self._forget_clocks(now_s)
        clock = self.clocks.get(meta.clock_id)
        if clock is None:
            clock = self.clocks[meta.clock_id] = ClockModel(ccfg.clock)
        clock.last_seen_s = max(clock.last_seen_s, now_s)
        sname = self._session_of(meta)
        old = self.streams.get(meta.stream)
        if (
            old is not None
            and old.meta.modality == meta.modality
            and old.meta.rate_hz == meta.rate_hz
            and old.meta.shape == meta.shape
            and old.session == sname
            and old.meta.clock_id == meta.clock_id
        ):
            old.meta = meta
            old.open = True
            old.stalled = False
            old.last_arrival_s = now_s
            return old
        if old is not None:
            self._drop(old)
        ext = None
        if meta.modality in ("audio", "video", "sensor") and meta.rate_hz > 0:
            ext = envelope_extractor(
                meta.modality,
                meta.rate_hz,
                tuple(meta.shape),
                audio_hop_ms=ccfg.features.audio_hop_ms,
                sensor_highpass_hz=min(ccfg.features.sensor_highpass_hz, 0.45 * meta.rate_hz),
                units=meta.units,
                kinetic=meta.modality in KINETIC_MODALITIES,
                cells=meta.modality == "video" and ccfg.content.cell_weighting,
                motion_baseline_frames=ccfg.features.motion_baseline_frames,
            )
        c = ccfg.content
        st = StreamState(
            meta=meta,
            session=sname,
            clock=clock,
            extractor=ext,
            last_arrival_s=now_s,
            filter=ContentFilter(
                offset_noise_s_per_s=c.offset_noise_s_per_s,
                drift_noise_per_s=c.drift_noise_ppm_per_s * 1e-6,
                gate_sigmas=c.gate_sigmas,
                relock_hops=c.relock_hops,
                rate_prior=c.rate_prior_ppm * 1e-6,
            ),
        )
        if ext is not None and meta.modality in KINETIC_MODALITIES:
            st.kin = TimedBuffer()
        if ext is not None and self._motion_frames(st) > 1:
            st.activity = envelope_extractor(meta.modality, meta.rate_hz, tuple(meta.shape), units=meta.units)
        if meta.modality == "audio" and meta.rate_hz > 0:
            st.raw_factor = max(1, math.ceil(meta.rate_hz / RAW_RATE_MAX_HZ))
            st.raw_rate_hz = meta.rate_hz / st.raw_factor
            st.raw = TimedBuffer()
        self.streams[meta.stream] = st
        sess = self.sessions.get(sname)
        if sess is None:
            scfg = ccfg.sessions.get(sname, SessionConfig())
            sess = self.sessions[sname] = Session(
                sname, scfg, reference=scfg.reference, anchor=scfg.anchor or scfg.reference
            )
        if meta.stream not in sess.members:
            sess.members.append(meta.stream)
        sess.next_hop_host_s = min(sess.next_hop_host_s, now_s)
        if not sess.reference and not sess.cfg.anchor and ext is not None:
            cur = self.streams.get(sess.anchor)
            if cur is None or (cur.meta.modality != "audio" and meta.modality == "audio"):
                sess.anchor = meta.stream
        return st

    def close(self, stream: str, now_s: float) -> None:
        st = self.streams.get(stream)
        if st is not None:
            st.open = False

    def _drop(self, st: StreamState) -> None:
        sess = self.sessions.get(st.session)
        if sess and st.name in sess.members:
            sess.members.remove(st.name)
        self.streams.pop(st.name, None)

    def _forget_clocks(self, now_s: float) -> None:
        used = {s.meta.clock_id for s in self.streams.values() if s.open}
        for cid in [
            c for c, m in self.clocks.items() if c not in used and now_s - m.last_seen_s > self.cfg.clock.forget_s
        ]:
            del self.clocks[cid]
            for s in [s for s in self.streams.values() if s.meta.clock_id == cid]:
                self._drop(s)

    # --------------------------------------------------------------------------------------------- data
    def add(self, stream: str, t_dev_s: float, arrival_s: float, data: np.ndarray) -> str | None:
        """A chunk: returns the clock event it caused (``jump``/``restart``) or None."""
        st = self.streams[stream]
        n = len(data) if not isinstance(data, str) else 0
        rate = st.meta.rate_hz
        t_end = t_dev_s + (n / rate if rate > 0 else 0.0)
        st.last_arrival_s = max(st.last_arrival_s, arrival_s)
        st.stalled = False
        event = st.clock.observe(t_end, arrival_s, st.name) if n > 0 or rate <= 0 else None
        if event:
            st.jumped = True
            for other in self.streams.values():
                if other.clock is st.clock:
                    self._clear_content_buffers(other)
        if n == 0 or isinstance(data, str) or rate <= 0:
            return event
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            # the service's nan_policy may let NaN/Inf through: features (and IIR filter states) see zeros
            data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        if math.isnan(st.first_t_s):
            st.first_t_s = t_dev_s
        st.segments.append((t_dev_s, n, st.samples_total))
        st.samples_total += n
        st.last_t_end_s = max(st.last_t_end_s, t_end) if not event else t_end
        if st.extractor is not None:
            try:
                fr = st.extractor.push(t_dev_s, data)
                act = st.activity.push(t_dev_s, data) if st.activity is not None else None
            except AlignmentError as exc:
                # data the features cannot use (e.g. frames smaller than the motion grid): clock sync only
                log.warning("stream %s: no content features (%s); it is synchronized by its clock only", st.name, exc)
                st.extractor = None
                st.activity = None
                st.env.clear()
                st.kin = None
                st.cells = None
                return event
            if len(fr):
                vals = fr.values
                if vals.ndim == 2:
                    vals = vals[:, 0]
                    if st.kin is not None:
                        st.kin.append(fr.times_s, fr.values[:, 1])
                        if st.kin.first_time < fr.times_s[-1] - 1.1 * self.cfg.content.history_s:
                            st.kin.trim_before(fr.times_s[-1] - self.cfg.content.history_s)
                    if fr.values.shape[1] > 2:
                        self._add_cells(st, fr.times_s, fr.values[:, 2:])
                if act is None:
                    self._add_env(st, fr.times_s, vals)
            if act is not None and len(act):
                self._add_env(st, act.times_s, act.values)
        if st.raw is not None:
            self._add_raw(st, t_dev_s, data)
        return event

    def _add_env(self, st: StreamState, times: np.ndarray, values: np.ndarray) -> None:
        st.env.append(times, values)
        if st.env.first_time < times[-1] - 1.1 * self.cfg.content.history_s:
            st.env.trim_before(times[-1] - self.cfg.content.history_s)

    def _add_cells(self, st: StreamState, times: np.ndarray, cells: np.ndarray) -> None:
        if st.cells is None:
            st.cells = TimedBuffer(dim=cells.shape[1])
        elif cells.shape[1] != st.cells.values.shape[1]:
            st.cells = TimedBuffer(dim=cells.shape[1])  # the description changed size: start over
        st.cells.append(times, cells)
        # only the newest kinetic window (and the widest search around it) is ever used
        c = self.cfg.content
        keep_s = c.kinetic_window_s + 2.0 * c.prior_latency_s + 2.0
        if st.cells.first_time < times[-1] - 1.5 * keep_s:
            st.cells.trim_before(times[-1] - keep_s)

    def _clear_content_buffers(self, st: StreamState) -> None:
        st.env.clear()
        if st.cells is not None:
            st.cells.clear()
        if st.kin is not None:
            st.kin.clear()
        if st.raw is not None:
            st.raw.clear()
            st.raw_tail = np.zeros(0)
            st.raw_next_t = math.nan
        if st.extractor is not None:
            st.extractor.reset()
        if st.activity is not None:
            st.activity.reset()

    def _add_raw(self, st: StreamState, t_dev_s: float, data: np.ndarray) -> None:
        y = to_float_mono(data)
        f = st.raw_factor
        rate = st.meta.rate_hz
        if not math.isnan(st.raw_next_t):
            expected = st.raw_next_t + len(st.raw_tail) / rate
            if abs(t_dev_s - expected) > max(1.5 / rate, 0.005):
                st.raw_tail = np.zeros(0)
                st.raw_next_t = math.nan
        if math.isnan(st.raw_next_t):
            st.raw_next_t = t_dev_s
        if len(st.raw_tail):
            y = np.concatenate([st.raw_tail, y])
        nb = len(y) // f
        st.raw_tail = y[nb * f :].copy()
        if nb:
            vals = y[: nb * f].reshape(nb, f).mean(axis=1)
            times = st.raw_next_t + (np.arange(nb) * f + 0.5 * (f - 1)) / rate
            st.raw.append(times, vals)
            st.raw_next_t += nb * f / rate
            if st.raw.first_time < times[-1] - RAW_WINDOW_S - 3.0:
                st.raw.trim_before(times[-1] - RAW_WINDOW_S - 2.0)

    # ------------------------------------------------------------------------------------------ mapping
    def _ref_from_host(self, sess: Session, h: np.ndarray | float):
        if not sess.reference:
            return h
        ref = self.streams.get(sess.reference)
        if ref is None or not ref.clock.ready:
            return None
        return ref.clock.from_host(h)

    def clock_map(self, st: StreamState, t_local):
        """Reference time of local time(s) from clocks alone (None when not yet possible)."""
        sess = self.sessions[st.session]
        if sess.reference == st.name:
            return t_local
        if not st.clock.ready:
            return None
        if sess.reference:
            ref = self.streams.get(sess.reference)
            if ref is not None and ref.clock is st.clock:
                return t_local
        return self._ref_from_host(sess, st.clock.to_host(t_local))

    def correction(self, st: StreamState, T: float) -> tuple[float, float]:
        """Content correction (seconds, subtracted from clock-mapped reference time) and its sigma."""
        f = st.filter
        if f is None or f.T is None:
            return 0.0, math.inf
        return f.predict(T)

    def to_ref(self, st: StreamState, t_local):
        base = self.clock_map(st, t_local)
        if base is None:
            return None
        f = st.filter
        if f is None or f.T is None:
            return base
        # the correction at each sample's own time (it has a rate): d(T) = d_k + r (T - T_k)
        return base - (f.x[0] + f.x[1] * (base - f.T))

    def partner_of(self, st: StreamState) -> str:
        sess = self.sessions[st.session]
        p = sess.cfg.partners.get(st.name) or str(st.meta.meta.get("sync_to", "") or "")
        if p and p in self.streams and p != st.name:
            return p
        if st.meta.modality == "sensor" and self.cfg.content.sensor_to_video:
            # an IMU feels what a camera sees (velocity changes): align it to the fastest camera of its session
            cams = [
                self.streams[n]
                for n in sess.members
                if n in self.streams and self.streams[n].meta.modality == "video" and self.streams[n].kin is not None
            ]
            if cams:
                return max(cams, key=lambda c: c.meta.rate_hz).name  # ties: the first to join
        return sess.reference or sess.anchor

    def is_anchor(self, st: StreamState) -> bool:
        sess = self.sessions[st.session]
        return st.name == (sess.reference or sess.anchor)

    # ------------------------------------------------------------------------------------------- hops
    def due(self, session: str, now_s: float) -> bool:
        return now_s >= self.sessions[session].next_hop_host_s

    def hop(self, session: str, now_s: float, max_streams: int | None = -1) -> list[Estimate]:
        """Run the content hop of the session's streams that are due (partners first), at most `max_streams`
        of them (default `content.max_streams_per_call`; None: all), and return their estimates. Streams left
        over stay due and go on the next call: a large session's hops spread over several calls instead of
        holding one chunk's events back."""
        c = self.cfg.content
        limit = c.max_streams_per_call if max_streams == -1 else max_streams
        sess = self.sessions[session]
        out = []
        done = 0
        for name in self._order(sess):
            st = self.streams[name]
            if st.next_hop_host_s > now_s:
                continue
            if not st.open:
                st.next_hop_host_s = now_s + c.hop_s  # closed: state kept for a reconnect, nothing published
                continue
            if limit is not None and done >= limit:
                break
            st.next_hop_host_s = now_s + c.hop_s
            done += 1
            if c.enabled and st.extractor is not None and not self.is_anchor(st):
                self._content_hop(st)
            est = self.estimate(st)
            if est is not None:
                out.append(est)
        sess.next_hop_host_s = min((self.streams[n].next_hop_host_s for n in sess.members), default=now_s + c.hop_s)
        return out

    def _order(self, sess: Session) -> list[str]:
        done: list[str] = []
        seen: set[str] = set()

        def visit(n: str, depth: int = 0) -> None:
            if n in seen or n not in self.streams or depth > 32:
                return
            seen.add(n)
            st = self.streams[n]
            if not self.is_anchor(st):
                visit(self.partner_of(st), depth + 1)
            done.append(n)

        for n in list(sess.members):
            visit(n)
        return done

    def _content_hop(self, st: StreamState) -> None:
        c = self.cfg.content
        partner = self.streams.get(self.partner_of(st))
        if partner is None or partner.extractor is None or len(st.env) < 4 or len(partner.env) < 4:
            st.last_reason = "no_data"
            return
        # video and sensors are compared like with like: change of motion energy vs acceleration magnitude
        kinetic = st.kin is not None and partner.kin is not None and st.meta.modality != partner.meta.modality
        s_env = st.kin if kinetic else st.env
        p_env = partner.kin if kinetic else partner.env
        if len(s_env) < 4 or len(p_env) < 4:
            st.last_reason = "no_data"
            return
        # fewer shared events per second across modalities (an IMU feels one object, a camera sees all): a longer window
        window_s = c.kinetic_window_s if kinetic else c.window_s
        # only the tail of each history takes part: the window, the widest search and a margin
        span = window_s + 2.0 * c.prior_latency_s + 1.0
        s_t, s_v = _tail(s_env, span)
        p_t, p_v = _tail(p_env, span)
        ts = self.to_ref(st, s_t)
        tp = self.to_ref(partner, p_t)
        if ts is None or tp is None:
            st.last_reason = "no_clock"
            return
        T_end = min(ts[-1], tp[-1]) - 3 * self.cfg.features.smooth_s
        T_start = max(T_end - window_s, ts[0], tp[0])
        g = c.grid_s
        n = int((T_end - T_start) / g)
        if n < int(0.5 * window_s / g):
            st.last_reason = "no_data"
            return
        f = st.filter
        if (
            f is not None
            and f.T is not None
            and f.updates < c.confirm_updates
            and T_end - st.last_accept_T > c.timeout_s
        ):
            # a lock that never got confirmed and then lost its content was likely a chance one: forget it
            # (a confirmed lock is kept through silence: capture latency does not change when the room goes quiet)
            log.info("stream %s: unconfirmed content lock dropped after %.1f s without content", st.name, c.timeout_s)
            f.reset()
        # a sensor against a camera: the camera's cells weighted by how they correlate with the sensor (it feels
        # one object; the camera sees them all)
        cells = (
            kinetic
            and c.cell_weighting
            and st.meta.modality == "sensor"
            and partner.cells is not None
            and len(partner.cells) >= 4
        )
        w = _Window(st, partner, kinetic, cells, span, s_t, s_v, p_t, p_v, ts, tp, T_start, n)
        locked = f is not None and f.T is not None
        _, sig_pred = self.correction(st, T_end)
        L_prior = c.prior_latency_s + 5 * max(st.clock.estimate().uncertainty_s, partner.clock.estimate().uncertainty_s)
        if not locked:
            L = L_prior
        else:
            L = min(max(c.min_search_s, c.search_sigmas * sig_pred), c.prior_latency_s)
            if kinetic and st.meta.modality == "sensor" and partner.meta.modality == "video":
                # at least the main lobe of a velocity change seen by the camera (1 + B frames: the sensor's
                # frame weighting): narrower, a lock a frame off sees the truth only at the range's edge and
                # never moves
                L = max(L, (1 + self._motion_frames(partner)) / partner.meta.rate_hz)
        m = self._measure(w, L, sig_pred, locked)
        if locked and c.audit_search and not m.informative and m.reason in AUDIT_REASONS and L < L_prior:
            # nothing matches around the lock though the streams have content: search as widely as for a first
            # lock. A lag found there with a first lock's prominence is an outlier; consecutive ones re-lock (a
            # capture latency that changed by more than the locked search, a lock that was wrong)
            wide = self._measure(w, L_prior, sig_pred, locked)
            if wide.informative and wide.prominence >= c.acquire_prominence:
                m = wide
        T_mid = T_start + 0.5 * (T_end - T_start)
        if not m.informative:
            st.last_reason = m.reason
            if m.reason == "edge" and (f is None or f.T is None) and c.coarse_online:
                st.edge_count += 1
                if st.edge_count >= 3:
                    self._coarse(st, partner)
            return
        st.edge_count = 0
        # an envelope's peak is only as sharp as its features agree in shape: floor its sigma
        lag, sigma = m.lag_s, max(m.sigma_s, c.envelope_sigma_floor_s)
        if c.raw_audio_refine and st.raw is not None and partner.raw is not None:
            r = self._refine_raw(st, partner, T_end, lag, max(3 * sigma, 0.0005))
            if r is not None:
                if f.T is not None:
                    # locked: a GCC peak the smoother would gate out while the envelope agrees with the lock is
                    # a wrong GCC peak (one loud event can make it persist for a whole window), not news
                    _, sig_p = self.correction(st, T_mid)
                    g_out = abs(r[0]) > c.gate_sigmas * math.hypot(sig_p, r[1])
                    e_in = abs(lag) <= c.gate_sigmas * math.hypot(sig_p, sigma)
                    if not (g_out and e_in):
                        lag, sigma = r
                else:
                    lag, sigma = r
        d_now, _ = self.correction(st, T_mid)
        z = d_now + lag
        if self.record:
            st.measurements.append((T_mid, z, sigma))
        if f.T is None:
            # acquisition: lock only on `acquire_hops` informative windows that agree and span at least
            # `acquire_span_s` (consecutive windows overlap: agreement between them alone is weak evidence; a
            # chance correlation does not survive new data, the truth does)
            if m.prominence < c.acquire_prominence:
                st.last_reason = "acquiring"
                return
            # a window's new data is measured at its end: while the first windows still grow, their middles
            # advance half as fast. For a sensor on a camera's cells, whose windows' halves already agreed on their
            # own, the span counts that new data. Other pairs keep the middles: an audio pair then locked on
            # growing windows, and their GCC-PHAT lags (30 us each, middles 0.25 s apart) gave the smoother a
            # spurious rate of 70 ppm (test_silence_falls_back_to_clock_and_confidence_says_so)
            split_tested = cells and c.acquire_split
            T_acq = T_end if split_tested else T_mid
            st.acquire.append((T_acq, z, sigma))
            # the span scales with the window: the same fraction of new data (an 8 s window needs 4 s); across
            # modalities without a matched feature (video motion vs audio onsets: fewer shared events, different
            # shapes) the agreeing windows must not overlap at all
            span_needed = c.acquire_span_s * window_s / c.window_s
            if split_tested:
                # each window's halves already agreed on their own, so the windows' overlap no longer makes their
                # agreement weak evidence: 2 s of new data do, where the scaled span waited 4 s
                span_needed = c.acquire_span_s
            if st.meta.modality != partner.meta.modality and not kinetic:
                span_needed = max(span_needed, window_s)
            st.acquire = [a for a in st.acquire if a[0] >= T_acq - span_needed - window_s]
            tol = max(3.0 * sigma, c.acquire_tolerance_s)
            agree = [a for a in st.acquire if abs(a[1] - z) <= max(tol, 3.0 * a[2])]
            if len(agree) < c.acquire_hops or T_acq - agree[0][0] < span_needed:
                st.last_reason = "acquiring"
                return
            st.acquire.clear()
            z = float(np.median([a[1] for a in agree]))
        # re-locking needs as much new data as the first lock: longer windows overlap more between hops, and
        # consecutive outliers must span `acquire_span_s` at least (3 hops of a 4 s audio window share most of
        # their data: one loud event re-locked a microphone 13 ms off on seed 14 of the default rig)
        f.relock_hops = max(
            c.relock_hops, math.ceil(c.relock_hops * window_s / c.window_s), math.ceil(c.acquire_span_s / c.hop_s) + 1
        )
        accepted = f.update(T_mid, z, sigma)
        if accepted:
            st.last_accept_T = T_end
            st.corr_ema = m.corr if st.corr_ema == 0 else 0.8 * st.corr_ema + 0.2 * m.corr
            st.last_reason = ""
        else:
            st.last_reason = "outlier"

    def _measure(self, w: _Window, L: float, sig_pred: float, locked: bool) -> LagMeasurement:
        """One window's lag within +-L seconds of the current mapping."""
        c = self.cfg.content
        st, partner, kinetic, cells, T_start, n = w.st, w.partner, w.kinetic, w.cells, w.T_start, w.n
        g = c.grid_s
        M = math.ceil(L / g)
        # the cells are compared on a grid of k steps, about a quarter of the camera's frame period (what the
        # camera resolves; 16 columns at 1 ms would cost 16 times a plain hop): the search range in whole steps
        k = max(1, int(0.25 / (partner.meta.rate_hz * g))) if cells else 1
        M = k * math.ceil(M / k)
        s_t, s_v, p_t, p_v, ts, tp, span = w.s_t, w.s_v, w.p_t, w.p_v, w.ts, w.tp, w.span
        grid = T_start + g * np.arange(n)
        gridc = T_start - M * g + g * np.arange(n + 2 * M)
        sm = self.cfg.features.smooth_s / g
        gap_p = max(3.0 * _median_step(p_t), 2 * g)
        gap_s = max(3.0 * _median_step(s_t), 2 * g)
        ref = resample(tp, p_v, grid, gap_p)
        cand = resample(ts, s_v, gridc, gap_s)
        if cells:
            pc_t, pc_v = _tail(partner.cells, span)
            tpc = self.to_ref(partner, pc_t)
            ref_cells = gaussian_smooth_columns(resample(tpc, pc_v, grid[::k], gap_p), sm / k)
        if kinetic:
            # the sensor's acceleration magnitude, seen through the camera's frame-difference weighting
            if st.meta.modality == "sensor":
                cand = frame_smooth(cand, 1.0 / (partner.meta.rate_hz * g), self._motion_frames(partner))
            elif partner.meta.modality == "sensor":
                ref = frame_smooth(ref, 1.0 / (st.meta.rate_hz * g), self._motion_frames(st))
        ref = gaussian_smooth(ref, sm)
        cand = gaussian_smooth(cand, sm)
        if cells:
            # the candidate was smoothed on the fine grid (frame weighting, Gaussian) before it is decimated
            cell_lag = functools.partial(
                measure_lag_cells,
                grid_s=k * g,
                max_lag_s=M * g,
                ridge=c.cell_ridge,
                min_activity=c.min_activity,
                min_corr=c.min_corr,
                min_prominence=c.min_prominence,
                # a velocity change seen by a camera spans about a frame either side of its middle (the peaks that
                # locate one are a frame half-wide, 18-20 ms at 60 fps); slow motion (wobble) gives humps of 8 and
                # more frames that still stand out of the search range: 3 frames tells them apart
                max_lobe_s=3.0 / partner.meta.rate_hz,
            )
            m, weights = cell_lag(ref_cells, cand[::k])
            if m.informative and k > 1:
                m = self._refine_cells(m, weights, tpc, pc_v, grid, gap_p, cand, M, k)
            # a lag that would start a lock (or count towards a re-lock, being an outlier to the current one) must
            # show in both halves of the window on their own
            new_lag = (
                abs(m.lag_s) > c.gate_sigmas * math.hypot(sig_pred, max(m.sigma_s, c.envelope_sigma_floor_s))
                if locked
                else m.prominence >= c.acquire_prominence
            )
            if (
                m.informative
                and c.acquire_split
                and new_lag
                and not _halves_agree(cell_lag, ref_cells, cand[::k], M // k, m.lag_s, 0.5 / partner.meta.rate_hz)
            ):
                m = dataclasses.replace(m, informative=False, reason="split")
            return m
        return measure_lag(
            ref,
            cand,
            g,
            M * g,
            min_activity=c.min_activity,
            min_corr=c.min_corr,
            min_prominence=c.min_prominence,
            min_peakiness=c.min_peakiness,
        )

    def _motion_frames(self, st: StreamState) -> int:
        """How many frame intervals the motion energy behind a camera's kinetic envelope spans: the configured
        baseline for raw frames, one for streams that send motion vectors or embeddings."""
        raw = st.meta.modality == "video" and len(st.meta.shape) >= 2
        return self.cfg.features.motion_baseline_frames if raw else 1

    def _refine_cells(self, m, w, t_cells, cells, grid, gap_s, cand, M: int, k: int):
        """The coarse cell lag refined on the fine grid: the cells combined with their weights at the peak (at
        the camera's own frame times, so one envelope is resampled), cross-correlated with the candidate within
        two coarse steps of the coarse lag. Keeps the coarse measurement if the fine peak sits at that edge."""
        g = float(grid[1] - grid[0]) if len(grid) > 1 else self.cfg.content.grid_s
        n = len(grid)
        comb = gaussian_smooth(resample(t_cells, cells @ w, grid, gap_s), self.cfg.features.smooth_s / g)
        i0 = round(m.lag_s / g)
        ms = 2 * k
        lo = M + i0 - ms
        if lo < 0 or lo + n + 2 * ms > len(cand):
            return m
        fine = measure_lag(comb, cand[lo : lo + n + 2 * ms], g, ms * g, min_corr=0.0, min_prominence=0.0)
        if not fine.informative:
            return m
        return dataclasses.replace(m, lag_s=i0 * g + fine.lag_s, sigma_s=fine.sigma_s)

    def _refine_raw(self, st: StreamState, partner: StreamState, T_end: float, lag: float, half_s: float):
        rate = min(st.raw_rate_hz, partner.raw_rate_hz)
        if len(st.raw) < 16 or len(partner.raw) < 16:
            return None
        ts = self.to_ref(st, st.raw.times)
        tp = self.to_ref(partner, partner.raw.times)
        if ts is None or tp is None:
            return None
        t_end = min(T_end, ts[-1] - lag, tp[-1])
        t0 = max(t_end - RAW_WINDOW_S, ts[0] - lag, tp[0])
        n = int((t_end - t0) * rate)
        if n < int(0.5 * RAW_WINDOW_S * rate):
            return None
        grid = t0 + np.arange(n) / rate
        r = resample(tp, partner.raw.values, grid, 3.0 / partner.raw_rate_hz)
        cnd = resample(ts, st.raw.values, grid + lag, 3.0 / st.raw_rate_hz)
        ok = np.isfinite(r) & np.isfinite(cnd)
        if ok.mean() < 0.9:
            return None
        r = np.where(ok, r, 0.0)
        cnd = np.where(ok, cnd, 0.0)
        dl, sharp, unique = gcc_phat_lag(r, cnd, rate, half_s)
        # a sharp, unique peak inside the envelope's own uncertainty, or nothing (periodic sounds make GCC
        # peaks repeat; the envelope decides which one is meant)
        if sharp < 8.0 or unique < 1.3 or abs(dl) >= half_s * 0.98:
            return None
        return lag + dl, 0.25 / rate

    def _coarse(self, st: StreamState, partner: StreamState) -> None:
        c = self.cfg.content
        ts = self.clock_map(st, st.env.times)
        tp = self.to_ref(partner, partner.env.times)
        if ts is None or tp is None:
            return
        m = coarse_offset(
            tp, partner.env.values, ts, st.env.values, grid_s=c.coarse_grid_s, max_offset_s=c.coarse_max_offset_s
        )
        st.edge_count = 0
        if m.informative:
            # coarse offset = t_ref - t_clockmapped  -> correction = -offset
            log.info("stream %s: coarse search moved its mapping by %.3f s", st.name, m.lag_s)
            st.filter.reset()
            st.filter.update(float(ts[-1] + m.lag_s), -m.lag_s, max(c.coarse_grid_s, 0.01))

    # ----------------------------------------------------------------------------------------- fusion
    def estimate(self, st: StreamState, _depth: int = 0) -> Estimate | None:
        sess = self.sessions[st.session]
        reference = sess.reference or HOST
        if not math.isfinite(st.last_t_end_s) or not st.clock.ready:
            return None
        t_local = st.last_t_end_s
        base = self.clock_map(st, t_local)
        if base is None:
            return None
        ce = st.clock.estimate()
        is_ref = sess.reference == st.name
        if is_ref:
            return Estimate(
                st.name, sess.name, reference, float(t_local), float(t_local), 0.0, 0.0, 0.0, "clock", True, 1.0
            )
        ref_est = None
        if sess.reference:
            ref = self.streams.get(sess.reference)
            ref_est = ref.clock.estimate() if ref is not None else None
            if ref_est is None:
                return None
        same_clock = sess.reference and self.streams[sess.reference].clock is st.clock
        clock_unc = 0.0 if same_clock else math.hypot(ce.uncertainty_s, ref_est.uncertainty_s if ref_est else 0.0)
        clock_settled = ce.settled and (ref_est.settled if ref_est else True)
        # drift of local vs ref: d t_local / d t_ref - 1
        b_s = st.clock.drift
        b_r = self.streams[sess.reference].clock.drift if sess.reference else 0.0
        clock_ppm = 0.0 if same_clock else ((1 + b_r) / (1 + b_s) - 1) * 1e6
        T = float(base)
        d, sig = self.correction(st, T)
        f = st.filter
        c = self.cfg.content
        age = T - st.last_accept_T
        content_live = f is not None and f.T is not None and age <= c.timeout_s and not self.is_anchor(st)
        if content_live or (f is not None and f.T is not None and not self.is_anchor(st)):
            t_ref = T - d
            rate = f.x[1] if f is not None and f.T is not None else 0.0
            if clock_settled:
                # the clock models' drift (minutes of timestamps) is the better drift estimate: the smoother's
                # rate also absorbs the clock fit's early corrections, which later clock refits undo
                drift_ppm = clock_ppm
            else:
                # t_ref = base(t_local) - d(T): d t_ref / d t_local ~ (1 + clock slope) (1 - rate)
                drift_ppm = ((1 + clock_ppm * 1e-6) / (1 - rate) - 1) * 1e6
        else:
            t_ref = T
            drift_ppm = clock_ppm
        if content_live:
            method: Method = "fused" if clock_settled else "content"
            unc = sig
            settled = f.updates >= 3 and sig <= max(4 * c.grid_s, 0.005)
            # aligned to a partner other than the anchor (an IMU to its camera): only as good as the partner's own
            # mapping, which may still be on clock sync (capture latency unknown)
            pname = self.partner_of(st)
            partner = self.streams.get(pname)
            if partner is not None and not self.is_anchor(partner) and _depth < 8:
                pe = self.estimate(partner, _depth + 1)
                unc = math.hypot(unc, pe.uncertainty_s if pe is not None else c.prior_latency_s)
            conf = c.confidence_scale_s / (c.confidence_scale_s + unc) * math.exp(-max(age, 0.0) / c.timeout_s)
        else:
            method = "clock"
            # timestamps cannot see capture latency: unless content measured it once, it is unknown
            lat_unc = 0.0 if self.is_anchor(st) and not sess.reference else c.prior_latency_s / math.sqrt(3.0)
            if f is not None and f.T is not None:
                lat_unc = min(lat_unc, sig)
            unc = math.hypot(clock_unc, lat_unc)
            settled = clock_settled
            conf = min(0.25, c.confidence_scale_s / (c.confidence_scale_s + unc)) * (1.0 if clock_settled else 0.2)
        return Estimate(
            stream=st.name,
            session=sess.name,
            reference=reference,
            t_s=float(t_ref),
            t_local_s=float(t_local),
            offset_s=float(t_local - t_ref),
            drift_ppm=float(drift_ppm),
            uncertainty_s=float(unc),
            method=method,
            settled=bool(settled),
            confidence=conf,
            content_reason=st.last_reason,
        )


def _tail(buf: TimedBuffer, span_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The (times, values) of `buf` from `span_s` before its newest time on (a view, no copy)."""
    t = buf.times
    i = int(np.searchsorted(t, t[-1] - span_s, side="left")) if len(t) else 0
    return t[i:], buf.values[i:]


def _halves_agree(cell_lag, ref_cells: np.ndarray, cand: np.ndarray, M: int, lag_s: float, tol_s: float) -> bool:
    """Whether each half of a window (the first and the second half of `ref_cells`, each with its own stretch of
    `cand` and the same search range of `M` steps) peaks within `tol_s` of the whole window's `lag_s` on its own.
    The halves share no data, so a lag carried by a few events in one of them does not pass."""
    h = len(ref_cells) // 2
    for lo in (0, h):
        m, _ = cell_lag(ref_cells[lo : lo + h], cand[lo : lo + h + 2 * M])
        if m.reason in ("silent", "flat", "edge") or abs(m.lag_s - lag_s) > tol_s:
            return False
    return True


def _median_step(times: np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    k = times[-min(len(times), 64) :]
    return float(np.median(np.diff(k)))
