"""Ground truth of a simulated run: for every stream, the true mapping between its device timestamps and the
reference timeline, and what timestamps cannot show (capture latency, acoustic delay, steps, restarts).

The reference timeline is scene time, shifted by ``t0_host_s`` when the run is published live (host time =
``t0_host_s`` + scene time). A sample stamped ``t_dev`` by stream S *sensed* the scene at reference time

    t_ref = (t_dev - offset_s - J(t_ref)) / (1 + drift_ppm * 1e-6) - capture_latency_s - acoustic_delay_s

where J is the sum of the clock steps in effect (each step starts at a segment's ``from_s``). Equivalently
``dev_time(S, t_ref)`` is the timestamp a perfect synchronizer maps to ``t_ref``, and the true offset of S at
reference time t is ``dev_time(S, t) - t`` (against the host reference) or, against another stream R as
reference, ``dev_time(S, t_scene) - dev_time(R, t_scene)`` at the scene time R's timestamp t sensed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

HOST = "host"
"""Name of the host-clock reference timeline."""


@dataclass(frozen=True)
class StreamTruth:
    stream: str
    modality: str
    rate_hz: float
    clock: str
    """Device clock id (a camera's video and microphone share one)."""
    offset_s: float
    """Device clock reading at scene time 0 (before any step), seconds."""
    drift_ppm: float
    """Device clock rate error, ppm."""
    capture_latency_s: float
    """From sensing to timestamp, seconds; invisible to timestamps."""
    acoustic_delay_s: float = 0.0
    """Sound travel time to a microphone, seconds (0 for video and IMUs)."""
    start_s: float = 0.0
    """Scene time sensed by the first sample, seconds."""
    segments: tuple[tuple[float, float], ...] = ((-math.inf, 0.0),)
    """(from scene time s, total clock step J in effect from then on, s), ascending."""
    jumps: tuple[tuple[float, float], ...] = ()
    """(scene time s of the first sample stamped with the step, step s): clock jumps."""
    restarts: tuple[tuple[float, float], ...] = ()
    """(scene time s the publisher went down, scene time s of the first sample sent after it came back)."""
    latency_steps: tuple[tuple[float, float], ...] = ()
    """(scene time s sensed by the first sample after the change, change s): capture latency changes, which the
    segments already contain (a step of the mapping that timestamps do not show)."""
    object: int | None = None
    """IMUs: the scene object they are attached to."""
    device: str = ""
    """What the simulator rendered: ``camera``, ``camera_mic``, ``room_mic`` or ``imu``."""

    @property
    def delay_s(self) -> float:
        return self.capture_latency_s + self.acoustic_delay_s

    def step_at(self, t_ref: float) -> float:
        j = 0.0
        for start, total in self.segments:
            if t_ref >= start:
                j = total
        return j

    def sensed_at(self, t_dev: float, near_scene_s: float) -> float:
        """Scene time sensed by the sample stamped ``t_dev``: the inverse of `dev_time` on the segment that
        holds it, the one nearest ``near_scene_s`` where a negative step gives a device time to two segments.
        Unlike `scene_time` with ``near_scene_s``, a sample from just before a step stays on its own segment
        when ``near_scene_s`` has crossed the step."""
        k = 1.0 + self.drift_ppm * 1e-6
        best = None
        for i, (start, total) in enumerate(self.segments):
            t = (t_dev - self.offset_s - total) / k - self.delay_s
            end = self.segments[i + 1][0] if i + 1 < len(self.segments) else math.inf
            if start <= t < end and (best is None or abs(t - near_scene_s) < abs(best - near_scene_s)):
                best = t
        return best if best is not None else self.scene_time(t_dev, near_scene_s)

    def dev_time(self, t_scene: float) -> float:
        """Device timestamp of the sample that sensed the scene at ``t_scene`` (scene seconds)."""
        return self.offset_s + self.step_at(t_scene) + (1.0 + self.drift_ppm * 1e-6) * (t_scene + self.delay_s)

    def scene_time(self, t_dev: float, near_scene_s: float | None = None) -> float:
        """Inverse of `dev_time`. Where a negative step makes device times ambiguous, the segment containing
        ``near_scene_s`` is used (default: the latest segment whose range contains the result)."""
        k = 1.0 + self.drift_ppm * 1e-6
        if near_scene_s is not None:
            return (t_dev - self.offset_s - self.step_at(near_scene_s)) / k - self.delay_s
        best = None
        for start, total in self.segments:
            t = (t_dev - self.offset_s - total) / k - self.delay_s
            if t >= start:
                best = t
        if best is None:
            best = (t_dev - self.offset_s - self.segments[0][1]) / k - self.delay_s
        return best


@dataclass(frozen=True)
class Truth:
    rig: str
    seed: int
    duration_s: float
    streams: Mapping[str, StreamTruth]
    t0_host_s: float = 0.0
    """Host time of scene time 0 (0 for offline runs)."""
    silence: tuple[tuple[float, float], ...] = ()
    """Scene-time intervals of complete silence (content sync must fall back to clocks there)."""
    still: tuple[tuple[float, float], ...] = ()
    """Scene-time intervals with no motion."""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def stream(self, sid: str) -> StreamTruth:
        try:
            return self.streams[sid]
        except KeyError:
            raise ConfigError(f"stream {sid!r} is not in the truth file (streams: {', '.join(self.streams)})") from None

    def scene_of_ref(self, t_ref: float, reference: str = HOST) -> float:
        """Scene time of reference time ``t_ref`` on timeline ``reference`` (``host`` or a stream id)."""
        if reference in ("", HOST):
            return t_ref - self.t0_host_s
        return self.stream(reference).scene_time(t_ref)

    def ref_of_scene(self, t_scene: float, reference: str = HOST) -> float:
        """Reference time of scene time ``t_scene``: the inverse of `scene_of_ref`."""
        if reference in ("", HOST):
            return t_scene + self.t0_host_s
        return self.stream(reference).dev_time(t_scene)

    def ref_of_sample(self, sid: str, t_local: float, near_ref: float, reference: str = HOST) -> float:
        """Reference time of the scene the sample of ``sid`` stamped ``t_local`` sensed, on its own side of any
        clock step (``near_ref``, an estimate of it, picks one of two where a backward step stamped two)."""
        s = self.stream(sid).sensed_at(t_local, self.scene_of_ref(near_ref, reference))
        return self.ref_of_scene(s, reference)

    def error_of(self, sid: str, t_local: float, t_ref: float, offset_s: float, reference: str = HOST) -> float:
        """Error of an estimate of the sample stamped ``t_local`` (published at reference time ``t_ref`` with
        ``offset_s``): ``offset_s`` minus that sample's true offset. `offset_at` at ``t_ref`` gives the same but
        where ``t_ref`` and the sample lie on two sides of a step: there it is the step's size off."""
        return offset_s - (t_local - self.ref_of_sample(sid, t_local, t_ref, reference))

    def offset_at(self, sid: str, t_ref: float, reference: str = HOST) -> float:
        """True offset of stream ``sid`` at reference time ``t_ref``: ``t_dev - t_ref`` of the sample that a
        perfect synchronizer maps to ``t_ref``."""
        s = self.scene_of_ref(t_ref, reference)
        return self.stream(sid).dev_time(s) - t_ref

    def drift_ppm_of(self, sid: str, reference: str = HOST) -> float:
        """True drift of ``sid`` against the reference timeline, ppm (d t_dev / d t_ref - 1)."""
        k = 1.0 + self.stream(sid).drift_ppm * 1e-6
        if reference not in ("", HOST):
            k /= 1.0 + self.stream(reference).drift_ppm * 1e-6
        return (k - 1.0) * 1e6

    def events_s(self, sid: str) -> list[tuple[str, float]]:
        """Disruptions of ``sid`` on scene time: ``("jump", t)``, ``("restart", t_back)`` and ``("latency", t)``,
        sorted."""
        st = self.stream(sid)
        ev = [("jump", t) for t, _ in st.jumps] + [("restart", back) for _, back in st.restarts]
        ev += [("latency", t) for t, _ in st.latency_steps]
        return sorted(ev, key=lambda e: e[1])

    # ------------------------------------------------------------------------------------ json

    def to_json(self) -> dict[str, Any]:
        def fix(x: Any) -> Any:
            if isinstance(x, float) and math.isinf(x):
                return None
            if isinstance(x, (list, tuple)):
                return [fix(v) for v in x]
            if isinstance(x, dict):
                return {k: fix(v) for k, v in x.items()}
            return x

        return {
            "version": 1,
            "rig": self.rig,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "t0_host_s": self.t0_host_s,
            "silence": fix(list(self.silence)),
            "still": fix(list(self.still)),
            "meta": dict(self.meta),
            "streams": {k: fix(asdict(v)) for k, v in self.streams.items()},
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str = "<truth>") -> Truth:
        try:
            if obj.get("version") != 1:
                raise ConfigError(f"{where}: not a warpsync truth file (version {obj.get('version')!r})")
            streams = {}
            for sid, s in obj["streams"].items():
                segs = tuple((-math.inf if a is None else float(a), float(b)) for a, b in s["segments"])
                streams[sid] = StreamTruth(
                    stream=s["stream"],
                    modality=s["modality"],
                    rate_hz=float(s["rate_hz"]),
                    clock=s["clock"],
                    offset_s=float(s["offset_s"]),
                    drift_ppm=float(s["drift_ppm"]),
                    capture_latency_s=float(s["capture_latency_s"]),
                    acoustic_delay_s=float(s.get("acoustic_delay_s", 0.0)),
                    start_s=float(s.get("start_s", 0.0)),
                    segments=segs,
                    jumps=tuple((float(a), float(b)) for a, b in s.get("jumps", ())),
                    restarts=tuple((float(a), float(b)) for a, b in s.get("restarts", ())),
                    latency_steps=tuple((float(a), float(b)) for a, b in s.get("latency_steps", ())),
                    object=s.get("object"),
                    device=str(s.get("device", "")),
                )
            return cls(
                rig=str(obj["rig"]),
                seed=int(obj["seed"]),
                duration_s=float(obj["duration_s"]),
                streams=streams,
                t0_host_s=float(obj.get("t0_host_s", 0.0)),
                silence=tuple((float(a), float(b)) for a, b in obj.get("silence", ())),
                still=tuple((float(a), float(b)) for a, b in obj.get("still", ())),
                meta=dict(obj.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: malformed truth file ({type(exc).__name__}: {exc})") from None

    @classmethod
    def read(cls, path: str | Path) -> Truth:
        p = Path(path)
        try:
            obj = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"truth file {p} does not exist (write one with `warpsync simulate --truth`)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"{p}: a truth file is a JSON object")
        return cls.from_json(obj, str(p))
