"""Clock model: a device clock's offset and drift against the host clock, from timestamps alone.

Each observation is a chunk's device time (of the moment it was sent: the end of its last sample) and the host
time it arrived. ``arrival_s - t_dev_s = offset(t) + delay`` where the network/stack delay is never negative
and only sometimes close to its minimum. The estimator keeps the minimum of each `bin_s` of device time and
fits the *lower envelope* of those minima over a sliding window: the line below every point that is closest to
them on average (the linear program of Moon, Skelly & Towsley, "Estimation and removal of clock skew from
network delay measurements", 1999). Its optimum is the edge of the lower convex hull that supports the hull at
the mean abscissa, so one fit is O(n). This is what LSL's time correction + dejitter achieve with a
regression over minutes; the envelope settles in seconds because jitter only ever adds delay. The published
drift (`ClockModel.drift`) is the slope of a low quantile line through the same minima (`quantile_line_fit`):
in a live service a bin's least delay wanders with the host's load, and the envelope tilts with its troughs.

What timestamps cannot see: the device's capture latency (time between sensing and stamping) and the minimum
network delay are absorbed into the offset. Content sync (`engine.content`) measures the former.

Jumps: an observation below the envelope by more than `jump_s` (a delay that would be negative) is a jump at
once; observations all above it by more than `jump_s` for `jump_confirm_s` of device and of host time are a jump
too, unless the service's other clocks (`peers`) were as late, by what they sent at the same time: a stall of the
host or its network (``stall``), for up to `stall_max_s` (`_peers_verdict`); device time going backwards is a
restart. Either resets the model, seeded with the observations since the jump. A model whose observations span
less than `young_span_s` has not seen enough to tell a jump from its first observations having arrived late (a
host busy at startup): a point below its envelope restarts it from that point as a ``rebase``.
Streams sharing a clock interleave: for `in_flight_s` after a jump or restart, data from before it that another
stream's chunks overtook (the previous model explains it, the new one cannot) is ``stale``, not a jump of its own.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .config import ClockConfig

log = logging.getLogger(__name__)

QUANTILE_MIN_BINS = 20
"""With fewer bins than this (10 s of 0.5 s bins) the published drift is the lower envelope's slope whatever
`ClockConfig.slope_quantile` says."""
YOUNG_UNCERTAINTY_S = 0.01
"""The offset uncertainty a model with fewer than three bins publishes (its first second): what it has seen cannot
say how far above the least delay its observations were (docs/engine-log.md, "Stalls are not jumps"), seconds."""
PEER_WINDOW_S = 0.25
"""Observations of other clocks sent up to this long before one of this clock's are compared with it, when late
observations are checked against theirs (`ClockConfig.stall_max_s`), seconds."""
PEER_CHECK_S = 0.05
"""While late observations wait to be called a jump or a stall, the other clocks are asked at most this often (host
time): a backlog of 8 clocks sending 500 chunks a second each cost more CPU than real time when every chunk asked
them, seconds."""
PEER_WAIT_S = 2.0
"""Late observations that no other clock has been as late as for this long (host time) are a jump even where the
others' observations of that time have not come (a clock that sends once a second), seconds."""
PRIOR_MIN_SPAN_S = 10.0
"""A fit spanning at least this much device time is mature: its refits are no longer news, and its slope is the
drift to publish (`SyncEngine._clock_mature`, `_clock_slopes_kept`), seconds. Across a jump or restart any fit
of at least `ClockConfig.settle_min_span_s` passes its slope on, until the new fit spans as much."""


@dataclass(frozen=True)
class ClockEstimate:
    """``t_host = t_dev + offset_s + drift_ppm * 1e-6 * (t_dev - t_dev_s)`` near device time `t_dev_s`."""

    t_dev_s: float
    """Device time the estimate refers to, seconds."""
    offset_s: float
    """Host minus device time at `t_dev_s` (includes the minimum network delay), seconds."""
    drift_ppm: float
    """d(host - device)/d(device) of the mapping (the lower envelope's slope, or the one kept from before a jump),
    in parts per million. `ClockModel.drift` is the rate the engine publishes."""
    uncertainty_s: float
    """One-sigma uncertainty of `offset_s` at `t_dev_s`, seconds."""
    settled: bool
    """The estimate has stopped moving (see `ClockConfig`)."""
    span_s: float
    """Device-time span of the observations behind the estimate, seconds."""
    resets: int
    """How many jumps/restarts the model has seen."""
    slope_span_s: float = 0.0
    """Device-time span of the observations behind `drift_ppm`: after a jump or restart, the kept slope's (the
    oscillator's rate does not change with a step), so the drift can be trusted before the offset settles."""


