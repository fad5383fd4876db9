"""Rig descriptions for the simulator: frozen dataclasses loaded from TOML.

A rig is one scene (moving objects that kick, bump and make sounds) seen and heard by devices: cameras (each
with its own microphone on the camera's clock), room microphones and IMUs strapped to objects. Every device
has its own clock (offset, drift, an optional step) and network path (delay, jitter, drops, an optional
publisher restart). Times called ``*_at_s`` are scene time (the simulator's true time, seconds from the start
of the run); the reference timeline the truth is expressed on is that scene time (the host clock).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config import _build  # the one strict TOML -> dataclass loader of the project
from ..errors import ConfigError

DEFAULT_RIG = Path(__file__).resolve().parents[3] / "configs" / "rigs" / "default.toml"
"""The default rig file (what `warpsync demo` and `warpsync simulate` run without --rig)."""


@dataclass(frozen=True)
class ClockConfig:
    """A device clock: ``reading = offset_s + (1 + drift_ppm * 1e-6) * t_true (+ steps)``."""

    offset_s: float = 0.0
    """Device clock reading at scene time 0, seconds (the issue's range: up to +-30 s). Default 0."""
    drift_ppm: float = 0.0
    """Rate error of the device clock, parts per million (up to +-200 ppm). Default 0."""
    jump_at_s: float | None = None
    """Scene time of a clock step (an NTP step, a user setting the clock), seconds; unset: none."""
    jump_s: float = 0.0
    """Size of that step, seconds (added to every later timestamp). Default 0."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset_s) and math.isfinite(self.drift_ppm) and math.isfinite(self.jump_s)):
            raise ValueError("clock offset_s, drift_ppm and jump_s must be finite")
        if abs(self.drift_ppm) > 1e4:
            raise ValueError(f"clock drift_ppm {self.drift_ppm} is not a clock (|drift| must be <= 10000 ppm)")


@dataclass(frozen=True)
class NetworkConfig:
    """The path from a device to the service."""

    base_delay_s: float = 0.002
    """Fixed transit delay of every chunk, seconds. Default 0.002."""
    jitter_s: float = 0.002
    """Mean of the exponential jitter added to each chunk's transit, seconds. Default 0.002."""
    spike_prob: float = 0.01
    """Probability that a chunk is held up by a delay spike (Wi-Fi retry, GC pause). Default 0.01."""
    spike_s: float = 0.04
    """Mean extra delay of a spike, seconds (exponential). Default 0.04."""
    drop_prob: float = 0.0
    """Probability that a chunk is lost (its seq is skipped). Default 0."""
    restart_at_s: float | None = None
    """Scene time the publisher crashes and restarts under the same stream id, seconds; unset: never."""
    restart_gap_s: float = 1.0
    """How long the publisher is gone, seconds (the samples captured meanwhile are lost). Default 1."""
    restart_clock_step_s: float = 0.0
    """Clock step the restart brings (a device reboot resetting its clock), seconds. Default 0."""
    delay_step_at_s: float | None = None
    """Scene time the path's fixed delay changes by `delay_step_s` (a route change, a host that got busy or idle);
    unset: never. Timestamps see it (the clock model's delay envelope moves), the truth does not."""
    delay_step_s: float = 0.0
    """How much the fixed delay changes at `delay_step_at_s`, seconds (negative: faster). Default 0."""
    wander_s: float = 0.0
    """Range of a slow wander of the fixed delay, seconds: it moves between 0 and this, as the mean of three
    sinusoids of periods 8-40 s with random phases (a host whose load comes and goes: live, the least delay of
    each 0.5 s moved between 140 and 300 us over such periods, docs/engine-log.md, "Drift in a live service").
    Timestamps see it, the truth does not. Default 0."""

    def __post_init__(self) -> None:
        for name in ("base_delay_s", "jitter_s", "spike_s", "restart_gap_s", "wander_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"network {name} must be a finite number >= 0, got {v}")
        if not (math.isfinite(self.delay_step_s) and self.base_delay_s + self.delay_step_s >= 0):
            raise ValueError(
                f"network base_delay_s + delay_step_s must be a finite number >= 0, got {self.delay_step_s}"
            )
        for name in ("spike_prob", "drop_prob"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ValueError(f"network {name} must be in [0, 1), got {v}")


@dataclass(frozen=True)
class CameraConfig:
    """A camera looking at the scene, with its own microphone on the same device clock."""

    name: str
    """Stream id of the video stream; the microphone is ``<name>.mic``."""
    fps: float = 30.0
    """Frame rate on the device clock, frames per second. Default 30."""
    output: Literal["frames", "motion"] = "frames"
    """``frames``: small grayscale frames (height, width) u1; ``motion``: per-frame motion energy of a 4x4 grid
    of cells (16,) f4. Default frames."""
    width: int = 32
    """Frame width, pixels. Default 32."""
    height: int = 24
    """Frame height, pixels. Default 24."""
    azimuth_deg: float = 0.0
    """Viewing direction around the scene, degrees. Default 0."""
    distance_m: float = 3.0
    """Distance from the scene centre, metres. Default 3."""
    latency_s: float = 0.05
    """Video capture latency (exposure to timestamp), seconds; invisible to timestamps. Default 0.05."""
    frames_per_chunk: int = 1
    """Frames sent per chunk. Default 1."""
    pixel_noise: float = 0.5
    """Standard deviation of per-pixel sensor noise, grey levels (frames are also quantized to 8 bits).
    Default 0.5: on 24x32 frames more would bury the objects' motion."""
    mic: bool = True
    """Whether the camera records audio. Default true."""
    mic_rate_hz: float = 16000.0
    """Camera microphone sample rate, Hz. Default 16000."""
    mic_latency_s: float = 0.02
    """Camera microphone capture latency, seconds. Default 0.02."""
    mic_acoustic_delay_s: float = 0.003
    """Sound travel time from the scene to the camera microphone, seconds. Default 0.003 (about 1 m)."""
    mic_chunk_samples: int = 320
    """Audio samples per chunk. Default 320 (20 ms at 16 kHz)."""
    mic_noise: float = 0.003
    """Standard deviation of the microphone's own noise (full scale 1). Default 0.003."""
    start_at_s: float = 0.0
    """Scene time the device starts capturing, seconds. Default 0."""
    clock: ClockConfig = field(default_factory=ClockConfig)
    """The camera's clock (shared by its video and its microphone)."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """The camera's network path (shared by both streams)."""

    def __post_init__(self) -> None:
        _check_rate("fps", self.fps)
        _check_rate("mic_rate_hz", self.mic_rate_hz)
        _check_latency(self.latency_s, self.mic_latency_s, self.mic_acoustic_delay_s)
        if not (4 <= self.width <= 1024 and 4 <= self.height <= 1024):
            raise ValueError("camera width and height must be in [4, 1024] pixels")
        if self.frames_per_chunk < 1 or self.mic_chunk_samples < 1:
            raise ValueError("frames_per_chunk and mic_chunk_samples must be >= 1")


@dataclass(frozen=True)
class MicConfig:
    """A room microphone."""

    name: str
    """Stream id."""
    rate_hz: float = 48000.0
    """Sample rate, Hz. Default 48000."""
    latency_s: float = 0.01
    """Capture latency, seconds. Default 0.01."""
    acoustic_delay_s: float = 0.009
    """Sound travel time from the scene to this microphone, seconds. Default 0.009 (about 3 m)."""
    chunk_samples: int = 960
    """Samples per chunk. Default 960 (20 ms at 48 kHz)."""
    noise: float = 0.002
    """Standard deviation of the microphone's own noise (full scale 1). Default 0.002."""
    start_at_s: float = 0.0
    """Scene time the device starts capturing, seconds. Default 0."""
    clock: ClockConfig = field(default_factory=ClockConfig)
    """The microphone's clock."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """Its network path."""

    def __post_init__(self) -> None:
        _check_rate("rate_hz", self.rate_hz)
        _check_latency(self.latency_s, self.acoustic_delay_s)
        if self.chunk_samples < 1:
            raise ValueError("chunk_samples must be >= 1")


@dataclass(frozen=True)
class ImuConfig:
    """An accelerometer strapped to one of the scene's objects."""

    name: str
    """Stream id."""
    rate_hz: float = 500.0
    """Sample rate, Hz. Default 500."""
    object: int = 0
    """Index of the scene object it is attached to. Default 0."""
    latency_s: float = 0.005
    """Capture latency, seconds. Default 0.005."""
    chunk_samples: int = 10
    """Samples per chunk. Default 10."""
    noise_mps2: float = 0.05
    """Standard deviation of accelerometer noise, m/s^2. Default 0.05."""
    start_at_s: float = 0.0
    """Scene time the device starts capturing, seconds. Default 0."""
    clock: ClockConfig = field(default_factory=ClockConfig)
    """The IMU's clock."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    """Its network path."""

    def __post_init__(self) -> None:
        _check_rate("rate_hz", self.rate_hz)
        _check_latency(self.latency_s)
        if self.chunk_samples < 1 or self.object < 0:
            raise ValueError("chunk_samples must be >= 1 and object >= 0")


@dataclass(frozen=True)
class SceneConfig:
    """The one underlying scene every device senses."""

    objects: int = 3
    """Number of moving objects. Default 3."""
    kick_rate_hz: float = 0.7
    """Mean rate of velocity kicks (bumps) per object, per second; each kick also makes an impact sound.
    Default 0.7."""
    kick_speed_mps: float = 0.8
    """Typical speed change of a kick, m/s. Default 0.8."""
    kick_s: float = 0.04
    """Duration of a kick (the raised-cosine velocity change; its sound starts with it), seconds. Default 0.04.
    Shorter is a harder impact: an accelerometer's spike and a camera's motion step get as sharp as the sound."""
    sound_rate_hz: float = 1.5
    """Mean rate of extra sound events not tied to motion (voices, steps), per second. Default 1.5."""
    ambience_level: float = 0.02
    """Amplitude of the shared background sound (full scale 1). Default 0.02."""
    event_level: float = 0.3
    """Typical amplitude of a sound event (full scale 1). Default 0.3."""
    silence: tuple[tuple[float, ...], ...] = ()
    """Scene-time intervals [start, end) of complete silence, seconds, e.g. [[30, 40]]. Default none."""
    still: tuple[tuple[float, ...], ...] = ()
    """Scene-time intervals [start, end) in which nothing moves, seconds. Default none."""

    def __post_init__(self) -> None:
        if not 1 <= self.objects <= 64:
            raise ValueError("scene objects must be in [1, 64]")
        if not (math.isfinite(self.kick_s) and 0.001 <= self.kick_s <= 1.0):
            raise ValueError(f"scene kick_s must be in [0.001, 1] seconds, got {self.kick_s}")
        for name in ("kick_rate_hz", "kick_speed_mps", "sound_rate_hz", "ambience_level", "event_level"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"scene {name} must be a finite number >= 0")
        for name in ("silence", "still"):
            for iv in getattr(self, name):
                if len(iv) != 2 or not iv[0] < iv[1]:
                    raise ValueError(f"scene {name} intervals are [start, end] pairs with start < end, got {list(iv)}")


@dataclass(frozen=True)
class LatencyStepConfig:
    """A change of one stream's capture latency mid-run (a camera re-buffering, a Bluetooth microphone changing
    its codec buffer): from then on its samples sense the scene `step_s` earlier than their timestamps say, with
    no step in the timestamps or in the arrival times. Clock sync cannot see it; content sync must."""

    stream: str
    """Stream id (e.g. ``cam1.mic``)."""
    at_s: float
    """Scene time of the change, seconds (it takes effect at the first chunk stamped from then on)."""
    step_s: float
    """Added to the stream's capture latency, seconds (negative: less latency)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.at_s) and self.at_s >= 0 and math.isfinite(self.step_s)):
            raise ValueError("latency step at_s must be a finite time >= 0 and step_s finite")


@dataclass(frozen=True)
class RigConfig:
    """A whole rig: the scene and its devices."""

    name: str = "rig"
    """Name of the rig (used as the session id)."""
    seed: int = 0
    """Seed of everything random in the run (scene and devices). Default 0."""
    duration_s: float = 120.0
    """Length of the run, scene seconds. Default 120."""
    scene: SceneConfig = field(default_factory=SceneConfig)
    """The scene."""
    cameras: tuple[CameraConfig, ...] = ()
    """Cameras (each adds a video stream and, with ``mic``, an audio stream)."""
    mics: tuple[MicConfig, ...] = ()
    """Room microphones."""
    imus: tuple[ImuConfig, ...] = ()
    """Accelerometers."""
    latency_steps: tuple[LatencyStepConfig, ...] = ()
    """Capture latency changes, at most one per stream."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError("duration_s must be > 0 seconds")
        names = [c.name for c in self.cameras] + [f"{c.name}.mic" for c in self.cameras if c.mic]
        names += [m.name for m in self.mics] + [i.name for i in self.imus]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stream names must be unique, {dup[0]!r} is used twice")
        for imu in self.imus:
            if imu.object >= self.scene.objects:
                raise ValueError(f"imu {imu.name!r} is on object {imu.object} but the scene has {self.scene.objects}")
        if not names:
            raise ValueError("a rig needs at least one camera, microphone or IMU")
        latency = {c.name: c.latency_s for c in self.cameras}
        latency |= {f"{c.name}.mic": c.mic_latency_s for c in self.cameras if c.mic}
        latency |= {m.name: m.latency_s for m in self.mics} | {i.name: i.latency_s for i in self.imus}
        stepped = [ls.stream for ls in self.latency_steps]
        for ls in self.latency_steps:
            if ls.stream not in latency:
                raise ValueError(
                    f"latency step on {ls.stream!r}, which is not a stream of the rig ({', '.join(names)})"
                )
            if stepped.count(ls.stream) > 1:
                raise ValueError(f"stream {ls.stream!r} has more than one latency step")
            _check_latency(latency[ls.stream] + ls.step_s)


def _check_rate(name: str, v: float) -> None:
    if not (math.isfinite(v) and 0 < v <= 1e6):
        raise ValueError(f"{name} must be in (0, 1e6] Hz, got {v}")


def _check_latency(*vals: float) -> None:
    for v in vals:
        if not (math.isfinite(v) and 0 <= v <= 10):
            raise ValueError(f"latencies and delays must be in [0, 10] seconds, got {v}")


def rig_from_mapping(table: Mapping[str, Any], where: str = "<rig>") -> RigConfig:
    """Build a `RigConfig` from a parsed TOML table; an unknown key or bad value is a `ConfigError`."""
    return _build(RigConfig, table, "", where)


def load_rig(path: str | Path | None = None) -> RigConfig:
    """Load a rig TOML file (`None`: configs/rigs/default.toml)."""
    p = Path(path) if path is not None else DEFAULT_RIG
    try:
        with p.open("rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"rig file {p} does not exist (see configs/rigs/ for examples)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return rig_from_mapping(table, str(p))


def random_rig(
    seed: int,
    *,
    cameras: int = 2,
    mics: int = 1,
    imus: int = 1,
    duration_s: float = 60.0,
    fps: float = 30.0,
    mic_rate_hz: float = 16000.0,
    room_rate_hz: float = 48000.0,
    imu_rate_hz: float = 500.0,
    camera_output: Literal["frames", "motion"] = "frames",
    jumps: bool = True,
    restarts: bool = True,
    drop_prob: float = 0.002,
) -> RigConfig:
    """A rig with clocks drawn at random over the issue's ranges: offsets up to +-30 s, drift up to +-200 ppm,
    capture latency 0-150 ms; with ``jumps`` one device's clock steps, with ``restarts`` one publisher
    restarts (both in the middle third of the run). For tests that sweep seeds."""
    if cameras < 0 or mics < 0 or imus < 0:
        raise ConfigError("random_rig: device counts must be >= 0")
    rng = np.random.default_rng([seed, 0x516])

    def clock() -> ClockConfig:
        return ClockConfig(offset_s=float(rng.uniform(-30, 30)), drift_ppm=float(rng.uniform(-200, 200)))

    def lat() -> float:
        return float(rng.uniform(0.0, 0.15))

    cams = tuple(
        CameraConfig(
            name=f"cam{i}",
            fps=fps,
            output=camera_output,
            azimuth_deg=float(360.0 * i / max(cameras, 1) + rng.uniform(-20, 20)),
            latency_s=lat(),
            mic_rate_hz=mic_rate_hz,
            mic_chunk_samples=max(1, round(mic_rate_hz * 0.02)),
            mic_latency_s=lat(),
            mic_acoustic_delay_s=float(rng.uniform(0.0, 0.01)),
            clock=clock(),
            network=NetworkConfig(drop_prob=drop_prob),
        )
        for i in range(cameras)
    )
    room = tuple(
        MicConfig(
            name=f"room{i}",
            rate_hz=room_rate_hz,
            chunk_samples=max(1, round(room_rate_hz * 0.02)),
            latency_s=lat(),
            acoustic_delay_s=float(rng.uniform(0.0, 0.01)),
            clock=clock(),
            network=NetworkConfig(drop_prob=drop_prob),
        )
        for i in range(mics)
    )
    imu_list = tuple(
        ImuConfig(
            name=f"imu{i}",
            rate_hz=imu_rate_hz,
            object=i % 3,
            chunk_samples=max(1, round(imu_rate_hz * 0.02)),
            latency_s=lat(),
            clock=clock(),
            network=NetworkConfig(drop_prob=drop_prob),
        )
        for i in range(imus)
    )
    devices: list[Any] = [*cams, *room, *imu_list]
    if devices and jumps:
        k = int(rng.integers(len(devices)))
        d = devices[k]
        step = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0))
        c = d.clock
        devices[k] = _replace(
            d, clock=ClockConfig(c.offset_s, c.drift_ppm, float(rng.uniform(0.35, 0.6) * duration_s), step)
        )
    if devices and restarts:
        k = int(rng.integers(len(devices)))
        d = devices[k]
        devices[k] = _replace(
            d, network=_replace(d.network, restart_at_s=float(rng.uniform(0.4, 0.65) * duration_s), restart_gap_s=1.0)
        )
    return RigConfig(
        name=f"random{seed}",
        seed=int(seed),
        duration_s=float(duration_s),
        cameras=tuple(devices[:cameras]),
        mics=tuple(devices[cameras : cameras + mics]),
        imus=tuple(devices[cameras + mics :]),
    )


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)
