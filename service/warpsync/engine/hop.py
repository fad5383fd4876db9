"""Content sync's hop: one window of a stream aligned with its partner's, and what the smoother does with it.

`ContentHop` is the half of `SyncEngine` that runs every hop for each stream with a content partner: it cuts the
tails of both envelope histories, maps them onto the reference timeline through the current estimates, measures
the lag (cross-correlation, per-cell weighting for a sensor on a camera, GCC-PHAT refinement for audio pairs),
decides acquisition, and feeds the stream's `ContentFilter`. The state it works on (stream buffers, clock
models, filters) belongs to `SyncEngine` (`engine/session.py`); see that module for the mapping it corrects.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .coincidence import coincidence
from .content import (
    LagMeasurement,
    TimedBuffer,
    coarse_offset,
    frame_smooth,
    gaussian_highpass,
    gaussian_smooth,
    gaussian_smooth_columns,
    gcc_phat_lag,
    measure_lag,
    measure_lag_cells,
    resample,
)
from .events import event_lags, robust_window_lag
from .response import ContactResponse

if TYPE_CHECKING:
    from .config import ContentConfig, EngineConfig
    from .session import StreamState

log = logging.getLogger(__name__)

RAW_WINDOW_S = 2.0
"""Length of the raw-audio window refined by GCC-PHAT, seconds."""
SPAN_SLACK_HOPS = 0.25
"""How much less than its span, in hops, the agreeing windows of a first lock may span (`ContentHop._acquired`)."""
RESPONSE_RELEARN_S = 0.002
"""A sensor's correction that moves by more than this (a re-lock) makes it learn its contact response again."""
FULL_WINDOW = 0.99
"""A window holding at least this share of its length of both streams' data is full: only a full window searches a
lock beyond its range (`ContentConfig.audit_search`)."""
AUDIT_REASONS = ("low_corr", "edge", "ambiguous", "broad")
"""Why a locked window around the lock can fail while the streams have content: then the search widens
(`ContentConfig.audit_search`)."""
EVENT_HALF_S = 0.08
"""One event of a camera-sensor window is compared over this much either side of it, seconds (`engine.events`)."""
EVENT_SEARCH_S = 0.02
"""and searched this far either side of the window's lag, seconds (at least two steps of the cells' grid)."""
EVENT_MIN_FRAC = 0.2
"""An event is a peak of the sensor's side at least this fraction of the way from its median to its maximum."""


@dataclass(frozen=True)
class WindowTrace:
    """One window a content hop measured, for `SyncEngine.on_window` (diagnostics: `tools/engine/trace_windows.py`)."""

    stream: str
    partner: str
    T_start: float
    """The window on the reference timeline, seconds (through both streams' mappings at the time)."""
    T_end: float
    search_s: float
    """The lag range searched, +- seconds around the current mapping."""
    measurement: LagMeasurement
    """The stream's lag against its partner (the same convention whichever of the two was measured against the
    other); `reason` ``split``: informative as a whole, its halves disagreeing."""
    locked: bool
    """Whether the stream's content sync was locked when the hop began."""
    outcome: str
    """What the hop did: ``""`` (accepted by the smoother, or the first lock), ``acquiring``, ``outlier``, or why
    the window was not informative (the stream's last reason after the hop)."""
    correction_s: float | None
    """The stream's content correction after the hop (None while not locked)."""
    against: str = ""
    """What the partner's side of the window was: ``""`` its own envelope, ``response`` the impacts of the
    microphone it is locked to through its learned contact response (a camera on a sensor,
    `content.contact_response`)."""
    used: bool = True
    """Whether the hop measured this window for itself. A hop stops at the first informative window of its
    sources (through the response, then the sensor itself; a locked camera measures both, `content.source_conflict`);
    with `SyncEngine.trace_every_window` the others are measured too, for the trace only (``used = False``), and
    change nothing."""


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
    heard: bool = False
    """The sensor's side is the microphone's impacts through the sensor's contact response."""


LAST_WORD_SIGMAS = 3.0
"""How many of their combined sigmas a window and a silent source's last word (`content.source_memory`) must lie
apart, beyond a quarter frame, for the window to be held out: the last word is older than a window of the same
hop, so it holds a window out only where the two clearly disagree (docs/engine-log.md, "A source's last word")."""


