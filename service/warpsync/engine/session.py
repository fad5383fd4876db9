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

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from warpsync_client.protocol import StreamMeta

from ..errors import AlignmentError
from ..features.audio import to_float_mono
from ..features.base import SegmentedExtractor, envelope_extractor
from ..features.impact import impact_extractor
from .clock import PRIOR_MIN_SPAN_S, ClockModel
from .config import ContentConfig, EngineConfig, SessionConfig
from .content import ContentFilter, TimedBuffer
from .hop import RAW_WINDOW_S, ContentHop, WindowTrace, lags_agree, matched_features
from .rate import PairRate
from .response import ContactResponse

log = logging.getLogger(__name__)

Method = Literal["clock", "lead", "content", "fused"]
HOST = "host"
RAW_RATE_MAX_HZ = 8000.0
"""Raw audio kept for GCC-PHAT refinement is block-averaged down to at most this rate, Hz."""
KINETIC_MODALITIES = ("video", "sensor")
"""Modalities that also keep a kinetic envelope (what video and sensors share: velocity changes)."""
IMPACT_MODALITIES = ("audio", "sensor")
"""Modalities that also keep an impact envelope (what a microphone and a sensor on a struck object share)."""


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
    partner: str = ""
    """The stream this one is content-aligned to (empty for the reference and the content anchor)."""


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
    impact: SegmentedExtractor | None = None
    """Audio and sensors, with `content.sensor_bridge`: the impact envelope's extractor (`features.impact`)."""
    imp: TimedBuffer | None = None
    """The impact envelope, for sensor-microphone pairs."""
    response: ContactResponse | None = None
    """A sensor locked to a microphone: its learned contact response (`content.contact_response`)."""
    response_T: float = -math.inf
    """Reference time up to which `response` has learned, seconds."""
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
    gcc_gated: list = field(default_factory=list)
    """Consecutive hops whose GCC-PHAT lag the lock gated out while the envelope agreed with it: (T_end, lag,
    sigma), all within the gate of each other (`ContentHop._content_hop`)."""
    acquire: list = field(default_factory=list)
    """Before the first lock, the windows that may start it: (T, correction, sigma, support), support the half
    window that alone carried the lag (`LagMeasurement.support`) or None."""
    bridge_partner: str = ""
    """A camera under the sensor bridge: the sensor it is measured against now (the one it locked with, once
    locked; before that they take turns, see `SyncEngine.bridge_sensors`)."""
    leads: dict = field(default_factory=dict)
    """Before the first lock, the last two windows against each partner whatever the acquisition tests said of
    them (informative or `split`): partner -> [(T_end, correction, sigma)], for `content.publish_lead`
    (`SyncEngine.lead`)."""
    pair_rate: PairRate = field(default_factory=PairRate)
    """A microphone locked to the anchor microphone by raw audio: (own device time, the anchor's device time) of
    each hop's estimate, for the rate between the two clocks (`content.audio_drift`, `SyncEngine._note_pair`)."""
    source_last: dict = field(default_factory=dict)
    """A locked camera with two sources: each one's last informative lag at a hop's own search, as a correction,
    keyed by whether it came through the sensor's contact response: heard -> (T_end, correction, sigma)
    (`content.source_memory`)."""
    acquire_parked: dict = field(default_factory=dict)
    """The acquisition windows of the sensors not measured against at this hop, by sensor."""
    next_hop_host_s: float = -math.inf
    held: tuple | None = None
    """(newest local time t, the clock mapping at t - 1 s and t, the clocks' resets and rebases) at the last hop:
    how far a clock refit moved the stream's mapping, level and slope, since (`SyncEngine._hold_mapping`)."""
    measurements: list = field(default_factory=list)  # (T, correction, sigma) of informative windows (offline)
    measured_epoch: tuple | None = None
    """The clocks' resets and rebases (`SyncEngine.clock_epoch`) when content sync last took a window: until it takes
    one after a jump, restart or rebase, the correction rests on the model before it, and the new model's
    uncertainty is published with it."""
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


@dataclass
class Session:
    name: str
    cfg: SessionConfig
    reference: str = ""  # stream id or "" for host
    anchor: str = ""
    members: list[str] = field(default_factory=list)
    next_hop_host_s: float = -math.inf