def lower_envelope_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The line ``y = a + b x`` with ``a + b x_i <= y_i`` for all i that minimizes ``sum(y_i - a - b x_i)``.

    `x` must be strictly increasing. Returns (a, b); one point gives slope 0.
    """
    n = len(x)
    if n == 0:
        raise ValueError("lower_envelope_fit needs at least one point")
    if n == 1:
        return float(y[0]), 0.0
    # lower convex hull (monotone chain)
    hull: list[int] = []
    for i in range(n):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (x[a] - x[o]) * (y[i] - y[o]) - (y[a] - y[o]) * (x[i] - x[o])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    xm = float(np.mean(x))
    # the edge whose x-interval contains the mean abscissa maximizes the line's value at xm
    for k in range(len(hull) - 1):
        i, j = hull[k], hull[k + 1]
        if x[i] <= xm <= x[j]:
            b = (y[j] - y[i]) / (x[j] - x[i])
            return float(y[i] - b * x[i]), float(b)
    i, j = hull[-2], hull[-1]  # pragma: no cover - xm always lies within [x0, xn]
    b = (y[j] - y[i]) / (x[j] - x[i])
    return float(y[i] - b * x[i]), float(b)


def quantile_line_fit(x: np.ndarray, y: np.ndarray, p: float, tol: float = 1e-10) -> tuple[float, float]:
    """The line ``y = a + b x`` that a share `p` of the points lie below: the minimum of
    ``sum(rho_p(y_i - a - b x_i))``, ``rho_p(r) = r (p - [r < 0])`` (quantile regression, Koenker & Bassett 1978).

    For a fixed slope the best intercept is a `p`-quantile of ``y - b x``; what is left is a convex function of the
    slope, minimized by golden-section search in a bracket grown from the lower envelope's slope (`p` → 0) until
    the slope is known to within `tol`. Returns (a, b); fewer than three points give `lower_envelope_fit`'s line."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile_line_fit: p must be in (0, 1), got {p}")
    a0, b0 = lower_envelope_fit(x, y)
    n = len(x)
    if n < 3:
        return a0, b0
    xm = float(x.mean())
    xc = x - xm
    k = max(0, min(math.ceil(p * n) - 1, n - 1))

    def cost(b: float) -> tuple[float, float]:
        z = y - b * xc
        a = float(np.partition(z, k)[k])
        r = z - a
        return float(np.sum(r * np.where(r < 0.0, p - 1.0, p))), a

    # bracket [lo, hi] around the minimum: grow the step until the cost rises on both sides
    step = 1e-7 + abs(b0) * 1e-3
    f0 = cost(b0)[0]
    lo, hi = b0 - step, b0 + step
    f_lo, f_hi = cost(lo)[0], cost(hi)[0]
    while f_lo < f0 and step < 1.0:
        b0, f0, hi = lo, f_lo, b0
        step *= 2.0
        lo = b0 - step
        f_lo = cost(lo)[0]
    while f_hi < f0 and step < 1.0:
        b0, f0, lo = hi, f_hi, b0
        step *= 2.0
        hi = b0 + step
        f_hi = cost(hi)[0]
    g = 0.5 * (math.sqrt(5.0) - 1.0)
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = cost(c)[0], cost(d)[0]
    while hi - lo > tol:
        if fc <= fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = cost(c)[0]
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = cost(d)[0]
    b = 0.5 * (lo + hi)
    return cost(b)[1] - b * xm, b


