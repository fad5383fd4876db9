"""The underlying scene: objects that move and bump, and the sound they (and other sources) make.

Everything is an analytic function of scene time, evaluated on whatever sample times a device asks for, so a
drifting device clock really samples the scene at stretched times and no resampling artefact leaks into the
ground truth. The scene is generated lazily in fixed blocks from one seeded generator, so memory stays bounded
by the number of events (a few per second) and the result does not depend on how callers slice time.

Motion: each object alternates between rest and motion: a "kick" (a 40 ms raised-cosine velocity change)
launches it towards a random point of the room, a later kick stops it dead (it hits something), plus a small
wobble; positions, velocities and accelerations are closed forms. So motion starts and stops abruptly, as
hands clapping or a ball hitting a wall do: what cameras (motion energy), IMUs (acceleration spikes) and
microphones (onsets) share. ``still`` intervals freeze the motion (scene motion time stops). Sound: every stop
makes an impact (damped partials with a sharp onset), every launch a softer one; independent tonal bursts
(voices, steps) happen at their own rate; a quiet amplitude-modulated ambience is shared by every
microphone; ``silence`` intervals mute all of it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rig import SceneConfig

KICK_S = 0.04
"""Default duration of one velocity kick (raised-cosine ramp), seconds (`SceneConfig.kick_s`)."""
BLOCK_S = 20.0
"""The scene is generated in blocks of this many seconds."""
ROOM_CENTRE = np.array([0.0, 0.0, 1.0])
ROOM_HALF = np.array([2.0, 2.0, 0.5])
N_PARTIALS = 6
MAX_PARTIAL_HZ = 3800.0
"""Highest partial of any sound, Hz: every microphone rate >= 8 kHz samples the scene without aliasing."""
SPEED_OF_SOUND_MPS = 343.0


def _merge(intervals: tuple[tuple[float, ...], ...]) -> np.ndarray:
    iv = sorted((float(a), float(b)) for a, b in intervals)
    out: list[list[float]] = []
    for a, b in iv:
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.array(out, dtype=np.float64).reshape(-1, 2)


class Scene:
    """Deterministic per (config, seed); query methods take arrays of scene times in seconds."""

    def __init__(self, cfg: SceneConfig, seed: int) -> None:
        self.cfg = cfg
        self._kick_s = float(cfg.kick_s)
        self._rng = np.random.default_rng([int(seed), 0x5CE4E])
        k = cfg.objects
        self._still = _merge(cfg.still)
        self._silence = _merge(cfg.silence)
        r = self._rng
        self.p0 = ROOM_CENTRE + r.uniform(-0.6, 0.6, (k, 3)) * ROOM_HALF
        self.v0 = np.zeros((k, 3))  # objects start at rest
        self.size_m = r.uniform(0.25, 0.45, k)
        self.brightness = r.uniform(90.0, 200.0, k)
        # wobble: 3 sinusoids per axis, amplitude ~ 0.25 m/s^2 of acceleration
        self._wob_f = r.uniform(0.3, 3.0, (k, 3, 3))
        self._wob_ph = r.uniform(0, 2 * math.pi, (k, 3, 3))
        w = 2 * math.pi * self._wob_f
        self._wob_a = 0.12 / w**2
        # ambience: 16 partials, slowly amplitude-modulated
        self._amb_f = r.uniform(80.0, 2500.0, 16)
        self._amb_ph = r.uniform(0, 2 * math.pi, 16)
        self._amb_mf = r.uniform(0.1, 1.5, 16)
        self._amb_mph = r.uniform(0, 2 * math.pi, 16)
        self._amb_a = r.uniform(0.3, 1.0, 16) / 16 * 4
        # kicks per object, in motion time; state at the last kick for the mean-reverting draw
        self._kick_t = [np.empty(0) for _ in range(k)]
        self._kick_dv = [np.empty((0, 3)) for _ in range(k)]
        self._cum_dv: list[np.ndarray] = [np.zeros((1, 3)) for _ in range(k)]
        self._cum_dvt: list[np.ndarray] = [np.zeros((1, 3)) for _ in range(k)]
        self._state = [(self.p0[i].copy(), np.zeros(3), 0.0, np.zeros(3), False) for i in range(k)]
        # sound events, in scene time
        self._ev_start = np.empty(0)
        self._ev_dur = np.empty(0)
        self._ev_f = np.empty((0, N_PARTIALS))
        self._ev_a = np.empty((0, N_PARTIALS))
        self._ev_d = np.empty((0, N_PARTIALS))
        self._ev_ph = np.empty((0, N_PARTIALS))
        self._ev_hann = np.empty(0, dtype=bool)
        self._horizon = 0.0
        self._max_dur = 0.0

    # ------------------------------------------------------------------------------------ generation

    def _extend(self, t_end: float) -> None:
        while self._horizon < t_end:
            self._block(self._horizon, self._horizon + BLOCK_S)
            self._horizon += BLOCK_S

    def _block(self, t0: float, t1: float) -> None:
        r = self._rng
        cfg = self.cfg
        new_ev: list[tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        for i in range(cfg.objects):
            p, v, t_last, dv_last, moving = self._state[i]
            times: list[float] = []
            dvs: list[np.ndarray] = []
            t = t_last
            while cfg.kick_rate_hz > 0:
                t = t + self._kick_s * 1.5 + r.exponential(1.0 / cfg.kick_rate_hz)
                if t >= t1:
                    break
                if t < t0:
                    continue
                gap = t - t_last
                p = p + v * gap + dv_last * (gap - self._kick_s / 2)
                v = v + dv_last
                if moving:
                    dv = -v  # it hits something and stops: an impact
                    amp = cfg.event_level * min(1.5, float(np.linalg.norm(v)) / max(cfg.kick_speed_mps, 1e-9))
                else:
                    # launched towards a random point of the room, at about kick_speed (a push: a softer sound)
                    target = ROOM_CENTRE + r.uniform(-0.8, 0.8, 3) * ROOM_HALF
                    d = target - p
                    d[2] *= 0.3
                    speed = cfg.kick_speed_mps * r.uniform(0.6, 1.4)
                    dv = d / max(float(np.linalg.norm(d)), 1e-6) * speed - v
                    amp = 0.5 * cfg.event_level * min(1.5, speed / max(cfg.kick_speed_mps, 1e-9))
                moving = not moving
                times.append(t)
                dvs.append(dv)
                t_last, dv_last = t, dv
                new_ev.append(self._impact(self._real_time(t), amp))
            self._state[i] = (p, v, t_last, dv_last, moving)
            if times:
                self._kick_t[i] = np.concatenate([self._kick_t[i], times])
                self._kick_dv[i] = np.concatenate([self._kick_dv[i], np.array(dvs)])
                dv_all = self._kick_dv[i]
                self._cum_dv[i] = np.concatenate([np.zeros((1, 3)), np.cumsum(dv_all, axis=0)])
                w = dv_all * (self._kick_t[i] + self._kick_s / 2)[:, None]
                self._cum_dvt[i] = np.concatenate([np.zeros((1, 3)), np.cumsum(w, axis=0)])
        if cfg.sound_rate_hz > 0:
            n = r.poisson(cfg.sound_rate_hz * (t1 - t0))
            for ts in np.sort(r.uniform(t0, t1, n)):
                new_ev.append(self._burst(float(ts), cfg.event_level * r.uniform(0.3, 1.0)))
        if new_ev:
            new_ev.sort(key=lambda e: e[0])
            self._ev_start = np.concatenate([self._ev_start, [e[0] for e in new_ev]])
            self._ev_dur = np.concatenate([self._ev_dur, [e[1] for e in new_ev]])
            self._ev_f = np.concatenate([self._ev_f, [e[2] for e in new_ev]])
            self._ev_a = np.concatenate([self._ev_a, [e[3] for e in new_ev]])
            self._ev_d = np.concatenate([self._ev_d, [e[4] for e in new_ev]])
            self._ev_ph = np.concatenate([self._ev_ph, [e[5] for e in new_ev]])
            self._ev_hann = np.concatenate([self._ev_hann, [e[6] for e in new_ev]])
            order = np.argsort(self._ev_start, kind="stable")
            for name in ("_ev_start", "_ev_dur", "_ev_f", "_ev_a", "_ev_d", "_ev_ph", "_ev_hann"):
                setattr(self, name, getattr(self, name)[order])
            self._max_dur = float(self._ev_dur.max())

    def _impact(self, t: float, amp: float) -> tuple:
        r = self._rng
        f = r.uniform(150.0, MAX_PARTIAL_HZ, N_PARTIALS)
        d = r.uniform(0.004, 0.06, N_PARTIALS)
        a = amp * r.uniform(0.3, 1.0, N_PARTIALS) / math.sqrt(N_PARTIALS)
        return (t, float(6 * d.max()), f, a, d, r.uniform(0, 2 * math.pi, N_PARTIALS), False)

    def _burst(self, t: float, amp: float) -> tuple:
        r = self._rng
        f0 = r.uniform(110.0, 320.0)
        f = np.minimum(f0 * np.arange(1, N_PARTIALS + 1) * r.uniform(0.98, 1.02, N_PARTIALS), MAX_PARTIAL_HZ)
        a = amp * r.uniform(0.4, 1.0, N_PARTIALS) / np.arange(1, N_PARTIALS + 1)
        dur = r.uniform(0.08, 0.4)
        return (t, float(dur), f, a, np.full(N_PARTIALS, np.inf), r.uniform(0, 2 * math.pi, N_PARTIALS), True)

    # ------------------------------------------------------------------------------------ time warps

    def motion_time(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(motion time, d motion time / dt): motion time stops inside ``still`` intervals."""
        t = np.asarray(t, dtype=np.float64)
        tau = t.copy()
        moving = np.ones_like(t)
        for a, b in self._still:
            tau -= np.clip(t - a, 0.0, b - a)
            moving[(t >= a) & (t < b)] = 0.0
        return tau, moving

    def _real_time(self, tau: float) -> float:
        t = tau
        for a, b in self._still:
            if t > a:
                t += b - a
            else:
                break
        return t

    def loudness(self, t: np.ndarray) -> np.ndarray:
        """Mask in [0, 1]: 0 inside ``silence`` intervals, 5 ms linear ramps at their edges."""
        t = np.asarray(t, dtype=np.float64)
        m = np.ones_like(t)
        ramp = 0.005
        for a, b in self._silence:
            inside = np.clip(np.minimum(t - a, b - t) / ramp, 0.0, 1.0)
            m = np.minimum(m, 1.0 - inside)
        return m

    # ------------------------------------------------------------------------------------ queries

    def positions(self, t: np.ndarray) -> np.ndarray:
        """Object positions at scene times ``t``: ``(len(t), objects, 3)`` metres."""
        t = np.asarray(t, dtype=np.float64)
        tau, _ = self.motion_time(t)
        self._extend(float(t.max(initial=0.0)) + 1.0)
        out = np.empty((t.size, self.cfg.objects, 3))
        ks = self._kick_s
        for i in range(self.cfg.objects):
            p = self.p0[i] + self.v0[i] * tau[:, None]
            kt = self._kick_t[i]
            if kt.size:
                nc = np.searchsorted(kt + ks, tau, side="right")
                p += self._cum_dv[i][nc] * tau[:, None] - self._cum_dvt[i][nc]
                ns = np.searchsorted(kt, tau, side="right")
                for j in range(int((ns - nc).max(initial=0))):
                    sel = nc + j < ns
                    k = nc[sel] + j
                    u = (tau[sel] - kt[k]) / ks
                    p[sel] += self._kick_dv[i][k] * (ks * (u / 2 - np.sin(np.pi * u) / (2 * np.pi)))[:, None]
            ph = 2 * np.pi * self._wob_f[i][None] * tau[:, None, None] + self._wob_ph[i][None]
            p += (self._wob_a[i][None] * np.sin(ph)).sum(axis=2)
            out[:, i] = p
        return out

    def acceleration(self, t: np.ndarray, obj: int) -> np.ndarray:
        """Acceleration of object ``obj`` at scene times ``t`` (no gravity): ``(len(t), 3)`` m/s^2."""
        t = np.asarray(t, dtype=np.float64)
        tau, moving = self.motion_time(t)
        self._extend(float(t.max(initial=0.0)) + 1.0)
        acc = np.zeros((t.size, 3))
        ks = self._kick_s
        kt = self._kick_t[obj]
        if kt.size:
            nc = np.searchsorted(kt + ks, tau, side="right")
            ns = np.searchsorted(kt, tau, side="right")
            for j in range(int((ns - nc).max(initial=0))):
                sel = nc + j < ns
                k = nc[sel] + j
                u = (tau[sel] - kt[k]) / ks
                acc[sel] += self._kick_dv[obj][k] * (np.pi / (2 * ks) * np.sin(np.pi * u))[:, None]
        w = 2 * np.pi * self._wob_f[obj][None]
        ph = w * tau[:, None, None] + self._wob_ph[obj][None]
        acc += (-self._wob_a[obj][None] * w**2 * np.sin(ph)).sum(axis=2)
        return acc * moving[:, None]

    def sound(self, t: np.ndarray) -> np.ndarray:
        """The acoustic scene (pressure, full scale about 1) at scene times ``t`` (ascending)."""
        t = np.ascontiguousarray(t, dtype=np.float64)
        if t.size == 0:
            return np.zeros(0)
        self._extend(float(t[-1]) + 1.0)
        lo = int(np.searchsorted(self._ev_start, t[0] - self._max_dur, side="left"))
        hi = int(np.searchsorted(self._ev_start, t[-1], side="right"))
        if not _is_uniform(t):
            return np.concatenate([self.sound(t[i : i + 1]) for i in range(t.size)])
        y = np.zeros(t.size)
        _sound_kernel(
            t,
            self._amb_f,
            self._amb_ph,
            self._amb_mf,
            self._amb_mph,
            self._amb_a,
            float(self.cfg.ambience_level),
            self._ev_start,
            self._ev_dur,
            self._ev_f,
            self._ev_a,
            self._ev_d,
            self._ev_ph,
            self._ev_hann,
            lo,
            hi,
            y,
        )
        return y * self.loudness(t)

    def sound_events(self, t0: float, t1: float) -> np.ndarray:
        """Onset times of sound events in [t0, t1), scene seconds (silenced ones excluded)."""
        self._extend(t1 + 1.0)
        s = self._ev_start[(self._ev_start >= t0) & (self._ev_start < t1)]
        return s[self.loudness(s) > 0.5]

    def kick_times(self, obj: int, t0: float, t1: float) -> np.ndarray:
        """Scene times of the kicks of object ``obj`` in [t0, t1), seconds."""
        self._extend(t1 + 1.0)
        real = np.array([self._real_time(float(x)) for x in self._kick_t[obj]])
        return real[(real >= t0) & (real < t1)] if real.size else real


