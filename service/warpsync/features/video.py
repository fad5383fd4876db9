"""Video features: motion energy from frames (or per-frame embeddings) and its change, the motion activity.

Input is ``(n, *shape)`` per frame: raw frames ``(h, w)`` or ``(h, w, c)`` (any dtype), or a per-frame vector
``(d,)`` (a user-supplied embedding, or per-cell motion energies). Frame k is at ``t0_s + k / rate_hz``.

* raw frames: the motion energy between frames k-B and k is ``mean |f_k - f_{k-B}|`` per cell of a 4x4 grid,
  a 16-vector stamped at the midpoint ``t0_s + (k - B/2) / rate_hz``. B is the `baseline_frames` (default 1):
  a small object moving a fraction of a pixel per frame changes its pixels by a grey level or two, about what
  sensor noise and 8-bit quantization change every pixel by; over B frames it moves B times as far while the
  noise of one difference stays the same, so its motion stands B times as high above the noise, at the cost of
  B frames of time resolution (the engine uses B = 2 for the kinetic envelope it compares with sensors,
  `[engine.features] motion_baseline_frames`, and B = 1 for the activity it compares with audio);
* vectors are taken as the per-frame description itself (already motion-like), stamped at the frame time;
  except when they are declared frame differences (``difference_vectors``, a stream whose ``units`` are
  ``motion``: vector k is the motion between frames k-1 and k, as a camera computing motion energy sends it),
  which are stamped at the midpoint ``t0_s + (k - 1/2) / rate_hz`` like the motion computed from raw frames:
  the interval they describe is centred there, and stamping them at frame k would put every motion event half
  a frame late (8 ms at 60 fps).

The motion *activity* envelope, used for alignment, is the rectified increase of that description between
consecutive entries (``sum max(0, m_j - m_{j-1})``), stamped at the midpoint of the two: motion starting
(or speeding up) is a peak in it, like an onset in audio and the rising edge of a jolt in an accelerometer.

With ``kinetic=True`` the streaming class also returns the *kinetic* envelope, the total change of the
description ``sum |m_j - m_{j-1}|`` at the same times, as a second column: motion energy follows an object's
speed, so its change follows the magnitude of its acceleration, launches and stops alike. That is what an
accelerometer measures directly (`SensorEnvelope` kinetic column: the high-passed acceleration magnitude), so
video and IMU are compared like with like: both peak at the middle of a velocity change, whatever its shape.

With ``kinetic_from="flow"`` (raw frames only; vectors have no pixels to take it from), the kinetic envelope
comes from each cell's *motion vector* instead of its motion energy: the frame difference projected on the
picture's gradient, ``u_c = mean_c (f_k - f_{k-B}) * grad((f_k + f_{k-B}) / 2)`` (x and y; the numerator of a
Lucas-Kanade flow, so it is linear in the velocity of what moves in the cell, sign included, and pixel noise adds
to it with zero mean), and the kinetic terms are ``|u_c,j - u_c,j-1|`` (the length of the vector's change). Motion
energy ``mean |f_k - f_{k-B}|`` is not linear in speed: near the noise floor it grows with the square of the
speed, so its change weighs the fast end of a velocity change. A launch then peaks late and a stop early (2-4 ms
each way on the simulator's cameras, `tools/engine/contact_timing.py`), where the accelerometer it is compared with
peaks at the middle of both. The change of a velocity vector is the acceleration the accelerometer feels, launches
and stops alike. The activity column stays on motion energy.

With ``cells=True`` as well, the per-entry changes ``|m_j - m_{j-1}|`` (one column per cell or vector entry,
16 for raw frames) follow as columns ``2 ..``: the kinetic envelope split by where in the picture the change
happened. An IMU feels one object where a camera sees them all; weighting the cells by how they correlate
with the IMU (`warpsync.engine.content.measure_lag_cells`) keeps the object it is strapped to and drops the
others.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import AlignmentError
from .base import Frames

GRID = 4
KINETIC_SOURCES = ("energy", "flow")


def _cells(frames: np.ndarray) -> np.ndarray:
    """(n, h, w[, c]) -> (n, GRID*GRID) mean value per cell (float64); cells split h and w as evenly as
    ``linspace`` does (each at least one pixel)."""
    f = frames.astype(np.float64, copy=False)
    if f.ndim == 4:
        f = f.mean(axis=3)
    n, h, w = f.shape
    hs, ws = _edges(h), _edges(w)
    sums = np.add.reduceat(np.add.reduceat(f, hs[:-1], axis=1), ws[:-1], axis=2)  # (n, GRID, GRID)
    return (sums * _inv_counts(h, w)).reshape(n, GRID * GRID)


def _mono(frames: np.ndarray) -> np.ndarray:
    """(n, h, w[, c]) -> (n, h, w) float64 (colour channels averaged)."""
    f = frames.astype(np.float64, copy=False)
    return f.mean(axis=3) if f.ndim == 4 else f


@functools.lru_cache(maxsize=64)
def _inv_counts(h: int, w: int) -> np.ndarray:
    return 1.0 / (np.diff(_edges(h))[:, None] * np.diff(_edges(w))[None, :])


@functools.lru_cache(maxsize=64)
def _edges(size: int) -> np.ndarray:
    e = np.linspace(0, size, GRID + 1).astype(int)
    for i in range(1, GRID + 1):  # a cell of at least one pixel, as long as pixels last
        e[i] = min(max(e[i], e[i - 1] + 1), size) if i < GRID else size
    return e


def _gradient(f: np.ndarray, axis: int) -> np.ndarray:
    """``np.gradient`` of frames ``(n, h, w)`` along one pixel axis (central inside, one-sided at the edges),
    without its per-call overhead (a camera's chunk is often one frame)."""
    g = np.empty_like(f)
    a = np.moveaxis(f, axis, -1)
    out = np.moveaxis(g, axis, -1)
    out[..., 1:-1] = 0.5 * (a[..., 2:] - a[..., :-2])
    out[..., 0] = a[..., 1] - a[..., 0]
    out[..., -1] = a[..., -1] - a[..., -2]
    return g


def _energy_and_flow(d: np.ndarray, mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell motion energy ``mean_c |d|`` (``(n, GRID * GRID)``) and motion vectors ``mean_c d * grad(mid)``,
    x and y interleaved (``(n, 2 * GRID * GRID)``); `d` the frame differences, `mid` the frames between them."""
    n = len(d)
    c = _cells(np.concatenate([np.abs(d), d * _gradient(mid, 2), d * _gradient(mid, 1)]))
    flow = np.empty((n, 2 * c.shape[1]))
    flow[:, 0::2], flow[:, 1::2] = c[n : 2 * n], c[2 * n :]
    return c[:n], flow


def motion_activity(
    frames: np.ndarray,
    rate_hz: float,
    *,
    t0_s: float = 0.0,
    difference_vectors: bool = False,
    kinetic: bool = False,
    cells: bool = False,
    baseline_frames: int = 1,
    kinetic_from: str = "energy",
) -> Frames:
    """Motion activity envelope of a whole recording (see the module docstring for the time axis); with
    `kinetic`, values are ``(n, 2)``: activity and kinetic envelope; with `cells` too, ``(n, 2 + d)``: the
    kinetic envelope's per-cell terms follow."""
    return MotionEnvelope(
        rate_hz,
        t0_s,
        difference_vectors=difference_vectors,
        kinetic=kinetic,
        cells=cells,
        baseline_frames=baseline_frames,
        kinetic_from=kinetic_from,
    ).push(frames)


class MotionEnvelope:
    """Streaming `motion_activity`: identical output for any chunking of the same frames."""

    def __init__(
        self,
        rate_hz: float,
        t0_s: float,
        *,
        difference_vectors: bool = False,
        kinetic: bool = False,
        cells: bool = False,
        baseline_frames: int = 1,
        kinetic_from: str = "energy",
    ) -> None:
        if kinetic_from not in KINETIC_SOURCES:
            raise AlignmentError(f"kinetic_from must be one of {KINETIC_SOURCES}, got {kinetic_from!r}")
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise AlignmentError(f"video frame rate must be a positive number of Hz, got {rate_hz}")
        if int(baseline_frames) != baseline_frames or baseline_frames < 1:
            raise AlignmentError(f"motion baseline must be a whole number of frames >= 1, got {baseline_frames}")
        self.baseline_frames = int(baseline_frames)
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.difference_vectors = bool(difference_vectors)
        self.kinetic = bool(kinetic) or bool(cells)
        self.cells = bool(cells)
        self.kinetic_from = kinetic_from
        self._last_flow: np.ndarray | None = None  # the previous motion vector (kinetic_from "flow", raw frames)
        self._dim: int | None = None  # description length (columns of the per-cell output)
        self._k = 0  # index of the next frame
        self._last_frames: np.ndarray | None = None  # raw frames: the previous `baseline_frames` (as float)
        self._last_desc: np.ndarray | None = None  # previous description vector
        self._raw: bool | None = None

    def descriptions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame descriptions and their times for the new frames (motion energy for raw frames)."""
        t, d, _ = self._describe(x)
        return t, d

    def _describe(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """`descriptions`, and the motion vectors of the same frame pairs where the kinetic terms follow them
        (raw frames, ``kinetic_from`` flow; else None)."""
        x = np.asarray(x)
        n = len(x)
        if n == 0:
            return np.zeros(0), np.zeros((0, 1)), None
        if self._raw is None:
            if x.ndim not in (2, 3, 4):
                raise AlignmentError(
                    f"video samples must be (n, d) vectors or (n, h, w[, c]) frames, got shape {x.shape}"
                )
            self._raw = x.ndim >= 3
            if self._raw and (x.shape[1] < GRID or x.shape[2] < GRID):
                raise AlignmentError(f"video frames must be at least {GRID}x{GRID} pixels, got {x.shape[1:3]}")
        ks = self._k + np.arange(n)
        self._k += n
        if not self._raw:
            shift = 0.5 if self.difference_vectors else 0.0
            return self.t0_s + (ks - shift) / self.rate_hz, x.reshape(n, -1).astype(np.float64), None
        b = self.baseline_frames
        f = _mono(x)
        prev = self._last_frames
        if prev is not None:
            f = np.concatenate([prev, f])
        self._last_frames = f[-b:].copy()
        # f[i] is frame ks[0] - len(prev) + i; a difference needs the frame b before it
        ks = ks[0] - (0 if prev is None else len(prev)) + np.arange(b, len(f))
        if len(ks) == 0:
            return np.zeros(0), np.zeros((0, GRID * GRID)), None
        # mean |f_k - f_{k-b}| per cell: an object moving anywhere inside a cell changes its pixels. (The change
        # of the cell's *mean*, used before, sees only what crosses cell borders or changes brightness.)
        d = f[b:] - f[:-b]
        t = self.t0_s + (ks - 0.5 * b) / self.rate_hz
        if self.kinetic and self.kinetic_from == "flow":
            return (t, *_energy_and_flow(d, 0.5 * (f[b:] + f[:-b])))
        return t, _cells(np.abs(d)), None

    def _flow_change(self, u: np.ndarray | None) -> np.ndarray | None:
        """|u_j - u_{j-1}| per cell for new motion vectors `u` (None where the kinetic terms follow motion
        energy: None back). Keeps the newest vector for the next call."""
        if u is None:
            return None
        prev, self._last_flow = self._last_flow, u[-1].copy()
        if prev is not None:
            u = np.concatenate([prev[None], u])
        du = np.diff(u, axis=0)
        return np.hypot(du[:, 0::2], du[:, 1::2])

    def push(self, x: np.ndarray) -> Frames:
        t, d, u = self._describe(x)
        if len(t) and self._dim is None:
            self._dim = d.shape[1]
        empty = Frames.empty(2 + (self._dim or 0) * self.cells) if self.kinetic else Frames.empty()
        if len(t) == 0:
            return empty
        prev = self._last_desc
        self._last_desc = d[-1].copy()
        flow_change = self._flow_change(u)
        if prev is None:
            if len(t) < 2:
                return empty
            dd, tt = d, t
        else:
            dd = np.concatenate([prev[None], d])
            tt = np.concatenate([[t[0] - 1.0 / self.rate_hz], t])
        diff = np.diff(dd, axis=0)
        activity = np.maximum(diff, 0.0).sum(axis=1)
        times = 0.5 * (tt[1:] + tt[:-1])
        if not self.kinetic:
            return Frames(times, activity)
        change = np.abs(diff) if flow_change is None else flow_change
        if self.cells:
            return Frames(times, np.column_stack([activity, change.sum(axis=1), change]))
        return Frames(times, np.stack([activity, change.sum(axis=1)], axis=1))