class ClockModel:
    """Offset/drift of one device clock against the host clock. Pure: time comes in as arguments."""

    def __init__(self, cfg: ClockConfig | None = None, peers: Callable[[], Iterable[ClockModel]] | None = None) -> None:
        """`peers` gives the service's clock models (this one may be among them): a jump upwards is confirmed only
        where they were less late than this one (`_peers_verdict`, `ClockConfig.stall_max_s`)."""
        self.cfg = cfg or ClockConfig()
        self.peers = peers
        self.resets = 0
        self.rebases = 0
        """Young models started again because their first observations were late (`ClockConfig.young_span_s`)."""
        self.stalls = 0
        """Spells of late observations that every other clock shared: no jump (`ClockConfig.stall_max_s`)."""
        # the oscillator's rate survives a clock step or a reboot: the slope of the last long fit is kept
        self._prior_b: float | None = None
        self._prior_span = 0.0
        self.last_seen_s = -math.inf
        self.held_back = False
        """The last observation lay above the delay envelope by more than a jump's margin (a jump candidate, not
        fitted)."""
        self.stale = False
        """The last observation was data from before the last jump or restart, in flight while another stream of
        the clock reported it (`_from_before`): not fitted, and no jump of its own."""
        # the model before the last jump or restart: (a, b, x0, margin, host time of the reset)
        self._before: tuple[float, float, float, float, float] | None = None
        self._clear()

    def _clear_pending(self) -> None:
        """No jump candidates (a timely observation, or a new model)."""
        self._pending: list[tuple[float, float, float]] = []  # (x, arrival, delay above the envelope): candidates
        self._stalling = False  # the pending observations were found to be a stall (`_peers_verdict`)
        self._jump_from: float | None = None  # host time since which the other clocks have been less late
        self._quiet_from: float | None = None  # host time since which none has been as late
        self._checked_at = -math.inf  # host time the other clocks were last asked

    def _clear(self) -> None:
        self._x0: float | None = None  # device-time origin for numerics
        self._bins: deque[list[float]] = deque()  # [bin index, x of min, y min]
        self._clear_pending()
        # (host time sent by this model, delay above the envelope) of the last observations, once the model is past
        # its young span (a young one may have been seeded in a stall): what `lateness_sent` tells the other clocks
        self._lateness: deque[tuple[float, float]] = deque()
        self._last_x = -math.inf
        self._last_by_source: dict[str, float] = {}
        self._fit: tuple[float, float, float, float, float, float] | None = None  # a, b, q, span, xm, slope span
        self._rate: float | None = None  # the published drift's slope, computed when asked (`drift`)
        self._dirty = False
        self._n_obs = 0

    # ------------------------------------------------------------------------------------------ updates
    def observe(self, t_dev_s: float, arrival_s: float, source: str = "") -> str | None:
        """Add one (device time, host arrival time) pair. Returns ``"jump"``, ``"restart"``, ``"rebase"`` (a
        young model's first observations were late: it starts again from this one), ``"stall"`` (late
        observations that would have confirmed a jump, but every other clock's were late too: once per spell) or
        None.

        `source` names the stream the observation came from: streams sharing a clock interleave, so device
        time going backwards (a restart) is judged per source."""
        self.last_seen_s = max(self.last_seen_s, arrival_s)
        last = self._last_by_source.get(source, -math.inf)
        try:
            return self._observe(t_dev_s, arrival_s, last, source in self._last_by_source)
        finally:
            if not self.stale:
                self._last_by_source[source] = t_dev_s

    def _observe(self, t_dev_s: float, arrival_s: float, last: float, seen: bool) -> str | None:
        cfg = self.cfg
        event = None
        self.held_back = self.stale = False
        if self._x0 is not None and t_dev_s < last - cfg.backwards_s:
            log.info("device time went back by %.6f s: device restart", last - t_dev_s)
            self._reset([], arrival_s)
            event = "restart"
        elif self._fit is not None:
            r = (arrival_s - t_dev_s) - self._predict_y(t_dev_s)
            margin = cfg.jump_s + 3.0 * self._uncertainty(t_dev_s)
            if (r < -margin or r > margin) and not seen and self._from_before(t_dev_s, arrival_s, r):
                # in flight across a jump or restart another stream of the clock reported: below the new envelope
                # (a backward step) it would restart a young model from the old clock's data; above it (a forward
                # step), with one late chunk after it, it spanned the 0.75 s of a confirmed jump
                log.debug("observation from before the clock's last jump or restart; stale")
                self.stale = True
                self.held_back = r > margin
                return None
            if self._x0 is not None and t_dev_s - self._x0 >= cfg.young_span_s:
                self._note_lateness(arrival_s, r)
            if r < -margin and self._x0 is not None and t_dev_s - self._x0 < cfg.young_span_s:
                log.debug("observation %.6f s below a young delay envelope: its first observations were late", -r)
                self._clear()
                self.rebases += 1
                event = "rebase"
            elif r < -margin:
                log.info("observation %.6f s below the delay envelope: clock jump", -r)
                self._reset([], arrival_s)
                event = "jump"
            elif r > margin:
                self.held_back = True
                self._pending.append((t_dev_s, arrival_s, r))
                return self._late(t_dev_s, arrival_s, r)
            else:
                self._clear_pending()
        self._add(t_dev_s, arrival_s)
        return event

    def _late(self, t_dev_s: float, arrival_s: float, r: float) -> str | None:
        """A late observation (`r` above the envelope, added to the pending ones): ``"jump"`` (the model reset),
        ``"stall"`` (the first time the other clocks were found as late) or None (not decided yet)."""
        cfg = self.cfg
        x0, a0, _ = self._pending[0]
        if t_dev_s - x0 < cfg.jump_confirm_s or arrival_s - a0 < cfg.jump_confirm_s:
            return None
        if arrival_s - self._checked_at < PEER_CHECK_S:
            return None  # the other clocks are asked once per PEER_CHECK_S of host time, not per chunk
        self._checked_at = arrival_s
        # the other clocks' observations are compared with this one's by when they were sent (as each model has it:
        # arrival minus lateness), for a burst read after a stall arrives at once but was sent over the stall: this
        # clock's sent in the last PEER_WINDOW_S, theirs from just before the first of those
        sent = arrival_s - r
        mine, first = r, sent
        for _, a, rp in reversed(self._pending):  # newest first: up to stall_max_s of them
            if a - rp < sent - PEER_WINDOW_S:
                if a - rp < sent - 2.0 * PEER_WINDOW_S:  # (streams of one clock interleave a little)
                    break
                continue
            mine, first = min(mine, rp), min(first, a - rp)
        verdict = self._peers_verdict(first - cfg.jump_s, sent, mine)
        if self._quiet_from is None or verdict == "stall":
            self._quiet_from = arrival_s
        if verdict == "stall":
            self._jump_from = None
        elif verdict == "jump" and self._jump_from is None:
            self._jump_from = arrival_s
        # a jump once the others have been less late for PEER_WINDOW_S of host time (not only at the edge of a stall,
        # or within one burst), or with no other clock to ask, or when none has been as late for PEER_WAIT_S (their
        # observations of the time did not come), or past stall_max_s
        confirmed = (
            verdict == "alone"
            or arrival_s - a0 >= cfg.stall_max_s
            or arrival_s - self._quiet_from >= PEER_WAIT_S
            or (self._jump_from is not None and arrival_s - self._jump_from >= PEER_WINDOW_S)
        )
        if not confirmed:
            if verdict != "stall" or self._stalling:
                return None
            log.info("observations %.6f s above the delay envelope, as every other clock's were: a stall", r)
            self._stalling = True
            self.stalls += 1
            return "stall"
        log.info("observations %.6f s above the delay envelope for %.3f s: clock jump", r, arrival_s - a0)
        # the new clock's observations: those about as late as the newest (a stall's, less late, are not)
        self._reset([(x, a) for x, a, rp in self._pending if rp >= mine - cfg.jump_s], arrival_s)
        return "jump"

    def _note_lateness(self, arrival_s: float, r: float) -> None:
        keep = self._lateness
        keep.append((arrival_s - r, r))
        while keep[0][0] < arrival_s - r - self.cfg.stall_max_s - 2.0:
            keep.popleft()

    def lateness_sent(self, from_s: float, to_s: float) -> float | None:
        """The least delay above the envelope of the observations sent between host times `from_s` and `to_s` (by
        this model: arrival minus that delay) in the last `stall_max_s` + 2 s: delays only ever add, so the least is
        what they all shared, seconds; None where none was (or the model is young)."""
        least = None
        for sent, r in reversed(self._lateness):
            if sent > to_s:
                continue
            if sent < from_s:
                break
            least = r if least is None else min(least, r)
        return least

    def _peers_verdict(self, from_s: float, to_s: float, mine: float) -> str:
        """What the other clocks' observations sent between host times `from_s` and `to_s` say of this one's, late
        by `mine` at least: ``"jump"`` if one of them was less late by more than `jump_s`, ``"stall"`` if every one
        that has such observations was about as late, ``"unknown"`` if none has them (a burst being read: their
        chunks of that time may come next), ``"alone"`` if there is no other clock past its young span to ask."""
        verdict = "alone"
        for other in self.peers() if self.peers is not None else ():
            if other is self or not other._lateness:
                continue
            late = other.lateness_sent(from_s, to_s)
            if late is None:
                verdict = "unknown" if verdict == "alone" else verdict
            elif late < mine - self.cfg.jump_s:
                return "jump"
            else:
                verdict = "stall"
        return verdict

    def _from_before(self, t_dev_s: float, arrival_s: float, r: float) -> bool:
        """Whether an observation outside the envelope (residual `r`) is the previous model's: within
        `in_flight_s` of the reset, a possible delay under that model, and a smaller one than under this."""
        if self._before is None:
            return False
        a, b, x0, margin, at = self._before
        if arrival_s - at > self.cfg.in_flight_s:
            return False
        r_before = (arrival_s - t_dev_s) - (a + b * (t_dev_s - x0))
        return -margin <= r_before and (r < 0 or r_before < r)

    def _reset(self, seed: list[tuple[float, float]], arrival_s: float) -> None:
        seed = list(seed)
        if self._fit is not None and self._x0 is not None:
            a, b = self._fit[0], self._fit[1]
            margin = self.cfg.jump_s + 3.0 * self._uncertainty(self._last_x)
            self._before = (a, b, self._x0, margin, arrival_s)
        if self._fit is not None and self._fit[3] >= max(self.cfg.settle_min_span_s, self._prior_span):
            self._prior_b, self._prior_span = self._fit[1], self._fit[3]
        self._clear()
        self.resets += 1
        for x, a in seed:
            self._add(x, a)

    def _add(self, t_dev_s: float, arrival_s: float) -> None:
        cfg = self.cfg
        if self._x0 is None:
            self._x0 = t_dev_s
        x = t_dev_s - self._x0
        y = arrival_s - t_dev_s
        self._last_x = max(self._last_x, t_dev_s)
        self._n_obs += 1
        b = math.floor(x / cfg.bin_s)
        new_bin = False
        if self._bins and self._bins[-1][0] == b:
            if y < self._bins[-1][2]:
                self._bins[-1][1] = x
                self._bins[-1][2] = y
                self._dirty = True
        elif self._bins and b < self._bins[-1][0]:
            # out-of-order within tolerance: fold into the last bin
            if y < self._bins[-1][2]:
                self._bins[-1][2] = y
                self._dirty = True
        else:
            self._bins.append([b, x, y])
            self._dirty = new_bin = True
        while self._bins and self._bins[0][0] < b - cfg.window_s / cfg.bin_s:
            self._bins.popleft()
        # Refit when a bin closes (and while the model is young); queries refit a dirty model on demand. Jump
        # detection between refits uses the fit as of the last closed bin, which is what it should test against.
        if self._fit is None or new_bin or len(self._bins) < 3:
            self._refit()

    def _refit(self) -> None:
        self._dirty = False
        bins = self._bins
        xs = np.fromiter((v[1] for v in bins), float, len(bins))
        ys = np.fromiter((v[2] for v in bins), float, len(bins))
        n = len(xs)
        span = float(xs[-1] - xs[0]) if n > 1 else 0.0
        slope_span = span
        if self._prior_b is not None and span < min(self._prior_span, self.cfg.prior_keep_s):
            # young model after a jump/restart: the slope from before, the offset from the new envelope
            b = self._prior_b
            a = float(np.min(ys - b * xs))
            slope_span = self._prior_span
        else:
            a, b = lower_envelope_fit(xs, ys)
        res = ys - (a + b * xs)
        # jitter floor: how far typical bin minima sit above the envelope
        q = float(np.median(res)) if n > 2 else 0.0
        self._fit = (a, b, q, span, float(np.mean(xs)), slope_span)
        self._rate = None

    # ------------------------------------------------------------------------------------------ queries
    def _predict_y(self, t_dev_s: float) -> float:
        assert self._fit is not None and self._x0 is not None
        a, b, *_ = self._fit
        return a + b * (t_dev_s - self._x0)

    def _uncertainty(self, t_dev_s: float) -> float:
        assert self._fit is not None and self._x0 is not None
        _a, _b, q, _span, xm, slope_span = self._fit
        n = len(self._bins)
        if n < 3 or slope_span <= 0:
            # the jitter floor q is the median of the bins' distances above the envelope, and with two bins the
            # envelope touches both: q = 0 says nothing (a model seeded by a late burst was 24 ms off at 0.0 ms)
            return max(q, YOUNG_UNCERTAINTY_S)
        # offset: the envelope touches two minima, each above the truth by ~q/n; slope error ~ q/span.
        # Extrapolating from the mean abscissa adds slope error times distance.
        sig_a = q / math.sqrt(n) + 1e-6
        sig_b = q * math.sqrt(12.0 / max(n, 2)) / slope_span
        dx = (t_dev_s - self._x0) - xm
        return math.sqrt(sig_a**2 + (sig_b * dx) ** 2)

    @property
    def origin_s(self) -> float | None:
        """Device time of the first observation the current fit rests on (since the last jump or restart)."""
        return self._x0

    @property
    def ready(self) -> bool:
        return self._fit is not None

    def estimate(self, t_dev_s: float | None = None) -> ClockEstimate | None:
        """The estimate at device time `t_dev_s` (default: the last observation); None before any data."""
        if self._fit is None:
            return None
        if self._dirty:
            self._refit()
        t = self._last_x if t_dev_s is None else t_dev_s
        _a, b, _q, span, _xm, slope_span = self._fit
        unc = self._uncertainty(t)
        cfg = self.cfg
        settled = span >= cfg.settle_min_span_s and (unc <= cfg.settle_uncertainty_s or span >= cfg.settle_timeout_s)
        return ClockEstimate(
            t_dev_s=t,
            offset_s=self._predict_y(t),
            drift_ppm=b * 1e6,
            uncertainty_s=unc,
            settled=bool(settled),
            span_s=span,
            resets=self.resets,
            slope_span_s=slope_span,
        )

    def to_host(self, t_dev_s: np.ndarray | float) -> np.ndarray | float:
        """Host time of device time(s) (NaN before any data)."""
        if self._fit is None or self._x0 is None:
            return np.asarray(t_dev_s, float) * np.nan
        if self._dirty:
            self._refit()
        a, b, *_ = self._fit
        return (
            t_dev_s + a + b * (np.asarray(t_dev_s, float) - self._x0)
            if isinstance(t_dev_s, np.ndarray)
            else (t_dev_s + a + b * (t_dev_s - self._x0))
        )

    def from_host(self, t_host_s: np.ndarray | float) -> np.ndarray | float:
        """Device time of host time(s): the inverse of `to_host`."""
        if self._fit is None or self._x0 is None:
            return np.asarray(t_host_s, float) * np.nan
        if self._dirty:
            self._refit()
        a, b, *_ = self._fit
        # t_host = t (1 + b) + a - b x0
        return (t_host_s - a + b * self._x0) / (1.0 + b)

    @property
    def drift(self) -> float:
        """The clock's rate, d(host - device)/d(device), dimensionless (0 before data): what the engine publishes
        as drift. From `QUANTILE_MIN_BINS` bins on, unless the slope from before a jump is still kept, it is the
        slope of the line `ClockConfig.slope_quantile` of the bins' minimum delays lie below; the mapping
        (`to_host`, `estimate`) keeps the lower envelope's, which content sync's measurements are relative to.
        In a live service a bin's least delay wanders with the host's load, and the envelope, resting on the two
        deepest troughs, tilts with them (docs/engine-log.md, "Drift in a live service")."""
        if self._fit is None:
            return 0.0
        if self._dirty:
            self._refit()
        if self._rate is None:
            assert self._fit is not None
            _a, b, _q, span, _xm, slope_span = self._fit
            self._rate = b
            if self.cfg.slope_quantile > 0.0 and len(self._bins) >= QUANTILE_MIN_BINS and slope_span == span:
                xs = np.fromiter((v[1] for v in self._bins), float, len(self._bins))
                ys = np.fromiter((v[2] for v in self._bins), float, len(self._bins))
                self._rate = quantile_line_fit(xs, ys, self.cfg.slope_quantile)[1]
        return self._rate
