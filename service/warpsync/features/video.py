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


def motion_activity(
    frames: np.ndarray,
    rate_hz: float,
    *,
    t0_s: float = 0.0,
    difference_vectors: bool = False,
    kinetic: bool = False,
    cells: bool = False,
    baseline_frames: int = 1,
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
    ) -> None:
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
        self._dim: int | None = None  # description length (columns of the per-cell output)
        self._k = 0  # index of the next frame
        self._last_frames: np.ndarray | None = None  # raw frames: the previous `baseline_frames` (as float)
        self._last_desc: np.ndarray | None = None  # previous description vector
        self._raw: bool | None = None

    def descriptions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame descriptions and their times for the new frames (motion energy for raw frames)."""
        x = np.asarray(x)
        n = len(x)
        if n == 0:
            return np.zeros(0), np.zeros((0, 1))
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
            return self.t0_s + (ks - shift) / self.rate_hz, x.reshape(n, -1).astype(np.float64)
        b = self.baseline_frames
        f = _mono(x)
        prev = self._last_frames
        if prev is not None:
            f = np.concatenate([prev, f])
        self._last_frames = f[-b:].copy()
        # f[i] is frame ks[0] - len(prev) + i; a difference needs the frame b before it
        ks = ks[0] - (0 if prev is None else len(prev)) + np.arange(b, len(f))
        if len(ks) == 0:
            return np.zeros(0), np.zeros((0, GRID * GRID))
        # mean |f_k - f_{k-b}| per cell: an object moving anywhere inside a cell changes its pixels. (The change
        # of the cell's *mean*, used before, sees only what crosses cell borders or changes brightness.)
        motion = _cells(np.abs(f[b:] - f[:-b]))
        return self.t0_s + (ks - 0.5 * b) / self.rate_hz, motion

    def push(self, x: np.ndarray) -> Frames:
        t, d = self.descriptions(x)
        if len(t) and self._dim is None:
            self._dim = d.shape[1]
        empty = Frames.empty(2 + (self._dim or 0) * self.cells) if self.kinetic else Frames.empty()
        if len(t) == 0:
            return empty
        prev = self._last_desc
        self._last_desc = d[-1].copy()
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
        change = np.abs(diff)
        if self.cells:
            return Frames(times, np.column_stack([activity, change.sum(axis=1), change]))
        return Frames(times, np.stack([activity, change.sum(axis=1)], axis=1))
