"""On-line time warping: align two feature streams incrementally, as their frames arrive (Dixon 2005, OLTW).

`OnlineAligner` is a pure processor: it owns no socket or thread. Push frames of either stream, in chunks
of any size (including empty), in any interleaving; each push runs as many OLTW steps as the frames received
so far allow and returns the matched pairs those steps produced. Because a step is taken only when the frames
it needs are there, and what a step does depends only on frame values, the result is exactly the same for
every way of chunking the same two streams (tested), and equals one pass over the whole streams.

Memory is bounded: an (c+1)^2 ring of accumulated costs, the last c frames of each stream, at most
`max_pending` frames waiting per stream, and the last `history` matched pairs. Cost per step is O(c d).

Design: Dixon's OLTW with search width c and MaxRunCount, the symmetric (1, 1, 2) step weights and costs
normalised by i + j + 2 when the frontier is compared. Each step emits the frontier's best cell (x, y): the
current estimate that X frame x matches Y frame y. This estimate is causal (it never uses frames after x and
y) and is not forced to be monotone; a backtracked offline DTW on the same data is what it approximates
(agreement measured in tests/kernels/test_online.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from warpsync.align.kernels import oltw as K
from warpsync.errors import AlignmentError

__all__ = ["ONLINE_METRICS", "OnlineAligner", "OnlineStep"]

log = logging.getLogger(__name__)

ONLINE_METRICS = {"euclidean": K.METRIC_EUCLIDEAN, "sqeuclidean": K.METRIC_SQEUCLIDEAN, "cosine": K.METRIC_COSINE}


@dataclass(frozen=True)
class OnlineStep:
    """What one push produced.

    pairs: (k, 2) int64 [x_frame, y_frame] matched pairs, one per OLTW step taken, oldest first.
    cost: (k,) float64 normalised accumulated cost D(x, y) / (x + y + 2) at each pair (local-cost units).
    """

    pairs: np.ndarray
    cost: np.ndarray


def _check_int(value, name: str, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < lo:
        raise AlignmentError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


class OnlineAligner:
    """Incremental OLTW aligner between stream X (rows) and stream Y (columns), frames of `dim` features.

    dim: features per frame (the same for both streams; for streams of different dimension or modality use
        `OnlineAligner.with_projection` with a CTW/CCA fit).
    search_width: c, frames either side of the frontier searched per step; default 100.
    max_run: MaxRunCount, the most consecutive steps advancing only one stream; default 3 (slope 1/3..3).
    metric: local cost, "euclidean" (default, as Dixon), "sqeuclidean" or "cosine" (a frame of zeros is taken
        as cost 1 against everything).
    history: how many recent matched pairs `recent_path` keeps; default 1024.
    max_pending: most frames of one stream held waiting for the other; beyond it `push_*` raises
        AlignmentError (nothing is dropped silently). Default 100000.
    """

    def __init__(
        self,
        dim: int,
        *,
        search_width: int = 100,
        max_run: int = 3,
        metric: str = "euclidean",
        history: int = 1024,
        max_pending: int = 100_000,
    ) -> None:
        self.dim = _check_int(dim, "dim", 1)
        self.search_width = _check_int(search_width, "search_width", 1)
        self.max_run = _check_int(max_run, "max_run", 1)
        self.history = _check_int(history, "history", 1)
        self.max_pending = _check_int(max_pending, "max_pending", 1)
        if metric not in ONLINE_METRICS:
            raise AlignmentError(f"unknown metric {metric!r}; use one of {tuple(ONLINE_METRICS)}")
        self.metric = metric
        # input dimensions per stream and the optional projection into a shared space (see with_projection)
        self.x_dim = self.dim
        self.y_dim = self.dim
        self._proj: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.reset()

    @classmethod
    def with_projection(cls, projection, **kwargs) -> OnlineAligner:
        """An aligner for two streams of different dimension or modality.

        projection: a fitted `CTWResult` or `CCAResult` (anything with Wx (dx, k), Wy (dy, k), mean_x, mean_y),
            e.g. CTW learned offline on a calibration recording of the same rig. Frames of X (dx features) and
            Y (dy features) are projected into its shared k-dimensional space, (x - mean_x) Wx and
            (y - mean_y) Wy, and aligned there. Other keyword arguments as for the constructor.
        """
        try:
            Wx = np.asarray(projection.Wx, dtype=np.float64)
            Wy = np.asarray(projection.Wy, dtype=np.float64)
            mx = np.asarray(projection.mean_x, dtype=np.float64).reshape(-1)
            my = np.asarray(projection.mean_y, dtype=np.float64).reshape(-1)
        except AttributeError:
            raise AlignmentError("projection must be a CTWResult or CCAResult (with Wx, Wy, mean_x, mean_y)") from None
        if (
            Wx.ndim != 2
            or Wy.ndim != 2
            or Wx.shape[1] != Wy.shape[1]
            or Wx.shape[1] == 0
            or mx.shape != (Wx.shape[0],)
            or my.shape != (Wy.shape[0],)
            or not all(np.all(np.isfinite(a)) for a in (Wx, Wy, mx, my))
        ):
            raise AlignmentError("projection has inconsistent or non-finite Wx, Wy, mean_x, mean_y; refit it")
        self = cls(Wx.shape[1], **kwargs)
        self.x_dim = Wx.shape[0]
        self.y_dim = Wy.shape[0]
        self._proj = (
            np.ascontiguousarray(mx),
            np.ascontiguousarray(Wx),
            np.ascontiguousarray(my),
            np.ascontiguousarray(Wy),
        )
        return self

    def reset(self) -> None:
        """Forget everything: the next frames start a new alignment at (0, 0)."""
        c, d = self.search_width, self.dim
        self._st = np.array([-1, -1, 0, K.NONE, 0], dtype=np.int64)
        self._D = np.full((c + 1, c + 1), np.inf)
        self._Xr = np.zeros((c, d))
        self._Yr = np.zeros((c, d))
        self._px = np.zeros((0, d))
        self._py = np.zeros((0, d))
        self._hist = np.zeros((self.history, 2), dtype=np.int64)
        self._hist_cost = np.zeros(self.history)
        self._nhist = 0  # total pairs ever produced
        self._last = (-1, -1)
        self._last_cost = float("nan")

    # -- input -------------------------------------------------------------------------------------------------
    def _frames(self, frames, name: str) -> np.ndarray:
        dim = self.x_dim if name == "X" else self.y_dim
        try:
            a = np.asarray(frames, dtype=np.float64)
        except (TypeError, ValueError):
            raise AlignmentError(f"{name} frames must be numeric arrays of shape (k, {dim})") from None
        if a.ndim == 1 and dim == 1:
            a = a[:, None]
        elif a.ndim == 1 and a.size == 0:
            a = a.reshape(0, dim)
        if a.ndim != 2 or a.shape[1] != dim:
            raise AlignmentError(f"{name} frames must have shape (k, {dim}) (k may be 0), got {np.shape(frames)}")
        if not np.all(np.isfinite(a)):
            raise AlignmentError(f"{name} frames contain NaN or inf; drop or interpolate them before aligning")
        if self._proj is not None:
            mean, W = self._proj[:2] if name == "X" else self._proj[2:]
            # frame by frame in a fixed order, so a frame's projection does not depend on its chunk
            a = K.project(np.ascontiguousarray(a), mean, W)
        return a

    def push_x(self, frames) -> OnlineStep:
        """Append frames (k, dim) of stream X (k may be 0); run the steps now possible."""
        a = self._frames(frames, "X")
        return self._push(a, None)

    def push_y(self, frames) -> OnlineStep:
        """Append frames (k, dim) of stream Y (k may be 0); run the steps now possible."""
        a = self._frames(frames, "Y")
        return self._push(None, a)

    def push(self, x_frames=None, y_frames=None) -> OnlineStep:
        """Append frames of both streams at once (either may be None or empty)."""
        a = None if x_frames is None else self._frames(x_frames, "X")
        b = None if y_frames is None else self._frames(y_frames, "Y")
        return self._push(a, b)

    def _push(self, a: np.ndarray | None, b: np.ndarray | None) -> OnlineStep:
        px = self._px if a is None or len(a) == 0 else np.concatenate([self._px, a])
        py = self._py if b is None or len(b) == 0 else np.concatenate([self._py, b])
        cap = len(px) + len(py) + 1
        pairs = np.empty((cap, 2), dtype=np.int64)
        cost = np.empty(cap)
        ux, uy, k = K.oltw_advance(
            self._st, self._D, self._Xr, self._Yr, px, py, self.search_width, self.max_run,
            ONLINE_METRICS[self.metric], pairs, cost,
        )  # fmt: skip
        self._px = px[ux:].copy() if ux < len(px) else px[:0]
        self._py = py[uy:].copy() if uy < len(py) else py[:0]
        pairs = pairs[:k].copy()
        cost = cost[:k].copy()
        self._remember(pairs, cost)
        for name in ("X", "Y"):
            p = self._px if name == "X" else self._py
            if len(p) > self.max_pending:
                excess = len(p) - self.max_pending
                if name == "X":
                    self._px = p[: self.max_pending].copy()
                else:
                    self._py = p[: self.max_pending].copy()
                raise AlignmentError(
                    f"stream {name} is {len(p)} frames ahead of what the aligner can match (max_pending="
                    f"{self.max_pending}); its last {excess} frames were not accepted (pairs this push produced "
                    "are in recent_path()). Feed the other stream, or reset() when one stream has stopped"
                )
        return OnlineStep(pairs, cost)

    def _remember(self, pairs: np.ndarray, cost: np.ndarray) -> None:
        k = len(pairs)
        if k == 0:
            return
        H = self.history
        idx = (self._nhist + np.arange(max(0, k - H), k)) % H
        self._hist[idx] = pairs[-min(k, H) :]
        self._hist_cost[idx] = cost[-min(k, H) :]
        self._nhist += k
        self._last = (int(pairs[-1, 0]), int(pairs[-1, 1]))
        self._last_cost = float(cost[-1])

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def position(self) -> tuple[int, int]:
        """The current matched pair (x frame, y frame); (-1, -1) before the first step."""
        return self._last

    @property
    def cost(self) -> float:
        """Normalised accumulated cost at `position` (NaN before the first step)."""
        return self._last_cost

    @property
    def frames_used(self) -> tuple[int, int]:
        """Frames of X and Y consumed by steps so far (the frontier corner is one less of each)."""
        return int(self._st[0] + 1), int(self._st[1] + 1)

    @property
    def pending(self) -> tuple[int, int]:
        """Frames of X and Y received but not yet needed by a step."""
        return len(self._px), len(self._py)

    @property
    def steps(self) -> int:
        """OLTW steps taken (= matched pairs produced) since the last reset."""
        return int(self._st[4])

    def recent_path(self) -> tuple[np.ndarray, np.ndarray]:
        """The last min(history, steps) matched pairs (k, 2) and their normalised costs, oldest first."""
        k = min(self._nhist, self.history)
        idx = (self._nhist - k + np.arange(k)) % self.history
        return self._hist[idx].copy(), self._hist_cost[idx].copy()
