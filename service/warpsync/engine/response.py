"""What a contact does to motion, learned from a sensor: the response that turns a microphone's impact envelope
(the starts of contacts) into the kinetic envelope a sensor or camera shows (the velocity changes they cause).

A sensor on a moving object locked to a microphone (the sensor bridge) gives both ends of the same contacts on
one timeline: the microphone hears each contact start, the sensor feels the velocity change that follows. The
ridge least-squares FIR ``r`` with ``kinetic(t) ~ sum_l r[l] impacts(t - l)`` over lags ``lo .. hi`` is that
time course. The microphone hears every object's contacts, the sensor feels its own object's: the other contacts
are noise in the regressor, which shrinks ``r`` but does not shift it. Applied to the microphone's impacts, ``r``
predicts the kinetic envelope of every contact it hears, which a camera's cells can be weighed against
(`engine/hop.py`): a camera sees every object, not only the sensor's. It rests on the other objects' contacts
having the sensor's object's time course (the same kind of contact).

`ContactResponse` accumulates the normal equations (with exponential forgetting over `RESPONSE_MEMORY_S` of data;
without it, a recording fed in pieces gives the response of the whole: `test_response.py`); `fit_response` is the
one-shot reference. Nothing here is kept per sample: the state is one (k, k) matrix and a k-vector, k = 121 lags.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RESPONSE_LAGS_S = (-0.03, 0.09)
"""Lags of the response, seconds: a velocity change follows its contact's start by up to its duration (the
simulator's 40 ms kicks peak 20 ms in); the negative lags absorb features stamped early."""
RESPONSE_RIDGE = 0.01
"""Ridge, as a fraction of the mean diagonal of the normal equations."""
RESPONSE_MEMORY_S = 60.0
"""Time constant of the forgetting, seconds of learned data."""


def _design(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The design matrix of outputs ``i = 0 .. len(x) - (hi - lo) - 1`` whose inputs `x` starts ``hi`` steps
    before: column ``j`` is the input ``lo + j`` steps before the output, ``x[i + hi - (lo + j)]``."""
    return sliding_window_view(x, hi - lo + 1)[:, ::-1]


def through_response(x: np.ndarray, r: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Impacts `x` through the response `r` (lags ``lo .. hi`` grid steps): ``n = len(x) - (hi - lo)`` outputs, the
    first ``hi`` steps after `x` starts, clipped at zero (an envelope); NaN where an input was missing."""
    return np.maximum(_design(np.asarray(x, dtype=np.float64), lo, hi) @ r, 0.0)


def fit_response(x: np.ndarray, y: np.ndarray, lo: int, hi: int, ridge: float = RESPONSE_RIDGE) -> np.ndarray:
    """The reference: the ridge FIR ``r`` (lags ``lo .. hi`` grid steps) with ``y[t] ~ sum_l r[l - lo] x[t - l]``,
    by an explicit design matrix; `x` and `y` on one grid, NaN where missing (rows with a NaN take no part)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lags = np.arange(lo, hi + 1)
    n = len(y)
    X = np.full((n, len(lags)), np.nan)
    for j, lag in enumerate(lags):
        src = np.arange(n) - lag
        ok = (src >= 0) & (src < len(x))
        X[ok, j] = x[src[ok]]
    rows = np.isfinite(X).all(axis=1) & np.isfinite(y)
    A = X[rows].T @ X[rows]
    b = X[rows].T @ y[rows]
    return _solve(A, b, ridge)


def _solve(A: np.ndarray, b: np.ndarray, ridge: float) -> np.ndarray:
    d = float(np.trace(A)) / len(b)
    if not d > 0:
        return np.zeros(len(b))
    return np.linalg.solve(A + ridge * d * np.eye(len(b)), b)


class ContactResponse:
    """The response learned online on a grid of `grid_s` seconds (`add` new stretches as they arrive)."""

    def __init__(
        self,
        grid_s: float,
        lags_s: tuple[float, float] = RESPONSE_LAGS_S,
        ridge: float = RESPONSE_RIDGE,
        memory_s: float = RESPONSE_MEMORY_S,
    ) -> None:
        self.grid_s = float(grid_s)
        self.lo = math.floor(lags_s[0] / grid_s + 0.5)
        self.hi = math.floor(lags_s[1] / grid_s + 0.5)
        self.ridge = float(ridge)
        self.memory_s = float(memory_s)
        k = self.hi - self.lo + 1
        self._A = np.zeros((k, k))
        self._b = np.zeros(k)
        self.learned_s = 0.0
        """Seconds of rows learned (before forgetting)."""
        self._r: np.ndarray | None = None

    @property
    def lags(self) -> np.ndarray:
        """The response's lags, grid steps."""
        return np.arange(self.lo, self.hi + 1)

    def reset(self) -> None:
        self._A[:] = 0.0
        self._b[:] = 0.0
        self.learned_s = 0.0
        self._r = None

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn from outputs `y` (``n`` grid points) and the inputs they depend on, `x` (``n + hi - lo`` points on
        the same grid, from ``hi`` steps before the first output to ``-lo`` steps after the last). NaN marks
        missing data; rows touching one take no part."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if len(x) != len(y) + self.hi - self.lo:
            raise ValueError(f"response inputs must have {len(y) + self.hi - self.lo} points, got {len(x)}")
        if len(y) == 0:
            return
        X = _design(x, self.lo, self.hi)
        rows = np.isfinite(X).all(axis=1) & np.isfinite(y)
        if not rows.any():
            return
        Xr, yr = X[rows], y[rows]
        decay = math.exp(-len(y) * self.grid_s / self.memory_s)
        self._A = decay * self._A + Xr.T @ Xr
        self._b = decay * self._b + Xr.T @ yr
        self.learned_s += float(rows.sum()) * self.grid_s
        self._r = None

    @property
    def response(self) -> np.ndarray:
        """``r`` over `lags` (zeros before anything was learned)."""
        if self._r is None:
            self._r = _solve(self._A, self._b, self.ridge)
        return self._r

    def input_times(self, t0: float, n: int) -> np.ndarray:
        """The grid times of the inputs that ``n`` outputs from `t0` on depend on (what `add` and `apply` take)."""
        return t0 + self.grid_s * np.arange(-self.hi, n - self.lo)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The predicted kinetic envelope for impacts `x` (``n + hi - lo`` points laid out as in `add`; ``n``
        out), clipped at zero (an envelope); NaN where an input was missing."""
        return through_response(x, self.response, self.lo, self.hi)