class SyncEngine(ContentHop):
    """All sessions of one service: clock models by clock id, stream states, content sync and fusion."""

    def __init__(self, cfg: EngineConfig | None = None, *, record: bool = False) -> None:
        """`record` keeps every informative window's measurement (unbounded: for the offline API only)."""
        self.cfg = cfg or EngineConfig()
        self.record = record
        self.on_window: Callable[[WindowTrace], None] | None = None
        """Called with every window a content hop measures (diagnostics; None: nothing is kept)."""
        self.trace_every_window = False
        """With `on_window`: also measure, for the trace only, the sources a hop did not need (`WindowTrace.used`)."""
        self.clocks: dict[str, ClockModel] = {}
        self.streams: dict[str, StreamState] = {}
        self.sessions: dict[str, Session] = {}
        self.hop_seconds: list[float] = []  # compute time of hops, for the stage's histogram (drained there)
        self._partners: dict[str, str] = {}  # partner_of, until membership or a stream's features change

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
        self._partners.clear()
        self._forget_clocks(now_s)
        clock = self.clocks.get(meta.clock_id)
        if clock is None:
            clock = self.clocks[meta.clock_id] = ClockModel(ccfg.clock, peers=self.clocks.values)
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
                kinetic_from=ccfg.features.motion_kinetic,
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
        if ext is not None and c.sensor_bridge and meta.modality in IMPACT_MODALITIES:
            st.impact = impact_extractor(
                meta.modality,
                meta.rate_hz,
                audio_hop_ms=ccfg.features.audio_hop_ms,
                lookback_ms=ccfg.features.impact_lookback_ms,
            )
            st.imp = TimedBuffer()
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
        self._partners.clear()
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
        """A chunk: returns the clock event it caused (``jump``/``restart``/``rebase``/``stall``, see
        `ClockModel.observe`), ``stale`` (stamped before a jump another stream on its clock reported, and dropped)
        or None."""
        st = self.streams[stream]
        n = len(data) if not isinstance(data, str) else 0
        rate = st.meta.rate_hz
        t_end = t_dev_s + (n / rate if rate > 0 else 0.0)
        st.last_arrival_s = max(st.last_arrival_s, arrival_s)
        st.stalled = False
        event = st.clock.observe(t_end, arrival_s, st.name) if n > 0 or rate <= 0 else None
        if event in ("jump", "restart"):  # a "rebase" (late first observations) keeps what the features saw
            st.jumped = True
            for other in self.streams.values():
                if other.clock is st.clock:
                    self._clear_content_buffers(other)
                    if other is not st:
                        # its newest data is of the clock before the jump: no estimate until it has newer data
                        other.last_t_end_s = -math.inf
        elif st.clock.stale and st.clock.resets:
            # stamped before a forward jump that another stream on this clock reported first (it was in flight):
            # the new model puts it a jump off (above its delay envelope), and content restarted at the jump
            log.debug("stream %s: a chunk stamped before its clock's jump arrived after it; dropped", st.name)
            return "stale"
        if n == 0 or isinstance(data, str) or rate <= 0:
            return event
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            # the service's nan_policy may let NaN/Inf through: features (and IIR filter states) see zeros
            data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        if math.isnan(st.first_t_s):
            st.first_t_s = t_dev_s
        st.segments.append((t_dev_s, n, st.samples_total))
        st.samples_total += n
        st.last_t_end_s = max(st.last_t_end_s, t_end) if event in (None, "rebase", "stall") else t_end
        if st.extractor is not None:
            try:
                fr = st.extractor.push(t_dev_s, data)
                act = st.activity.push(t_dev_s, data) if st.activity is not None else None
                imp = st.impact.push(t_dev_s, data) if st.impact is not None else None
            except AlignmentError as exc:
                # data the features cannot use (e.g. frames smaller than the motion grid): clock sync only
                log.warning("stream %s: no content features (%s); it is synchronized by its clock only", st.name, exc)
                st.extractor = None
                self._partners.clear()
                st.activity = None
                st.env.clear()
                st.kin = None
                st.cells = None
                st.impact = None
                st.imp = None
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
            if imp is not None and len(imp):
                # only the newest impact window (and the widest search around it) is ever used
                _append_window(st.imp, imp.times_s, imp.values, self.cfg.content.impact_window_s, self.cfg.content)
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
        # only the newest kinetic window (and the widest search around it) is ever used
        _append_window(st.cells, times, cells, self.cfg.content.kinetic_window_s, self.cfg.content)

    def _clear_content_buffers(self, st: StreamState) -> None:
        st.env.clear()
        if st.cells is not None:
            st.cells.clear()
        if st.kin is not None:
            st.kin.clear()
        if st.imp is not None:
            st.imp.clear()
        if st.impact is not None:
            st.impact.reset()
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

    def lead(self, st: StreamState, T: float) -> float | None:
        """Before `st`'s first lock, the correction its windows point at (`content.publish_lead`), or None: the
        newest window that counts towards the lock, with those that agree with it, else two windows of
        consecutive hops that agree (the two newest, or where they disagree the two before them); none older than
        `content.timeout_s` before `T`."""
        c = self.cfg.content
        f = st.filter
        if not c.publish_lead or (f is not None and f.T is not None) or self.is_anchor(st):
            return None
        partner = self.streams.get(self.partner_of(st))
        if partner is None or not matched_features(st, partner):
            return None
        tol = c.acquire_tolerance_s
        acq = [a for a in st.acquire if a[0] >= T - c.timeout_s]
        if acq:
            z, s = acq[-1][1], acq[-1][2]
            return float(np.median([a[1] for a in acq if lags_agree(z, s, a[1], a[2], tol)]))
        leads = st.leads.get(partner.name, [])
        # consecutive: a camera not locked yet takes its bridge sensors in turn, one per hop
        gap = 1.5 * c.hop_s * (1 + len(st.acquire_parked))
        # the two newest windows; where they disagree, the two before them: one window that points elsewhere does
        # not break a lead, two in a row do
        pairs = [(leads[-2], leads[-1])] if len(leads) >= 2 else []
        if len(leads) >= 3:
            pairs.append((leads[-3], leads[-2]))
        for (T0, z0, s0), (T1, z1, s1) in pairs:
            if T1 >= T - c.timeout_s and T1 - T0 <= gap and lags_agree(z0, s0, z1, s1, tol):
                return 0.5 * (z0 + z1)
        return None

    def published_shift(self, st: StreamState, T: float, _depth: int = 0) -> float:
        """What the published mapping of `st` subtracts beyond the engine's own (`to_ref`): its lead, if it has
        one, and the leads along the chain of partners it is measured against (a camera measured against a
        sensor that is publishing a lead moves with it)."""
        if _depth > 8 or self.is_anchor(st):
            return 0.0
        f = st.filter
        if f is not None and f.T is not None:
            own = 0.0
        else:
            own = self.lead(st, T)
            if own is None:
                return 0.0  # on clock sync: not measured against the partner's mapping
        partner = self.streams.get(self.partner_of(st))
        if partner is None or partner is st:
            return own
        return own + self.published_shift(partner, T, _depth + 1)

    def _systematic_s(self, st: StreamState) -> float:
        """The part of a content correction's uncertainty that averaging windows does not shrink: a camera's
        kinetic envelope and a sensor's peak a fraction of a frame apart whatever the clocks (motion energy is
        not linear in speed; with perfect clocks, 8 s windows of the default rig's 30 fps camera sit -2 to -5 ms
        off its IMU on seeds 1-12, the 60 fps camera's -2 to +1 ms), `content.kinetic_bias_frames` of the
        camera's frame period for a video<->sensor pair; 0 for other pairs."""
        partner = self.streams.get(self.partner_of(st))
        if partner is None or {st.meta.modality, partner.meta.modality} != {"video", "sensor"}:
            return 0.0
        video = st if st.meta.modality == "video" else partner
        return self.cfg.content.kinetic_bias_frames / video.meta.rate_hz if video.meta.rate_hz > 0 else 0.0

    def _clock_slopes_kept(self, st: StreamState, ref_est) -> bool:
        """Whether the stream's clock slope (and the reference's, if a stream) rests on a long fit: after a jump
        or restart the model keeps the slope from before until its new fit is long enough."""
        ce = st.clock.estimate()
        long = PRIOR_MIN_SPAN_S
        return ce is not None and ce.slope_span_s >= long and (ref_est is None or ref_est.slope_span_s >= long)

    def partner_of(self, st: StreamState) -> str:
        """The stream `st` is content-aligned to (itself for the anchor)."""
        p = self._partners.get(st.name)
        if p is None:
            p = self._partners[st.name] = self._find_partner(st)
        return p

    def _find_partner(self, st: StreamState) -> str:
        sess = self.sessions[st.session]
        p = sess.cfg.partners.get(st.name) or str(st.meta.meta.get("sync_to", "") or "")
        if p and p in self.streams and p != st.name:
            return p
        if self.cfg.content.sensor_bridge and self._impact_anchor(sess) is not None:
            # a sensor on a moving object bridges sound and sight: it aligns to the microphone by impacts, the
            # cameras align to it by velocity changes
            if st.meta.modality == "sensor" and st.imp is not None:
                return self._impact_anchor(sess)
            if st.meta.modality == "video" and st.kin is not None:
                sensors = self.bridge_sensors(st)
                if sensors:
                    return st.bridge_partner if st.bridge_partner in sensors else sensors[0]
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

    def bridge_sensors(self, st: StreamState) -> list[str]:
        """The sensors a camera can reach the microphone through: those aligned to it by impacts (no configured
        partner), fastest first (ties: the first to join)."""
        sess = self.sessions[st.session]
        sensors = [
            self.streams[n]
            for n in sess.members
            if n in self.streams
            and self.streams[n].meta.modality == "sensor"
            and self.streams[n].kin is not None
            and self.streams[n].imp is not None
            and not (sess.cfg.partners.get(n) or self.streams[n].meta.meta.get("sync_to"))
        ]
        return [x.name for x in sorted(sensors, key=lambda x: -x.meta.rate_hz)]

    def _next_bridge_sensor(self, st: StreamState) -> None:
        """A camera not locked yet takes the next of its bridge sensors at each hop (a sensor's object may be out
        of its view); each sensor keeps its own acquisition windows. Once locked it stays with its sensor."""
        if st.filter is None or st.filter.T is not None or st.meta.modality != "video":
            return
        sess = self.sessions[st.session]
        if not (self.cfg.content.sensor_bridge and self._impact_anchor(sess)):
            return
        if sess.cfg.partners.get(st.name) or st.meta.meta.get("sync_to"):
            return
        sensors = self.bridge_sensors(st)
        if len(sensors) < 2:
            return
        cur = self.partner_of(st)
        nxt = sensors[(sensors.index(cur) + 1) % len(sensors)] if cur in sensors else sensors[0]
        st.acquire_parked[cur] = st.acquire
        st.acquire = st.acquire_parked.pop(nxt, [])
        st.bridge_partner = nxt
        self._partners.pop(st.name, None)

    def _impact_anchor(self, sess: Session) -> str | None:
        """The session's anchor when it is a microphone with an impact envelope (what sensors bridge to)."""
        a = self.streams.get(sess.reference or sess.anchor)
        return a.name if a is not None and a.meta.modality == "audio" and a.imp is not None else None

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
            if c.enabled:
                self._hold_mapping(st)
            if c.enabled and st.extractor is not None and not self.is_anchor(st):
                self._next_bridge_sensor(st)
                if self.on_window is None:
                    self._content_hop(st)
                else:
                    self._traced_hop(st)
            est = self.estimate(st)
            if est is not None:
                self._note_pair(st, est)
                out.append(est)
        sess.next_hop_host_s = min((self.streams[n].next_hop_host_s for n in sess.members), default=now_s + c.hop_s)
        return out

    def clock_unmap(self, st: StreamState, t_ref: float) -> float | None:
        """Local time of reference time `t_ref` from clocks alone: the inverse of `clock_map`."""
        sess = self.sessions[st.session]
        if sess.reference == st.name:
            return t_ref
        if not st.clock.ready:
            return None
        h = t_ref
        if sess.reference:
            ref = self.streams.get(sess.reference)
            if ref is None or not ref.clock.ready:
                return None
            if ref.clock is st.clock:
                return t_ref
            h = ref.clock.to_host(t_ref)
        return float(st.clock.from_host(h))

    def _rate_partner(self, st: StreamState) -> StreamState | None:
        """The anchor `st` is locked to by raw audio, on a clock of its own, mapped by its clock alone: the
        partner whose device time each hop's estimate pairs with `st`'s (`content.audio_drift`)."""
        partner = self.streams.get(self.partner_of(st))
        f = st.filter
        if (
            not self.cfg.content.audio_drift
            or partner is None
            or not self.is_anchor(partner)
            or partner.clock is st.clock
            or f is None
            or f.T is None
            or not self._resolves_rate(st)
        ):
            return None
        return partner

    def _note_pair(self, st: StreamState, est: Estimate) -> None:
        partner = self._rate_partner(st)
        if partner is None or est.method not in ("content", "fused"):
            if st.filter is None or st.filter.T is None:
                st.pair_rate.clear()  # not locked (or the lock was dropped): what it paired may have been wrong
            return
        t_b = self.clock_unmap(partner, est.t_s)
        if t_b is None or not math.isfinite(t_b):
            return
        key = (partner.name, st.clock.resets, partner.clock.resets)
        st.pair_rate.add(est.t_local_s, t_b, key)

    def _content_drift_ppm(self, st: StreamState) -> float | None:
        """`st`'s drift against the reference from a microphone of its clock locked to the anchor by raw audio
        (`content.audio_drift`): the two device clocks' rate from `PairRate`, times the anchor's drift against
        the reference (its clock model's, or none where it is the reference); None without one."""
        for m in self.streams.values():
            if m.clock is not st.clock:
                continue
            partner = self._rate_partner(m)
            # pairs from before a jump or restart of either clock (not yet replaced) still give the rate: the
            # same oscillators
            if partner is None or m.pair_rate.key is None or m.pair_rate.key[0] != partner.name:
                continue
            r = m.pair_rate.rate()
            if r is None:
                continue
            return ((1 + r) * (1 + self._clock_rate(partner)) - 1) * 1e6
        return None

    def _clock_rate(self, st: StreamState) -> float:
        """`st`'s drift against its session's reference from the clock models alone, d t_local / d t_ref - 1
        (0 on the reference's own clock)."""
        sess = self.sessions[st.session]
        ref = self.streams.get(sess.reference) if sess.reference else None
        if ref is not None and ref.clock is st.clock:
            return 0.0
        b_r = ref.clock.drift if ref is not None else 0.0
        return (1 + b_r) / (1 + st.clock.drift) - 1

    def _hold_mapping(self, st: StreamState) -> None:
        """Between two hops the clock model may be refitted without a jump: its delay envelope moved (a network
        path that got faster or slower, a busy host, an old minimum leaving the fit's window). That moves the
        stream's clock mapping, level and slope, which content sync had put right.

        A content-locked stream's correction takes the level's move back at the newest local time of the last
        hop (without this an audio pair locked to 15 us kept a 0.3-0.9 ms error for tens of seconds: its GCC-PHAT
        lags, gated out by the tight lock, were taken for wrong peaks while its envelope agreed within its 1 ms
        floor), and the slope's move in the share its measurements fixed the correction's rate
        (`ContentFilter.hold`): a smoother that had taken a young clock's tilted slope into its rate kept that
        rate when the slope was refitted, and a locked microphone ran off at 100 ppm. A stream whose rate is
        still its prior gets the clock's new slope (from a longer fit than content's).

        While the clock model is young (`_clock_mature`) its level moves are news: a young envelope is still
        finding the path's least delay (after a jump they took a locked microphone's 2.4 ms error away; held,
        they kept it). Then the move is process noise (`ContentFilter.disturb`): the published uncertainty covers
        it and the measurements that follow decide. A stream not locked (or the anchor) is on its clock: its
        mapping did move, and once its model is mature the streams aligned to it move with it. Nothing is taken
        back across a jump, restart or rebase (the clock's own news)."""
        t = st.last_t_end_s
        # the mapping at the newest local time and one second before it: its level and its slope
        base = [self.clock_map(st, x) for x in (t - 1.0, t)] if math.isfinite(t) else [None]
        ok = all(b is not None and math.isfinite(b) for b in base)
        sess = self.sessions[st.session]
        ref = self.streams.get(sess.reference) if sess.reference else None
        clocks = self.clock_epoch(st)
        held, st.held = st.held, ((t, [float(b) for b in base], clocks) if ok else None)
        if held is None or not ok or held[2] != clocks:
            return
        now = [self.clock_map(st, x) for x in (held[0] - 1.0, held[0])]
        if any(x is None for x in now):
            return
        delta = float(now[1]) - held[1][1]
        slope = float(now[1]) - float(now[0]) - (held[1][1] - held[1][0])
        if (delta == 0.0 and slope == 0.0) or not (math.isfinite(delta) and math.isfinite(slope)):
            return
        f = st.filter
        T_ref = held[1][1]
        mature = self._clock_mature(st, ref)
        if f is not None and f.T is not None and not self.is_anchor(st):
            kept = delta if mature else 0.0
            kept_rate = f.hold(kept, slope, T_ref)
            if not mature:
                f.disturb(delta, slope if self._resolves_rate(st) else 0.0)
            if st.measurements:
                st.measurements = [(T, z + kept + kept_rate * (T - T_ref), sg) for T, z, sg in st.measurements]
        elif mature:
            self._propagate(st, -delta)

    def clock_epoch(self, st: StreamState) -> tuple[int, ...]:
        """The resets and rebases of `st`'s clock model and of the reference stream's: what changes when either
        model starts again."""
        sess = self.sessions[st.session]
        ref = self.streams.get(sess.reference) if sess.reference else None
        return (st.clock.resets, st.clock.rebases) + ((ref.clock.resets, ref.clock.rebases) if ref else ())

    def _resolves_rate(self, st: StreamState) -> bool:
        """Whether `st`'s content measurements resolve a rate a young clock's tilt would need: raw-audio pairs
        (GCC-PHAT, tens of microseconds). An envelope pair's windows share most of their error with their
        neighbours, and a freed rate fits that wander (docs/engine-log.md, "A young clock's refits")."""
        partner = self.streams.get(self.partner_of(st))
        return bool(
            self.cfg.content.raw_audio_refine and st.raw is not None and partner is not None and partner.raw is not None
        )

    @staticmethod
    def _clock_mature(st: StreamState, ref: StreamState | None) -> bool:
        """Whether the stream's clock model (and the reference stream's) rests on `PRIOR_MIN_SPAN_S` of
        observations: a younger delay envelope is still finding the path's least delay, and its refits are news
        (after a jump they took a locked microphone's 2.4 ms error away; held, they kept it)."""
        return all(
            (e := x.clock.estimate()) is not None and e.span_s >= PRIOR_MIN_SPAN_S for x in (st, ref) if x is not None
        )

    def _traced_hop(self, st: StreamState) -> None:
        """`_content_hop`, each window it measured passed to `on_window` (a locked window that found nothing and
        was searched again widely is two)."""
        locked = st.filter is not None and st.filter.T is not None
        self._traced = []
        try:
            self._content_hop(st)
        finally:
            traced, self._traced = self._traced, None
        f = st.filter
        corr = f.predict(f.T)[0] if f is not None and f.T is not None else None
        for T_start, T_end, L, m, heard, used in traced:
            against = "response" if heard else ""
            self.on_window(
                WindowTrace(
                    st.name, self.partner_of(st), T_start, T_end, L, m, locked, st.last_reason, corr, against, used
                )
            )

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

    def estimate(self, st: StreamState, _depth: int = 0) -> Estimate | None:
        sess = self.sessions[st.session]
        reference = sess.reference or HOST
        if not math.isfinite(st.last_t_end_s) or not st.clock.ready:
            return None
        # the newest sample's own stamp (the protocol's `t_s`), not the end of its chunk: at a clock jump, the end
        # of the last chunk before it is where the first sample stamped after the jump begins, and the truth there
        # is the new clock's (`make demo` scored cam2 1500 ms off there in 3 of 9 runs)
        t_local = st.last_t_end_s - (1.0 / st.meta.rate_hz if st.meta.rate_hz > 0 else 0.0)
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
        clock_ppm = self._clock_rate(st) * 1e6
        T = float(base)
        d, sig = self.correction(st, T)
        # what averaging windows cannot remove from a correction is published with it
        sig = math.hypot(sig, self._systematic_s(st))
        f = st.filter
        c = self.cfg.content
        age = T - st.last_accept_T
        content_live = f is not None and f.T is not None and age <= c.timeout_s and not self.is_anchor(st)
        if content_live or (f is not None and f.T is not None and not self.is_anchor(st)):
            t_ref = T - d
            rate = f.x[1] if f is not None and f.T is not None else 0.0
            if clock_settled or self._clock_slopes_kept(st, ref_est):
                # the clock models' drift (minutes of timestamps) is the better drift estimate: the smoother's
                # rate also absorbs the clock fit's early corrections, which later clock refits undo. After a
                # jump the model's offset is young but its slope is the one from before (the same oscillator)
                drift_ppm = clock_ppm
            else:
                # t_ref = base(t_local) - d(T): d t_ref / d t_local ~ (1 + clock slope) (1 - rate)
                drift_ppm = ((1 + clock_ppm * 1e-6) / (1 - rate) - 1) * 1e6
        else:
            t_ref = T
            drift_ppm = clock_ppm
        if not same_clock and not self.is_anchor(st):
            content_ppm = self._content_drift_ppm(st)
            if content_ppm is not None:
                drift_ppm = content_ppm
        t_ref -= self.published_shift(st, T)
        if content_live:
            method: Method = "fused" if clock_settled else "content"
            unc = sig
            # aligned to a partner other than the anchor (a camera to its sensor): only as good as the partner's
            # own mapping, which may still be on clock sync (capture latency unknown)
            pname = self.partner_of(st)
            partner = self.streams.get(pname)
            if partner is not None and not self.is_anchor(partner) and _depth < 8:
                pe = self.estimate(partner, _depth + 1)
                unc = math.hypot(unc, pe.uncertainty_s if pe is not None else c.prior_latency_s)
            if st.measured_epoch != self.clock_epoch(st):
                # measured on the clock model before a jump, restart or rebase: the new model's error is not in it
                unc = math.hypot(unc, clock_unc)
            # settled as EVENTS-sync.md says: settled clock models (a `content` estimate is not: after a jump or
            # restart its correction rests on a young clock model), 3 content updates and a published uncertainty
            # (the partner's included) of at most 5 ms; a camera locked to a sensor still on clock sync (115 ms) is not
            settled = clock_settled and f.updates >= 3 and unc <= _settle_limit_s(c)
            conf = c.confidence_scale_s / (c.confidence_scale_s + unc) * math.exp(-max(age, 0.0) / c.timeout_s)
        elif self.lead(st, T) is not None:
            # not locked yet: the lag the windows point at, as unsure as the clock's mapping (the lock's tests
            # decide what is known)
            method = "lead"
            unc = math.hypot(clock_unc, c.prior_latency_s / math.sqrt(3.0))
            settled = False
            conf = min(0.25, c.confidence_scale_s / (c.confidence_scale_s + unc)) * (1.0 if clock_settled else 0.2)
        else:
            method = "clock"
            # timestamps cannot see capture latency: unless content measured it once, it is unknown
            lat_unc = 0.0 if self.is_anchor(st) and not sess.reference else c.prior_latency_s / math.sqrt(3.0)
            if f is not None and f.T is not None:
                lat_unc = min(lat_unc, sig)
            unc = math.hypot(clock_unc, lat_unc)
            # the same rule: a settled clock model whose capture latency is unknown (115 ms) is not known to 5 ms,
            # and content sync will still move it by that latency when it locks. Without content sync for the
            # stream (or for the anchor, which the others are aligned to) nothing will: the settled clock model is
            # final (its uncertainty still says what is unknown)
            content_can_move = c.enabled and st.extractor is not None and not self.is_anchor(st)
            settled = clock_settled and (unc <= _settle_limit_s(c) or not content_can_move)
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
            partner="" if self.is_anchor(st) else self.partner_of(st),
        )


def _settle_limit_s(c: ContentConfig) -> float:
    """The published uncertainty up to which an estimate may be flagged settled (EVENTS-sync.md)."""
    return max(4 * c.grid_s, 0.005)


def _append_window(buf: TimedBuffer, times: np.ndarray, values: np.ndarray, window_s: float, c: ContentConfig) -> None:
    """Append to a buffer of which only the newest window (and the widest search around it) is ever used, and
    trim it to that (in steps, not at every chunk)."""
    buf.append(times, values)
    keep_s = window_s + 2.0 * c.prior_latency_s + 2.0
    if buf.first_time < times[-1] - 1.5 * keep_s:
        buf.trim_before(times[-1] - keep_s)
