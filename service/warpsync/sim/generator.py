"""The rig simulator: a pure, deterministic generator of chunks in arrival order, plus their ground truth.

Each device samples at its nominal rate *on its own clock*: sample k of a stream is stamped with device time
``r0 + k / rate_hz`` (plus any clock step), was stamped at true time ``start + delay + k / (rate (1 + drift))``
and sensed the scene at true time ``start + k / (rate (1 + drift))`` (``delay`` = capture latency + acoustic
delay). A chunk leaves the device when its last sample is stamped and arrives after a base delay,
exponential jitter and rare spikes, in FIFO order per stream; a dropped chunk consumes its seq. A clock step
applies from the first chunk whose first sample is stamped after it; a publisher restart loses the chunks
not finished before it and resumes with the first sample stamped after the gap (seq continues, as a client
reconnecting with ``resume_seq`` does).

Generation advances in blocks of true time, so memory is bounded by one block of samples plus the chunks
in flight, whatever the duration.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from warpsync_client.protocol import StreamMeta

from .rig import CameraConfig, ClockConfig, ImuConfig, NetworkConfig, RigConfig
from .scene import Scene
from .truth import StreamTruth, Truth
from .visibility import camera_basis, project

GRAVITY_MPS2 = 9.81
MOTION_GRID = 4
"""Cameras with ``output = "motion"`` send the mean absolute frame difference of a 4x4 grid of cells."""


@dataclass(frozen=True)
class SimChunk:
    """One chunk as it reaches the service: ``arrival_s`` is host time (``t0_host_s`` + scene time)."""

    meta: StreamMeta
    seq: int
    t_dev_s: float
    """Device timestamp of the first sample, seconds."""
    arrival_s: float
    samples: np.ndarray
    """``(n, *meta.shape)`` array of ``meta.dtype``."""
    restarted: bool = False
    """First chunk after a publisher restart: a publisher should reconnect (re-open) before sending it."""

    @property
    def stream(self) -> str:
        return self.meta.stream

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])


Renderer = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class _Stream:
    def __init__(
        self,
        idx: int,
        seed: int,
        meta: StreamMeta,
        chunk_samples: int,
        clock: ClockConfig,
        net: NetworkConfig,
        latency_s: float,
        acoustic_delay_s: float,
        start_s: float,
        render: Renderer,
        t0_host_s: float,
        obj: int | None = None,
        latency_step: tuple[float, float] | None = None,
    ) -> None:
        self.idx = idx
        self.meta = meta
        self.n = int(chunk_samples)
        self.clock = clock
        self.net = net
        self.render = render
        self.t0 = t0_host_s
        self.rate = float(meta.rate_hz)
        self.k_rate = 1.0 + clock.drift_ppm * 1e-6
        self.eff_rate = self.rate * self.k_rate
        self.latency_s = latency_s
        self.acoustic_delay_s = acoustic_delay_s
        self.delay = latency_s + acoustic_delay_s
        self.start = start_s
        self.r0 = clock.offset_s + self.k_rate * (start_s + self.delay)
        self.noise_rng = np.random.default_rng([seed, 7, idx])
        self.net_rng = np.random.default_rng([seed, 8, idx])
        # the fixed delay's slow wander (`NetworkConfig.wander_s`): periods and phases from a generator of its own,
        # so that the other draws of a rig without it stay what they were
        wr = np.random.default_rng([seed, 10, idx])
        self.wander_w = 2 * np.pi / wr.uniform(8.0, 40.0, 3)
        self.wander_ph = wr.uniform(0.0, 2 * np.pi, 3)
        self.k = 0
        self.seq = 0
        self.last_arrival = -math.inf
        self.restart_flag = False
        # plan: restart and clock steps, as sample indices
        self.restart_at = net.restart_at_s
        self.k_res: int | None = None
        steps: list[tuple[int, float]] = []
        if self.restart_at is not None:
            self.k_res = max(
                0, math.ceil((self.restart_at + net.restart_gap_s - self.start - self.delay) * self.eff_rate)
            )
            if net.restart_clock_step_s:
                steps.append((self.k_res, net.restart_clock_step_s))
        self.k_jump: int | None = None
        if clock.jump_at_s is not None and clock.jump_s:
            self.k_jump = self._first_chunk_at(clock.jump_at_s)
            steps.append((self.k_jump, clock.jump_s))
        # a latency step (at_s, step_s): from chunk k_lat on, samples sense the scene step_s earlier; their
        # timestamps and arrivals go on as before, so in the truth it is a step of the mapping like a clock step
        self.k_lat: int | None = None
        self.lat_step = 0.0
        if latency_step is not None and latency_step[1]:
            self.k_lat = self._first_chunk_at(latency_step[0])
            self.lat_step = float(latency_step[1])
        self.steps = sorted(steps)
        self.obj = obj

    def h(self, k: float) -> float:
        """True time sample k is stamped (scene seconds)."""
        return self.start + self.delay + k / self.eff_rate

    def s(self, k: float) -> float:
        """Scene time sample k sensed."""
        return float(self.sensed(np.asarray(float(k))))

    def sensed(self, k: np.ndarray) -> np.ndarray:
        """Scene times samples ``k`` sensed (a latency step moves those from `k_lat` on back in scene time)."""
        s = self.start + k / self.eff_rate
        if self.k_lat is not None:
            s = s - self.lat_step * (k >= self.k_lat)
        return s

    def _first_chunk_at(self, t: float) -> int:
        """First chunk start (on the grid actually sent) stamped at or after true time t."""
        j = max(0, math.ceil((t - self.h(0)) * self.eff_rate / self.n))
        k = j * self.n
        while k > 0 and self.h(k - self.n) >= t:
            k -= self.n
        while self.h(k) < t:
            k += self.n
        if self.k_res is not None and self.restart_at is not None and self.h(k + self.n - 1) >= self.restart_at:
            j = max(0, math.ceil((t - self.h(self.k_res)) * self.eff_rate / self.n))
            k = self.k_res + j * self.n
            while self.h(k) < t:
                k += self.n
        return k

    def step_total(self, k: int) -> float:
        return sum(v for kk, v in self.steps if k >= kk)

    def truth(self) -> StreamTruth:
        segs: list[tuple[float, float]] = [(-math.inf, 0.0)]
        total = 0.0
        half = 0.5 / self.eff_rate  # segment edges sit half a sample before the first stepped sample
        steps = list(self.steps)
        if self.k_lat is not None:
            # t_dev = offset + k_rate (s + delay + step) for the samples sensing s after the step
            steps = sorted(steps + [(self.k_lat, self.k_rate * self.lat_step)])
        for kk, v in steps:
            total += v
            segs.append((self.s(kk) - half, total))
        jumps = []
        if self.k_jump is not None:
            jumps.append((self.s(self.k_jump), self.clock.jump_s))
        if self.k_res is not None and self.net.restart_clock_step_s:
            jumps.append((self.s(self.k_res), self.net.restart_clock_step_s))
        restarts = ((float(self.restart_at), self.s(self.k_res)),) if self.k_res is not None else ()
        return StreamTruth(
            stream=self.meta.stream,
            modality=self.meta.modality,
            rate_hz=self.rate,
            clock=self.meta.clock_id,
            offset_s=self.clock.offset_s,
            drift_ppm=self.clock.drift_ppm,
            capture_latency_s=self.latency_s,
            acoustic_delay_s=self.acoustic_delay_s,
            start_s=self.start,
            segments=tuple(segs),
            jumps=tuple(sorted(jumps)),
            restarts=restarts,
            latency_steps=((self.s(self.k_lat), self.lat_step),) if self.k_lat is not None else (),
            object=self.obj,
            device=str(self.meta.meta.get("sim", "")),
        )

    def _count(self, limit: float) -> int:
        """Chunks from self.k whose last sample is stamped before ``limit``."""
        n = self.n
        m = math.floor(((limit - self.h(0)) * self.eff_rate - (self.k + n - 1)) / n) + 1
        m = max(m, 0)
        while m > 0 and self.h(self.k + (m - 1) * n + n - 1) >= limit:
            m -= 1
        while self.h(self.k + m * n + n - 1) < limit:
            m += 1
        return m

    def advance(self, t_end: float) -> list[SimChunk]:
        out: list[SimChunk] = []
        n = self.n
        while True:
            pending = self.k_res is not None and self.k < self.k_res and self.restart_at is not None
            if pending and self.h(self.k + n - 1) >= self.restart_at:
                self.k = self.k_res  # the publisher is down: everything not sent is lost
                self.restart_flag = True
                continue
            limit = min(t_end, self.restart_at) if pending else t_end
            m = self._count(limit)
            if m <= 0:
                if pending and self.restart_at < t_end:
                    continue
                break
            idx = self.k + np.arange(m * n)
            s = self.sensed(idx)
            if self.k_lat is not None and idx[0] < self.k_lat <= idx[-1]:
                # render each side of a latency step on its own uniform grid (the fast sinusoid path)
                cut = self.k_lat - self.k
                data = np.concatenate([self.render(s[:cut], self.noise_rng), self.render(s[cut:], self.noise_rng)])
            else:
                data = self.render(s, self.noise_rng)
            for j in range(m):
                k = self.k + j * n
                seq = self.seq
                self.seq += 1
                net = self.net
                r = self.net_rng
                dropped = net.drop_prob > 0 and r.random() < net.drop_prob
                stamped = self.h(k + n - 1)  # scene time the chunk's last sample is stamped
                delay = net.base_delay_s + (r.exponential(net.jitter_s) if net.jitter_s > 0 else 0.0)
                if net.delay_step_at_s is not None and stamped >= net.delay_step_at_s:
                    delay += net.delay_step_s
                if net.wander_s > 0:
                    delay += 0.5 * net.wander_s * (1.0 + np.mean(np.sin(self.wander_w * stamped + self.wander_ph)))
                if net.spike_prob > 0 and r.random() < net.spike_prob:
                    delay += r.exponential(net.spike_s) if net.spike_s > 0 else 0.0
                if dropped:
                    continue
                arrival = max(self.t0 + stamped + delay, self.last_arrival)
                self.last_arrival = arrival
                t_dev = self.r0 + k / self.rate + self.step_total(k)
                out.append(SimChunk(self.meta, seq, t_dev, arrival, data[j * n : (j + 1) * n], self.restart_flag))
                self.restart_flag = False
            self.k += m * n
        return out


# ---------------------------------------------------------------------------------------------- renderers


def _frame_renderer(
    scene: Scene, cam: CameraConfig, seed: int, idx: int
) -> Callable[[np.ndarray, np.random.Generator, bool], np.ndarray]:
    _, _, focal = camera_basis(cam)
    H, W = cam.height, cam.width
    brng = np.random.default_rng([seed, 9, idx])
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    bg = 35.0 + 25.0 * (xx / W) + 15.0 * (yy / H)
    blobs = brng.uniform(-1, 1, (H // 4 + 1, W // 4 + 1))
    bg += 12.0 * np.kron(blobs, np.ones((4, 4)))[:H, :W]

    def frames(s: np.ndarray, noise: np.random.Generator | None) -> np.ndarray:
        u, v, z = project(cam, scene.positions(s))  # (n, k) each
        sig = np.maximum(focal * scene.size_m[None] / z / 2, 0.6)
        img = np.broadcast_to(bg, (s.size, H, W)).copy()
        for o in range(u.shape[1]):
            gx = np.exp(-((xx[None, 0, :] - u[:, o, None]) ** 2) / (2 * sig[:, o, None] ** 2))  # (n, W)
            gy = np.exp(-((yy[None, :, 0] - v[:, o, None]) ** 2) / (2 * sig[:, o, None] ** 2))  # (n, H)
            img += scene.brightness[o] * gy[:, :, None] * gx[:, None, :]
        if noise is not None and cam.pixel_noise > 0:
            img += noise.normal(0.0, cam.pixel_noise, img.shape)
        return img

    return frames


def _video_renderer(scene: Scene, cam: CameraConfig, seed: int, idx: int) -> Renderer:
    frames = _frame_renderer(scene, cam, seed, idx)
    if cam.output == "frames":
        return lambda s, rng: np.clip(np.rint(frames(s, rng)), 0, 255).astype(np.uint8)
    k_rate = 1.0 + cam.clock.drift_ppm * 1e-6
    dt = 1.0 / (cam.fps * k_rate)
    g = MOTION_GRID

    def motion(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cur = frames(s, rng)
        prev = frames(s - dt, rng)
        diff = np.abs(cur - prev)
        n, H, W = diff.shape
        cells = diff[:, : H // g * g, : W // g * g].reshape(n, g, H // g, g, W // g).mean(axis=(2, 4))
        return cells.reshape(n, g * g).astype(np.float32)

    return motion


def _audio_renderer(scene: Scene, noise_sd: float) -> Renderer:
    def audio(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = scene.sound(s)
        if noise_sd > 0:
            y = y + rng.normal(0.0, noise_sd, y.shape)
        return np.clip(y, -1.0, 1.0).astype(np.float32)[:, None]

    return audio


def _imu_renderer(scene: Scene, imu: ImuConfig, seed: int, idx: int) -> Renderer:
    bias = np.random.default_rng([seed, 10, idx]).normal(0.0, 0.05, 3)

    def imu_fn(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = scene.acceleration(s, imu.object) + bias
        a[:, 2] += GRAVITY_MPS2
        if imu.noise_mps2 > 0:
            a += rng.normal(0.0, imu.noise_mps2, a.shape)
        return a.astype(np.float32)

    return imu_fn


# ---------------------------------------------------------------------------------------------- simulator


class Simulator:
    """Renders one rig. ``chunks()`` yields `SimChunk` in arrival order; ``truth`` is complete from the start.

    Pure: no sockets, no clocks; ``t0_host_s`` shifts arrival times (and the truth) onto a host clock.
    """

    def __init__(self, rig: RigConfig, *, t0_host_s: float = 0.0, block_s: float = 0.25) -> None:
        if not block_s > 0:
            raise ValueError("block_s must be > 0")
        self.rig = rig
        self.t0_host_s = float(t0_host_s)
        self.block_s = float(block_s)
        self.scene = Scene(rig.scene, rig.seed)
        session = rig.name
        streams: list[_Stream] = []
        seed = rig.seed

        lat_steps = {ls.stream: (ls.at_s, ls.step_s) for ls in rig.latency_steps}

        def add(meta: StreamMeta, **kw) -> None:
            kw["latency_step"] = lat_steps.get(meta.stream)
            streams.append(_Stream(len(streams), seed, meta, t0_host_s=self.t0_host_s, **kw))

        for cam in rig.cameras:
            shape = (cam.height, cam.width) if cam.output == "frames" else (MOTION_GRID * MOTION_GRID,)
            dtype = "u1" if cam.output == "frames" else "f4"
            add(
                StreamMeta(
                    cam.name,
                    "video",
                    cam.fps,
                    shape,
                    dtype,
                    "grey" if cam.output == "frames" else "motion",
                    clock=cam.name,
                    session=session,
                    meta={"sim": "camera", "output": cam.output},
                ),
                chunk_samples=cam.frames_per_chunk,
                clock=cam.clock,
                net=cam.network,
                latency_s=cam.latency_s,
                acoustic_delay_s=0.0,
                start_s=cam.start_at_s,
                render=_video_renderer(self.scene, cam, seed, len(streams)),
            )
            if cam.mic:
                add(
                    StreamMeta(
                        f"{cam.name}.mic",
                        "audio",
                        cam.mic_rate_hz,
                        (1,),
                        "f4",
                        "fs",
                        clock=cam.name,
                        session=session,
                        meta={"sim": "camera_mic"},
                    ),
                    chunk_samples=cam.mic_chunk_samples,
                    clock=cam.clock,
                    net=cam.network,
                    latency_s=cam.mic_latency_s,
                    acoustic_delay_s=cam.mic_acoustic_delay_s,
                    start_s=cam.start_at_s,
                    render=_audio_renderer(self.scene, cam.mic_noise),
                )
        for mic in rig.mics:
            add(
                StreamMeta(
                    mic.name,
                    "audio",
                    mic.rate_hz,
                    (1,),
                    "f4",
                    "fs",
                    clock=mic.name,
                    session=session,
                    meta={"sim": "room_mic"},
                ),
                chunk_samples=mic.chunk_samples,
                clock=mic.clock,
                net=mic.network,
                latency_s=mic.latency_s,
                acoustic_delay_s=mic.acoustic_delay_s,
                start_s=mic.start_at_s,
                render=_audio_renderer(self.scene, mic.noise),
            )
        for imu in rig.imus:
            add(
                StreamMeta(
                    imu.name,
                    "sensor",
                    imu.rate_hz,
                    (3,),
                    "f4",
                    "m/s^2",
                    clock=imu.name,
                    session=session,
                    meta={"sim": "imu", "object": imu.object},
                ),
                chunk_samples=imu.chunk_samples,
                clock=imu.clock,
                net=imu.network,
                latency_s=imu.latency_s,
                acoustic_delay_s=0.0,
                start_s=imu.start_at_s,
                render=_imu_renderer(self.scene, imu, seed, len(streams)),
                obj=imu.object,
            )
        self._streams = streams
        self.metas: tuple[StreamMeta, ...] = tuple(s.meta for s in streams)
        self.truth = Truth(
            rig=rig.name,
            seed=rig.seed,
            duration_s=rig.duration_s,
            streams={s.meta.stream: s.truth() for s in streams},
            t0_host_s=self.t0_host_s,
            silence=tuple((float(a), float(b)) for a, b in rig.scene.silence),
            still=tuple((float(a), float(b)) for a, b in rig.scene.still),
        )

    def chunks(self, duration_s: float | None = None) -> Iterator[SimChunk]:
        """Every chunk whose last sample is stamped before ``duration_s`` (default: the rig's), in arrival
        order (ties broken by stream order, then seq)."""
        end = self.rig.duration_s if duration_s is None else float(duration_s)
        heap: list[tuple[float, int, int, SimChunk]] = []
        t = 0.0
        while t < end:
            t_next = min(t + self.block_s, end)
            for st in self._streams:
                for c in st.advance(t_next):
                    heapq.heappush(heap, (c.arrival_s, st.idx, c.seq, c))
            horizon = self.t0_host_s + t_next
            while heap and heap[0][0] < horizon:
                yield heapq.heappop(heap)[3]
            t = t_next
        while heap:
            yield heapq.heappop(heap)[3]


def simulate(
    rig: RigConfig, duration_s: float | None = None, *, t0_host_s: float = 0.0
) -> tuple[Truth, Iterator[SimChunk]]:
    """``(truth, chunks)`` of one run of ``rig``: the pure entry point."""
    sim = Simulator(rig, t0_host_s=t0_host_s)
    return sim.truth, sim.chunks(duration_s)


@dataclass(frozen=True)
class DeviceRecording:
    """What one device saved locally: every sample from its first, stamped on its own clock."""

    stream: str
    modality: str
    rate_hz: float
    t_dev0_s: float
    """Device timestamp of the first sample, seconds."""
    data: np.ndarray
    """``(n, *shape)`` samples."""


def record(rig: RigConfig, duration_s: float | None = None) -> tuple[Truth, dict[str, DeviceRecording]]:
    """``(truth, recordings by stream)`` of one run of ``rig`` as its devices would record it to files: the
    network (drops, publisher restarts) plays no part; clock steps and latency changes do. For offline
    alignment (`warpsync.engine.offline`)."""
    lossless = {"drop_prob": 0.0, "restart_at_s": None}

    def quiet(dev):
        return replace(dev, network=replace(dev.network, **lossless))

    rig = replace(
        rig,
        cameras=tuple(quiet(c) for c in rig.cameras),
        mics=tuple(quiet(m) for m in rig.mics),
        imus=tuple(quiet(i) for i in rig.imus),
    )
    sim = Simulator(rig)
    parts: dict[str, list[SimChunk]] = {}
    for ch in sim.chunks(duration_s):
        parts.setdefault(ch.stream, []).append(ch)
    out = {}
    for sid, chs in parts.items():
        chs.sort(key=lambda c: c.seq)
        m = chs[0].meta
        out[sid] = DeviceRecording(sid, m.modality, m.rate_hz, chs[0].t_dev_s, np.concatenate([c.samples for c in chs]))
    return sim.truth, out