class ContentHop:
    """The content-sync hop of `SyncEngine`, a mixin: it works on the engine's `streams` through its mappings
    (`to_ref`, `clock_map`, `correction`) and pairings (`partner_of`), all defined in `engine/session.py`."""

    cfg: EngineConfig
    streams: dict[str, StreamState]
    record: bool
    _traced: list | None = None  # the hop's windows, while `on_window` is set (`SyncEngine._traced_hop`)
    trace_every_window: bool

    def _content_hop(self, st: StreamState) -> None:
        c = self.cfg.content
        partner = self.streams.get(self.partner_of(st))
        if partner is None or partner.extractor is None or len(st.env) < 4 or len(partner.env) < 4:
            st.last_reason = "no_data"
            return
        # video and sensors are compared like with like: change of motion energy vs acceleration magnitude;
        # sensors and microphones: the starts of contacts (impact envelopes)
        kinetic = st.kin is not None and partner.kin is not None and st.meta.modality != partner.meta.modality
        impact = _impact_pair(st, partner)
        s_env = st.imp if impact else st.kin if kinetic else st.env
        p_env = partner.imp if impact else partner.kin if kinetic else partner.env
        if len(s_env) < 4 or len(p_env) < 4:
            st.last_reason = "no_data"
            return
        if impact and c.contact_response and st.kin is not None:
            self._learn_response(st, partner)
        # fewer shared events per second across modalities (an IMU feels one object, a camera sees all): a longer window
        window_s = c.impact_window_s if impact else c.kinetic_window_s if kinetic else c.window_s
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
            d_old, _ = f.predict(T_end)
            f.reset()
            self._propagate(st, -d_old)
        # a camera aligned to a sensor is measured as the sensor against the camera, the lag negated: the
        # measurement is the same relation between the two mappings
        swap = kinetic and st.meta.modality == "video" and partner.meta.modality == "sensor"
        ms, mp = (partner, st) if swap else (st, partner)
        # a sensor against a camera: the camera's cells weighted by how they correlate with the sensor (it feels
        # one object; the camera sees them all)
        cells = (
            kinetic
            and c.cell_weighting
            and ms.meta.modality == "sensor"
            and mp.cells is not None
            and len(mp.cells) >= 4
        )
        locked = f is not None and f.T is not None
        _, sig_pred = self.correction(st, T_end)
        L_prior = c.prior_latency_s + 5 * max(st.clock.estimate().uncertainty_s, partner.clock.estimate().uncertainty_s)
        if not locked:
            L = L_prior
        else:
            L = min(max(c.min_search_s, c.search_sigmas * sig_pred), c.prior_latency_s)
            if kinetic and ms.meta.modality == "sensor" and mp.meta.modality == "video":
                # at least the main lobe of a velocity change seen by the camera (1 + B frames: the sensor's
                # frame weighting): narrower, a lock a frame off sees the truth only at the range's edge and
                # never moves
                L = max(L, (1 + self._motion_frames(mp)) / mp.meta.rate_hz)
        w = _Window(st, partner, kinetic, cells, span, s_t, s_v, p_t, p_v, ts, tp, T_start, n)
        mws = [_Window(partner, st, kinetic, cells, span, p_t, p_v, s_t, s_v, tp, ts, T_start, n) if swap else w]
        heard = self._through_response(partner, T_start, T_end, L_prior) if swap and cells else None
        if heard is not None:
            # a camera on a sensor that has learned its contact response: first every contact the microphone
            # hears, through that response (the sensor feels one object, the camera sees them all), then, where
            # that finds nothing (a camera that sees few of the objects the microphone hears), the sensor itself
            mws.insert(
                0,
                _Window(
                    partner, st, kinetic, cells, span, heard[0], heard[1], s_t, s_v, heard[0], ts, T_start, n, True
                ),
            )

        tried: list[LagMeasurement] = []
        # a locked camera with two sources (through the response, against the sensor itself) compares them
        two = locked and c.source_conflict and len(mws) > 1
        quarter = 0.25 / mp.meta.rate_hz
        T_mid = T_start + 0.5 * (T_end - T_start)
        d_mid = self.correction(st, T_mid)[0] if two else 0.0

        def said(mw: _Window, x: LagMeasurement, L_s: float) -> None:
            # a source's informative lag at the hop's own search, as a correction (`content.source_memory`)
            if two and x.informative and L_s == L:
                st.source_last[mw.heard] = (T_end, d_mid + x.lag_s, max(x.sigma_s, c.envelope_sigma_floor_s))

        def apart(x: LagMeasurement, sigma_s: float) -> float:
            # how far a window's lag and another word on it may lie apart and still agree
            return max(quarter, LAST_WORD_SIGMAS * math.hypot(max(x.sigma_s, c.envelope_sigma_floor_s), sigma_s))

        def contradicted(mw: _Window, x: LagMeasurement, peer: LagMeasurement | None, L_s: float) -> bool:
            # the other source says nothing at this hop: a window more than a quarter frame from the lock is
            # held against that source's last word, which rested on most of the same data, where the two lie
            # further apart than a quarter frame and than their sigmas explain. A window of the wide search
            # (`audit_search`) too, unless the other source's own peak of that search (`peer`, not informative)
            # lies with it: a step of the truth moves both sources' peaks, a coincidence in one source does not
            # (docs/engine-log.md, "The last word in the wide search")
            last = st.source_last.get(not mw.heard)
            if not two or last is None or abs(x.lag_s) <= quarter or T_end - last[0] > c.source_memory * window_s:
                return False
            if abs(d_mid + x.lag_s - last[1]) <= apart(x, last[2]):
                return False
            if L_s == L:
                return True
            if not c.wide_last_word:
                return False
            if peer is None or not (math.isfinite(peer.lag_s) and math.isfinite(peer.sigma_s)):
                return True
            return abs(peer.lag_s - x.lag_s) > apart(x, max(peer.sigma_s, c.envelope_sigma_floor_s))

        def measure(L_s: float) -> LagMeasurement:
            for i, mw in enumerate(mws):
                m = self._measure(mw, L_s, sig_pred, locked, swap)
                tried.append(m)
                if m.informative:
                    rest = mws[i + 1 :]
                    other = None
                    if rest and two:
                        # a locked camera through the response: asked of the sensor itself too, and where the two
                        # disagree by more than the camera's quarter frame, neither is taken
                        other = self._measure(rest[0], L_s, sig_pred, locked, swap)
                        said(rest[0], other, L_s)
                        rest = rest[1:]
                    # the other source's window at this search: measured after this one, or before it
                    peer = other if other is not None else (tried[-2] if i > 0 else None)
                    if other is not None and other.informative and abs(other.lag_s - m.lag_s) > quarter:
                        said(mw, m, L_s)
                        m = dataclasses.replace(m, informative=False, reason="conflict")
                    elif (other is None or not other.informative) and contradicted(mw, m, peer, L_s):
                        m = dataclasses.replace(m, informative=False, reason="conflict")
                    else:
                        said(mw, m, L_s)
                    if self._traced is not None and self.trace_every_window:
                        for unneeded in rest:
                            self._measure(unneeded, L_s, sig_pred, locked, swap, used=False)
                    break
            return m

        m = measure(L)
        if locked:
            st.leads.clear()
        elif c.publish_lead:
            # what the published lead rests on when no window counts towards the lock yet: a window whose halves
            # disagreed, or whose peak stands out but is broader than the content explains, still has a
            # whole-window lag, right more often than not (`SyncEngine.lead`)
            lm = next((x for x in tried if x.informative or _lead_only(x, c)), None)
            if lm is not None:
                leads = st.leads.setdefault(partner.name, [])
                leads.append((T_end, lm.lag_s, max(lm.sigma_s, c.envelope_sigma_floor_s)))
                del leads[:-3]
        # a window that holds its whole length of data (not one growing again after a clock jump or restart
        # cleared the buffers, or after the stream started)
        full = T_end - T_start >= FULL_WINDOW * window_s
        # nothing matches around the lock though the streams have content (`audit_search`): search as widely as
        # for a first lock. A lag found there with a first lock's prominence goes to the smoother: beyond its gate
        # an outlier, and consecutive ones re-lock (a capture latency that changed by more than the locked search,
        # a lock that was wrong). Every window of a locked audio pair is searched so too (`far_peak_search`): a
        # latency that stepped beyond the locked search leaves a local peak inside it (the old lag while the older
        # part of the window holds the louder events), so the wider peak is taken where it lies beyond the locked
        # search and correlates better. Only with a full window:
        # after cam2's clock jump on default-rig seed 1 (with stalls), windows of 4-8 s peaked 141 ms off through
        # the sensor's response, and the first of them moved a confirmed lock there
        audit = c.audit_search and not m.informative and m.reason in AUDIT_REASONS
        far = c.far_peak_search and m.informative and st.meta.modality == partner.meta.modality == "audio"
        if locked and full and L < L_prior and (audit or far):
            wide = measure(L_prior)
            if (
                wide.informative
                and wide.prominence >= c.acquire_prominence
                and (audit or (abs(wide.lag_s) > L and wide.corr > m.corr))
            ):
                m = wide
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
            # the run of gated GCC lags is of consecutive hops
            gated = st.gcc_gated if st.gcc_gated and T_end - st.gcc_gated[-1][0] <= 1.5 * c.hop_s else []
            st.gcc_gated = []
            sig_p = self.correction(st, T_mid)[1] if f.T is not None else math.inf  # the lock's sigma
            if r is not None:
                if f.T is not None:
                    # locked: a GCC peak the smoother would gate out while the envelope agrees with the lock is
                    # a wrong GCC peak (one loud event can make it persist for a whole raw window), not news;
                    # unless such peaks agree with each other for longer than a raw window: then the mapping
                    # moved by less than the envelope resolves, and they go to the smoother (which re-locks on
                    # consecutive outliers that agree)
                    g_out = abs(r[0]) > c.gate_sigmas * math.hypot(sig_p, r[1])
                    e_in = abs(lag) <= c.gate_sigmas * math.hypot(sig_p, sigma)
                    if g_out and e_in:
                        run = [x for x in gated if abs(x[1] - r[0]) <= c.gate_sigmas * math.hypot(x[2], r[1])]
                        st.gcc_gated = (run if len(run) == len(gated) else []) + [(T_end, r[0], r[1])]
                        if T_end - st.gcc_gated[0][0] > RAW_WINDOW_S:
                            lag, sigma = r
                    else:
                        lag, sigma = r
                else:
                    lag, sigma = r
            if f.T is not None and abs(lag) > c.gate_sigmas * math.hypot(sig_p, sigma):
                # locked, and the envelope (or GCC around it) puts the mapping elsewhere: searched from the
                # lock to beyond that lag, the raw signals' sharpest GCC peak may still be at the lock. Then
                # the lock stands: an envelope can peak off for seconds (the default rig at 846 s: 13 ms
                # for four windows, which re-locked a camera microphone 13 ms off for 3.5 s, while GCC
                # peaked at the lock at 60-240 times its mean). A real step moves the raw peak as well.
                r0 = self._refine_raw(st, partner, T_end, 0.0, abs(lag) + max(3 * sigma, 0.0005))
                if r0 is not None and abs(r0[0]) <= c.gate_sigmas * math.hypot(sig_p, r0[1]):
                    lag, sigma = r0
        d_now, _ = self.correction(st, T_mid)
        z = d_now + lag
        if self.record:
            st.measurements.append((T_mid, z, sigma))
        if f.T is None:
            z = self._acquired(w, m, z, sigma, T_end, T_mid, window_s)
            if z is None:
                st.last_reason = "acquiring"
                return
        # re-locking needs as much new data as the first lock: longer windows overlap more between hops, and
        # consecutive outliers must span `acquire_span_s` at least (3 hops of a 4 s audio window share most of
        # their data: one loud event re-locked a microphone 13 ms off on seed 14 of the default rig)
        f.relock_hops = max(
            c.relock_hops, math.ceil(c.relock_hops * window_s / c.window_s), math.ceil(c.acquire_span_s / c.hop_s) + 1
        )
        d_old = f.predict(T_mid)[0]
        confirmed = f.updates >= c.confirm_updates
        # windows one hop apart share (window - hop) of their data and so most of their error: the smoother
        # weighs them as the independent data they hold; the gate still holds each to its own sigma
        overlap = c.overlap_sigma and (kinetic or impact)
        accepted = f.update(T_mid, z, sigma, sigma * math.sqrt(window_s / c.hop_s) if overlap else None)
        if accepted:
            # a sensor's confirmed lock against the microphone that re-locks: the sensor's own link changed (its
            # capture latency), which the streams locked to it do not share ("A sensor's own latency change")
            own = impact and confirmed and f.relocked
            self._propagate(st, f.predict(T_mid)[0] - d_old, own=own)
            st.last_accept_T = T_end
            st.measured_epoch = self.clock_epoch(st)
            st.corr_ema = m.corr if st.corr_ema == 0 else 0.8 * st.corr_ema + 0.2 * m.corr
            st.last_reason = ""
        else:
            st.last_reason = "outlier"

    def _propagate(self, st: StreamState, delta_s: float, _depth: int = 0, own: bool = False) -> None:
        """`st`'s correction moved by `delta_s`: the streams aligned to it were measured against its old mapping,
        so their corrections, re-lock candidates, acquisition windows and recorded measurements (offline) move
        with it (a camera aligned to a sensor keeps what it measured when the sensor locks to the microphone), and
        so on down the chain. With `own` (a sensor's confirmed lock that re-locked: its own capture latency
        changed) the streams locked to it keep their corrections; the rest moves as before."""
        if delta_s == 0.0 or not math.isfinite(delta_s) or _depth > 8:
            return
        if st.response is not None and abs(delta_s) > RESPONSE_RELEARN_S:
            # learned on the old mapping: learn again from the buffers, through the new one
            st.response.reset()
            st.response_T = -math.inf
        for other in self.streams.values():
            if other is st or other.session != st.session:
                continue
            if st.name in other.acquire_parked:
                # a camera's windows against this sensor, parked while it measures against another one
                parked = other.acquire_parked[st.name]
                other.acquire_parked[st.name] = [(T, z + delta_s, s, sup) for T, z, s, sup in parked]
            if st.name in other.leads:
                other.leads[st.name] = [(T, z + delta_s, s) for T, z, s in other.leads[st.name]]
            if self.partner_of(other) != st.name:
                continue
            if own and other.filter is not None and other.filter.T is not None:
                # locked against the sensor as it was before its link changed: that correction stands
                continue
            if other.filter is not None and other.filter.T is not None:
                other.filter.shift(delta_s)
            other.acquire = [(T, z + delta_s, s, sup) for T, z, s, sup in other.acquire]
            other.source_last = {k: (T, z + delta_s, sg) for k, (T, z, sg) in other.source_last.items()}
            if other.measurements:
                # offline: the measurements the robust fit sees are in the same frame
                other.measurements = [(T, z + delta_s, s) for T, z, s in other.measurements]
            self._propagate(other, delta_s, _depth + 1)

    def _acquired(
        self, w: _Window, m: LagMeasurement, z: float, sigma: float, T_end: float, T_mid: float, window_s: float
    ) -> float | None:
        """Before the first lock: the correction to lock on once enough windows agree, else None (acquiring)."""
        c = self.cfg.content
        st, partner, cells = w.st, w.partner, w.cells
        # acquisition: lock only on `acquire_hops` informative windows that agree and span at least
        # `acquire_span_s` (consecutive windows overlap: agreement between them alone is weak evidence; a
        # chance correlation does not survive new data, the truth does)
        if m.prominence < c.acquire_prominence and m.chance > c.acquire_coincidence:
            return None
        # a window's new data is measured at its end: while the first windows still grow, their middles
        # advance half as fast. For a sensor on a camera's cells, whose windows' halves already agreed on their
        # own, the span counts that new data. Other pairs keep the middles: an audio pair then locked on
        # growing windows, and their GCC-PHAT lags (30 us each, middles 0.25 s apart) gave the smoother a
        # spurious rate of 70 ppm (test_silence_falls_back_to_clock_and_confidence_says_so)
        split_tested = (cells or _impact_pair(st, partner)) and c.acquire_split
        T_acq = T_end if split_tested else T_mid
        # (a window carried by one half alone, the other half without content, says which half: `support`)
        st.acquire.append((T_acq, z, sigma, m.support))
        # the span scales with the window: the same fraction of new data (an 8 s window needs 4 s); across
        # modalities without a matched feature (video motion vs audio onsets: fewer shared events, different
        # shapes) the agreeing windows must not overlap at all
        span_needed = c.acquire_span_s * window_s / c.window_s
        if split_tested:
            # each window's halves already agreed on their own, so the windows' overlap no longer makes their
            # agreement weak evidence: 1 s of new data (two hops) confirms it, where the scaled span waited 4 s
            span_needed = c.acquire_split_span_s
        if not matched_features(st, partner):
            span_needed = max(span_needed, window_s)
        st.acquire = [a for a in st.acquire if a[0] >= T_acq - span_needed - window_s]
        agree = [a for a in st.acquire if lags_agree(z, sigma, a[1], a[2], c.acquire_tolerance_s)]
        # a span is whole hops of data: a hop's end moves with the device clock's drift and the chunking (two hops
        # of a camera 40 ppm fast span 0.99992 s of reference time), so a quarter hop short still counts
        if len(agree) < c.acquire_hops or T_acq - agree[0][0] < span_needed - SPAN_SLACK_HOPS * c.hop_s:
            return None
        supports = [a[3] for a in agree]
        if all(x is not None for x in supports) and not _disjoint_pair(supports):
            # every agreeing window was carried by one half alone: the lag must show in two stretches of data
            # that share nothing, or one event in the stretch they share could carry them all
            return None
        st.acquire.clear()
        return float(np.median([a[1] for a in agree]))

    def _measure(
        self, w: _Window, L: float, sig_pred: float, locked: bool, negate: bool = False, used: bool = True
    ) -> LagMeasurement:
        """One window's lag within +-L seconds of the current mapping (`negate`: of the partner against the
        stream, `w` built with their roles swapped); `used` False: measured for the trace only."""
        m = self._measure_window(w, L, sig_pred, locked)
        if negate:
            m = dataclasses.replace(m, lag_s=-m.lag_s, events=tuple((t, -lag, c) for t, lag, c in m.events))
        if self._traced is not None:
            self._traced.append((w.T_start, w.T_start + w.n * self.cfg.content.grid_s, L, m, w.heard, used))
        return m

    def _measure_window(self, w: _Window, L: float, sig_pred: float, locked: bool) -> LagMeasurement:
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
        impact = _impact_pair(st, partner)
        sm = (self.cfg.features.impact_smooth_s if impact else self.cfg.features.smooth_s) / g
        gap_p = _max_gap(p_t, g)
        gap_s = _max_gap(s_t, g)
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

        def new_lag(m: LagMeasurement) -> bool:
            """Whether `m` would start a lock, or count towards a re-lock (an outlier to the current one)."""
            if locked:
                return abs(m.lag_s) > c.gate_sigmas * math.hypot(sig_pred, max(m.sigma_s, c.envelope_sigma_floor_s))
            return m.prominence >= c.acquire_prominence or m.chance <= c.acquire_coincidence

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
            search_cells, search_cand = ref_cells, cand
            if c.acquire_highpass_s > 0 and not locked:
                # before the first lock, without their slow part: a hump of slow motion peaks anywhere in the
                # search range, a velocity change where it happened (`acquire_highpass_s`); the weights found here
                # combine the whole cells for the refinement below
                search_cells = gaussian_highpass(ref_cells, c.acquire_highpass_s / (k * g))
                search_cand = gaussian_highpass(cand, c.acquire_highpass_s / g)
            search_cand = search_cand[::k]
            m, weights = cell_lag(search_cells, search_cand)
            if m.informative and k > 1:
                m = self._refine_cells(m, weights, tpc, pc_v, grid, gap_p, cand, M, k, locked)
            # before the first lock, a half whose best peak is a broad hump elsewhere is searched again around the
            # whole window's lag, as a locked window would be (the main lobe of a velocity change, 1 + B frames);
            # an outlier to a lock keeps the plain test (a looser first version applied to outliers too re-locked
            # seed 12 of the default rig 45 ms off: overriding a lock takes more than making the first one)
            Mn = math.ceil((1 + self._motion_frames(partner)) / (partner.meta.rate_hz * k * g))
            near = (
                (functools.partial(cell_lag, max_lag_s=Mn * k * g), Mn, k * g)
                if c.split_broad_near and not locked
                else None
            )
            # a lag that would start a lock (or count towards a re-lock, being an outlier to the current one) must
            # show in both halves of the window on their own
            if (
                m.informative
                and c.acquire_split
                and new_lag(m)
                and not _halves_agree(
                    cell_lag, search_cells, search_cand, M // k, m.lag_s, 0.5 / partner.meta.rate_hz, near=near
                )
            ):
                m = dataclasses.replace(m, informative=False, reason="split")
            return m
        lag = functools.partial(
            measure_lag,
            grid_s=g,
            max_lag_s=M * g,
            min_activity=c.min_activity,
            min_corr=c.impact_min_corr if impact else c.min_corr,
            min_prominence=c.min_prominence,
            min_peakiness=c.min_peakiness,
        )
        m = lag(ref, cand)
        if impact and m.informative and not locked and c.acquire_coincidence > 0:
            # how many of the sensor's contacts the microphone heard at this lag, against chance
            j = min(M, max(-M, round(m.lag_s / g)))
            m = dataclasses.replace(m, chance=coincidence(ref, cand, M, j, g)[2])
        if impact and m.informative and c.acquire_split and new_lag(m):
            # a sensor's impacts against a microphone's, as a camera's cells: the halves share no data
            tol = c.acquire_tolerance_s
            lock_tol = tol if locked and c.step_halves else None
            v = _half_verdicts(lambda r, cc: (lag(r, cc), None), ref, cand, M, m.lag_s, tol, lock_tol_s=lock_tol)
            if all(x in HALF_AGREES for x in v):
                return m
            if v == ["lock", "carries"]:
                # a step: the older half still at the lock, the newer one at the new lag on its own
                return m
            if not locked and c.acquire_one_sided and sorted(v) == ["carries", "empty"]:
                # one half finds the lag on its own, the other has nothing to say (the sensor's object made no
                # contact there): the window counts for a first lock, carried by that half (see `_acquired`),
                # or as a whole where the lag rests on more coinciding contacts than chance lines up
                if m.chance <= c.acquire_coincidence:
                    return m
                h, i = n // 2, v.index("carries")
                return dataclasses.replace(m, support=(T_start + i * h * g, T_start + (i + 1) * h * g))
            m = dataclasses.replace(m, informative=False, reason="split")
        return m

    def _learn_response(self, st: StreamState, mic: StreamState) -> None:
        """A sensor locked to a microphone learns its contact response (`engine.response`): its kinetic envelope
        against the microphone's impacts, both through their current mappings, from where it stopped learning to
        the newest data both have. Only while locked: unlocked, the two are not on one timeline."""
        f = st.filter
        if f is None or f.T is None or mic.imp is None or len(mic.imp) < 4 or len(st.kin) < 4:
            return
        g = self.cfg.content.grid_s
        if st.response is None:
            st.response = ContactResponse(g)
        r = st.response
        # only what has not been learned yet (and a second before it, for the response's lags and the resampling)
        last = self.to_ref(st, np.array([st.kin.last_time]))
        if last is None:
            return
        span = min(self.cfg.content.history_s, float(last[0]) - st.response_T + 1.0)
        k_t, k_v = _tail(st.kin, span)
        i_t, i_v = _tail(mic.imp, span)
        tk, ti = self.to_ref(st, k_t), self.to_ref(mic, i_t)
        if tk is None or ti is None:
            return
        T0 = max(st.response_T, tk[0], ti[0] + r.hi * g)
        n = int((min(tk[-1], ti[-1] + r.lo * g) - 3 * self.cfg.features.smooth_s - T0) / g)
        if n < int(self.cfg.content.hop_s / g):
            return
        y = resample(tk, k_v, T0 + g * np.arange(n), _max_gap(k_t, g))
        r.add(resample(ti, i_v, r.input_times(T0, n), _max_gap(i_t, g)), y)
        st.response_T = T0 + n * g

    def _through_response(
        self, sensor: StreamState, T_start: float, T_end: float, L: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The impacts of the microphone `sensor` is locked to, through the sensor's learned contact response, on
        the grid from `L` (and a margin) before `T_start` to as far after `T_end`: (times, values). None until the
        response rests on `content.response_min_s` of learning, or while the sensor is not locked."""
        c = self.cfg.content
        r = sensor.response
        f = sensor.filter
        if not c.contact_response or r is None or r.learned_s < c.response_min_s or f is None or f.T is None:
            return None
        mic = self.streams.get(self.partner_of(sensor))
        if mic is None or mic.imp is None or len(mic.imp) < 4:
            return None
        i_t, i_v = _tail(mic.imp, T_end - T_start + 2 * L + 2.0)
        ti = self.to_ref(mic, i_t)
        if ti is None:
            return None
        g = c.grid_s
        m = math.ceil(L / g) + 8
        n = round((T_end - T_start) / g) + 2 * m
        t0 = T_start - m * g
        x = resample(ti, i_v, r.input_times(t0, n), _max_gap(i_t, g))
        return t0 + g * np.arange(n), r.apply(x)

    def _motion_frames(self, st: StreamState) -> int:
        """How many frame intervals the motion energy behind a camera's kinetic envelope spans: the configured
        baseline for raw frames, one for streams that send motion vectors or embeddings."""
        raw = st.meta.modality == "video" and len(st.meta.shape) >= 2
        return self.cfg.features.motion_baseline_frames if raw else 1

    def _refine_cells(self, m, w, t_cells, cells, grid, gap_s, cand, M: int, k: int, locked: bool):
        """The coarse cell lag refined on the fine grid: the cells combined with their weights at the peak (at
        the camera's own frame times, so one envelope is resampled), cross-correlated with the candidate within
        two coarse steps of the coarse lag. Keeps the coarse measurement if the fine peak sits at that edge.
        Once `locked`, with `content.event_lags`, the window's events are then measured one at a time."""
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
        m = dataclasses.replace(m, lag_s=i0 * g + fine.lag_s, sigma_s=fine.sigma_s)
        c = self.cfg.content
        if not c.event_lags or not locked:
            # before the first lock the window's lag goes through acquisition's own tests (both halves, windows
            # that agree), which were measured on the cross-correlation peak; the events there moved settling
            # both ways on seeds 1-56 (4 seeds sooner, 6 later, 5.3 -> 6.0 s median)
            return m
        # the window's events one at a time (`engine.events`): a velocity change of the sensor's object spans
        # 80 ms either side of its middle, and one event's timing is searched 20 ms around the window's lag
        lags, cors, places = event_lags(
            comb,
            cand,
            M,
            m.lag_s / g,
            half=round(EVENT_HALF_S / g),
            search=max(2 * k, round(EVENT_SEARCH_S / g)),
            min_frac=EVENT_MIN_FRAC,
            min_corr=c.event_min_corr,
        )
        lag, sigma = robust_window_lag(m.lag_s, m.sigma_s, lags * g, cors, c.event_sigma_s)
        events = tuple(zip((grid[0] + places * g).tolist(), (lags * g).tolist(), cors.tolist(), strict=True))
        return dataclasses.replace(m, lag_s=lag, sigma_s=sigma, events=events)

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


def _tail(buf: TimedBuffer, span_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The (times, values) of `buf` from `span_s` before its newest time on (a view, no copy)."""
    t = buf.times
    i = int(np.searchsorted(t, t[-1] - span_s, side="left")) if len(t) else 0
    return t[i:], buf.values[i:]


HALF_AGREES = ("carries", "agrees")
HALF_EMPTY = ("low_corr", "ambiguous", "silent", "flat")
"""Reasons a half window has nothing to say about a lag (no shared content), as opposed to pointing elsewhere."""


def _half_verdicts(
    measure, ref: np.ndarray, cand: np.ndarray, M: int, lag_s: float, tol_s: float, near=None, lock_tol_s=None
) -> list[str]:
    """What each half of a window (the first and the second half of `ref`, each with its own stretch of `cand` and
    the same search range of `M` steps) says of the whole window's `lag_s` on its own (`measure(ref, cand)` returns
    ``(LagMeasurement, _)``): ``carries`` (an informative peak within `tol_s` of it), ``agrees`` (a peak there,
    not informative itself), ``empty`` (no peak to speak of: `HALF_EMPTY`) or ``other`` (a peak elsewhere, or at
    the range's edge). The halves share no data. With `lock_tol_s` (a locked window), a half that does not carry
    `lag_s` but peaks informatively within `lock_tol_s` of the lock (lag 0) is ``lock``.

    `near` = ``(measure_near, Mn, grid_s)``: a half whose best peak is ``broad`` (a hump of slow motion, which
    locates nothing) and away from `lag_s` is measured again by `measure_near` over ``+-Mn`` steps of `grid_s`
    around `lag_s`; it carries the lag if it peaks informatively there within ``tol_s / 2`` (a narrow search
    finds some peak near any lag: accepting a non-informative one, or one half a frame off, let chance lock a
    test rig's camera 236 ms off)."""
    h = len(ref) // 2
    out = []
    for lo in (0, h):
        m, _ = measure(ref[lo : lo + h], cand[lo : lo + h + 2 * M])
        if m.reason not in ("silent", "flat", "edge") and abs(m.lag_s - lag_s) <= tol_s:
            out.append("carries" if m.informative else "agrees")
        elif lock_tol_s is not None and m.informative and abs(m.lag_s) <= lock_tol_s:
            out.append("lock")
        elif m.reason == "broad" and near is not None and _carries_near(near, ref, cand, lo, h, M, lag_s, tol_s / 2):
            out.append("carries")
        else:
            out.append("empty" if m.reason in HALF_EMPTY else "other")
    return out


def _carries_near(near, ref: np.ndarray, cand: np.ndarray, lo: int, h: int, M: int, lag_s: float, tol_s: float) -> bool:
    """Whether the half of `ref` starting at row `lo` peaks informatively within `tol_s` of `lag_s` when searched
    only near it (`_half_verdicts`' `near`)."""
    measure_near, Mn, grid_s = near
    j = round(lag_s / grid_s)
    if abs(j) + Mn > M:
        return False
    m, _ = measure_near(ref[lo : lo + h], cand[lo + M + j - Mn : lo + M + j + h + Mn])
    return m.informative and abs(m.lag_s + j * grid_s - lag_s) <= tol_s


def _halves_agree(
    cell_lag, ref_cells: np.ndarray, cand: np.ndarray, M: int, lag_s: float, tol_s: float, near=None
) -> bool:
    """Whether each half of a window peaks within `tol_s` of the whole window's `lag_s` on its own
    (`_half_verdicts`): a lag carried by a few events in one of them does not pass."""
    return all(v in HALF_AGREES for v in _half_verdicts(cell_lag, ref_cells, cand, M, lag_s, tol_s, near))


def _disjoint_pair(spans: list[tuple[float, float]]) -> bool:
    """Whether two of the (start, end) spans share no time."""
    return any(a[1] <= b[0] or b[1] <= a[0] for i, a in enumerate(spans) for b in spans[i + 1 :])


def _impact_pair(a: StreamState, b: StreamState) -> bool:
    """A sensor and a microphone, both with impact envelopes: compared on those."""
    return a.imp is not None and b.imp is not None and {a.meta.modality, b.meta.modality} == {"sensor", "audio"}


def matched_features(a: StreamState, b: StreamState) -> bool:
    """Whether `a` is compared with `b` on a feature both sense alike: the same modality, a camera and a sensor
    on kinetic envelopes, a sensor and a microphone on impact envelopes. Not a camera's motion against a
    microphone's onsets: a first lock there needs agreeing windows that share no data, and their lags were
    70-150 ms off on the default rig, without the sensor bridge, so they publish no lead either."""
    return a.meta.modality == b.meta.modality or (a.kin is not None and b.kin is not None) or _impact_pair(a, b)


def _lead_only(m: LagMeasurement, c: ContentConfig) -> bool:
    """A window that does not count towards a lock but may lead (`ContentConfig.publish_lead`): informative as a
    whole with its halves disagreeing (``split``), or informative but for a main lobe broader than the content
    explains (``broad``, with a prominence of at least `min_prominence`)."""
    return m.reason == "split" or (m.reason == "broad" and m.prominence >= c.min_prominence)


def lags_agree(z0: float, s0: float, z1: float, s1: float, tol_s: float) -> bool:
    """Whether two windows' corrections agree: within 3 of the larger sigma, or `tol_s`, whichever is larger
    (the acquisition windows of a first lock, `content.acquire_tolerance_s`)."""
    return abs(z1 - z0) <= max(3.0 * max(s0, s1), tol_s)


def _max_gap(times: np.ndarray, grid_s: float) -> float:
    """The longest step between a stream's samples that `resample` bridges: three median steps, at least two
    grid steps; longer ones are missing data."""
    return max(3.0 * _median_step(times), 2 * grid_s)


def _median_step(times: np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    k = times[-min(len(times), 64) :]
    return float(np.median(np.diff(k)))
