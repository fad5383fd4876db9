"""`sync.bundle`: synchronized sets per reference tick, with ROS message_filters ApproximateTime guarantees.

Pure: fed the session's members, their current mappings and host time; returns the bundles that are ready.

For tick k of the reference timeline (time ``T_k``), every member contributes the sample whose mapped reference
time is nearest ``T_k`` (as tight as the mapping allows: the residual is at most half the member's sample
period), and never a sample it already contributed to an earlier bundle (each message used at most once; ticks
are emitted in order, so bundles never cross). A member whose nearest sample is already used, falls in a gap
(a dropped chunk), or farther than `max_residual_s` is *missing*. A tick is published as soon as every member's
nearest sample to it has arrived, or `max_wait_s` (host time) after the first member's had, with
``incomplete`` set and the late or missing members named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import BundleConfig


@dataclass
class MemberView:
    """What the bundler needs of one member stream right now."""

    stream: str
    rate_hz: float
    covered_until_s: float
    """Reference time up to which the member's data has arrived, seconds."""
    to_local: Callable[[float], float]
    """Reference time -> the member's local time (its current mapping)."""
    index_of: Callable[[float], tuple[int, float] | None]
    """Local time -> (nearest sample index, that sample's local time), None inside a gap."""
    to_ref: Callable[[float], float]
    """Local time -> reference time."""
    confidence: float = 0.0


@dataclass
class Bundler:
    cfg: BundleConfig
    session: str
    reference: str
    tick_hz: float = 0.0
    next_k: int | None = None
    t_first_s: float = 0.0
    first_cover_host_s: float | None = None
    last_used: dict[str, int] = field(default_factory=dict)
    emitted: int = 0
    incomplete: int = 0

    def tick_time(self, k: int) -> float:
        return self.t_first_s + k / self.tick_hz

    def ready(self, members: list[MemberView], now_s: float, max_bundles: int = 256) -> list[dict[str, Any]]:
        """Bundles that can be published now (in tick order)."""
        if not members or self.tick_hz <= 0:
            return []
        out: list[dict[str, Any]] = []
        if self.next_k is None:
            start = max(m.covered_until_s for m in members)
            if not math.isfinite(start):
                return []
            self.t_first_s = math.ceil(start * self.tick_hz) / self.tick_hz
            self.next_k = 0
        newest = max(m.covered_until_s for m in members)
        # far behind (a stall, a jump of the reference): skip to the present instead of flooding
        if newest - self.tick_time(self.next_k) > 2.0:
            self.next_k = math.floor((newest - self.t_first_s - 0.5) * self.tick_hz)
            self.first_cover_host_s = None
        tol = {m.stream: self._tol(m) for m in members}
        while len(out) < max_bundles:
            T = self.tick_time(self.next_k)
            covered = [self._covered(m, T, tol[m.stream]) for m in members]
            if not any(covered):
                break
            if not all(covered):
                if self.first_cover_host_s is None:
                    self.first_cover_host_s = now_s
                if now_s - self.first_cover_host_s < self.cfg.max_wait_s:
                    break
            out.append(self._make(T, members, covered, tol))
            self.next_k += 1
            self.first_cover_host_s = None
        return out

    @staticmethod
    def _covered(m: MemberView, T: float, tol: float) -> bool:
        """The member's sample nearest T has arrived (or data past T + tol shows there is none)."""
        if m.covered_until_s >= T + tol:
            return True
        hit = m.index_of(m.to_local(T))
        return hit is not None and m.to_ref(hit[1]) <= m.covered_until_s + 1e-12

    def _tol(self, m: MemberView) -> float:
        return self.cfg.max_residual_s if self.cfg.max_residual_s > 0 else 0.5 / m.rate_hz

    def _make(self, T: float, members: list[MemberView], covered: list[bool], tol: dict[str, float]) -> dict[str, Any]:
        entries = []
        missing = []
        conf = 1.0
        for m, cov in zip(members, covered):
            if not cov:
                missing.append(m.stream)
                conf = 0.0
                continue
            hit = m.index_of(m.to_local(T))
            if hit is None:
                missing.append(m.stream)
                conf = 0.0
                continue
            idx, t_local = hit
            used = self.last_used.get(m.stream, -1)
            if idx <= used:
                # already in an earlier bundle: the next sample, if close enough
                nxt = m.index_of(t_local + 1.0 / m.rate_hz)
                if nxt is None or nxt[0] <= used:
                    missing.append(m.stream)
                    conf = 0.0
                    continue
                idx, t_local = nxt
            residual = m.to_ref(t_local) - T
            if abs(residual) > tol[m.stream] + 1e-9:
                missing.append(m.stream)
                conf = 0.0
                continue
            self.last_used[m.stream] = idx
            conf = min(conf, m.confidence)
            entries.append(
                {"stream": m.stream, "index": int(idx), "t_local_s": float(t_local), "residual_s": float(residual)}
            )
        self.emitted += 1
        if missing:
            self.incomplete += 1
        return {
            "session": self.session,
            "reference": self.reference,
            "t_s": float(T),
            "members": entries,
            "incomplete": bool(missing),
            "missing": missing,
            "confidence": float(conf),
        }