ANCHOR = 256
"""On uniform sample grids the sinusoids advance by complex rotation, re-anchored with exact sin/cos every
ANCHOR samples (the rotation's rounding error stays below 1e-12)."""


@njit(cache=True, nogil=True)
def _sound_kernel(
    t, amb_f, amb_ph, amb_mf, amb_mph, amb_a, amb_level, ev_start, ev_dur, ev_f, ev_a, ev_d, ev_ph, ev_hann, lo, hi, out
):  # pragma: no cover - compiled
    two_pi = 2.0 * math.pi
    n = t.size
    dt = (t[n - 1] - t[0]) / (n - 1) if n > 1 else 0.0
    if amb_level > 0.0:
        for b0 in range(0, n, ANCHOR):
            b1 = min(n, b0 + ANCHOR)
            tb = t[b0]
            for j in range(amb_f.size):
                wc = two_pi * amb_f[j]
                wm = two_pi * amb_mf[j]
                zc = complex(math.cos(wc * tb + amb_ph[j]), math.sin(wc * tb + amb_ph[j]))
                zm = complex(math.cos(wm * tb + amb_mph[j]), math.sin(wm * tb + amb_mph[j]))
                rc = complex(math.cos(wc * dt), math.sin(wc * dt))
                rm = complex(math.cos(wm * dt), math.sin(wm * dt))
                a = amb_level * amb_a[j]
                for i in range(b0, b1):
                    out[i] += a * (1.0 + 0.6 * zm.imag) * zc.imag
                    zc *= rc
                    zm *= rm
    for e in range(lo, hi):
        s = ev_start[e]
        dur = ev_dur[e]
        i0 = np.searchsorted(t, s)
        i1 = np.searchsorted(t, s + dur)
        if i1 <= i0:
            continue
        for b0 in range(i0, i1, ANCHOR):
            b1 = min(i1, b0 + ANCHOR)
            xb = t[b0] - s
            for p in range(ev_f.shape[1]):
                w = two_pi * ev_f[e, p]
                if ev_hann[e]:
                    z = ev_a[e, p] * complex(math.cos(w * xb + ev_ph[e, p]), math.sin(w * xb + ev_ph[e, p]))
                    r = complex(math.cos(w * dt), math.sin(w * dt))
                else:
                    g = ev_a[e, p] * math.exp(-xb / ev_d[e, p])
                    z = g * complex(math.cos(w * xb + ev_ph[e, p]), math.sin(w * xb + ev_ph[e, p]))
                    r = math.exp(-dt / ev_d[e, p]) * complex(math.cos(w * dt), math.sin(w * dt))
                for i in range(b0, b1):
                    x = t[i] - s
                    if ev_hann[e]:
                        env = math.sin(math.pi * x / dur) ** 2
                    else:
                        env = min(1.0, x / 0.0005)
                    out[i] += env * z.imag
                    z *= r


def _is_uniform(t: np.ndarray) -> bool:
    """Whether `t` is a uniform grid, up to the rounding of its own values: each step within 1e-9 of the mean
    step, or within a few units in the last place of the largest time. (A bound on the step alone failed at 48
    kHz from 128 s of scene time on, where one unit in the last place of t is 1.4e-9 of a step: every block then
    took the per-sample path, 35 times slower, and a live simulator sent its chunks up to 200 ms late.)"""
    if t.size < 3:
        return True
    d = np.diff(t)
    ulp = float(np.spacing(max(abs(float(t[0])), abs(float(t[-1])))))
    return bool(np.all(np.abs(d - d.mean()) <= max(1e-9 * abs(float(d.mean())), 8.0 * ulp, 1e-300)))
