"""GTW-style alignment of several streams (any dimensions) to one common timeline, by CTW to a template.

In the spirit of generalized time warping (Zhou & De la Torre 2012/2016), but with a simple, testable
alternation instead of GTW's joint Gauss-Newton warp optimisation:

1. the template starts as the reference stream (its frames define the timeline's length L);
2. every stream is aligned to the template by CTW (`warpsync.align.ctw`), giving a warping path and
   projections of template and stream into a shared canonical space;
3. the template is re-estimated as the consensus of all streams: at each template frame, the canonical part of
   the template is replaced by the mean over streams of their (aligned, back-projected) canonical features,
   the rest of the template is kept;
4. the timeline is re-parameterised as the average of the streams' warps (each stream's aligned position as a
   fraction of its length, averaged over streams): the common timeline is no longer biased to the reference's
   own timing, as in GTW where the template's time is the mean warp;
5. repeat from 2 until the summed CTW objective changes by less than `tol` (relative) or `max_iter`.

The result gives, per stream, its path against the common timeline and its (fractional) frame position at every
timeline step, which is what a session needs to put N streams on one clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.cca import _check_reg
from warpsync.align.ctw import _check_positive_int, _check_tol, ctw
from warpsync.errors import AlignmentError

__all__ = ["GTWResult", "gtw"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GTWResult:
    """Result of `gtw`.

    paths: per stream, a (k, 2) int64 warping path [timeline step, stream frame].
    positions: per stream, (L,) float64: the mean frame of the stream aligned to each timeline step.
    template: (L, d_ref) the consensus template, in the reference stream's feature space.
    history: (iterations,) summed CTW objective of all streams against the template, per outer iteration.
    converged: True if the relative change of the objective fell below tol before max_iter.
    n_iter: outer iterations taken.
    reference: index of the reference stream.
    """

    paths: list[np.ndarray]
    positions: list[np.ndarray]
    template: np.ndarray
    history: np.ndarray
    converged: bool
    n_iter: int
    reference: int


def _positions(path: np.ndarray, L: int) -> np.ndarray:
    """Mean stream frame aligned to each of the L timeline steps (every step occurs on a full path)."""
    s = np.bincount(path[:, 0], weights=path[:, 1], minlength=L)
    c = np.bincount(path[:, 0], minlength=L)
    return s / np.maximum(c, 1)


def gtw(
    streams,
    *,
    reference: int = 0,
    dim: int | None = None,
    reg: float = 0.01,
    max_iter: int = 10,
    tol: float = 1e-3,
    ctw_max_iter: int = 20,
    step_pattern: str = "symmetric2",
) -> GTWResult:
    """Align two or more streams, each (n_s, d_s) with any d_s, to one common timeline.

    reference: which stream starts the template (its length is the timeline's); default 0.
    dim: canonical dimensions per CTW (capped at min(d_ref, d_s)); default: that cap.
    reg: CCA ridge (relative, >= 0); default 0.01.
    max_iter: outer iterations (template and timeline updates); default 10. tol: relative change of the summed
        objective that stops the loop; default 1e-3.
    ctw_max_iter, step_pattern: passed to each CTW.

    Raises AlignmentError for bad input (fewer than two streams, NaN/inf, bad parameters).
    """
    if isinstance(streams, np.ndarray) or not hasattr(streams, "__len__") or len(streams) < 2:
        raise AlignmentError("streams must be a list of at least two (n, d) arrays")
    S = [V.as_series(s, f"streams[{i}]") for i, s in enumerate(streams)]
    if (
        isinstance(reference, (bool, np.bool_))
        or not isinstance(reference, (int, np.integer))
        or not (0 <= reference < len(S))
    ):
        raise AlignmentError(f"reference must be a stream index in [0, {len(S)}), got {reference!r}")
    if dim is not None and (isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or dim < 1):
        raise AlignmentError(f"dim must be an integer >= 1 or None, got {dim!r}")
    r = _check_reg(reg)
    iters = _check_positive_int(max_iter, "max_iter")
    inner = _check_positive_int(ctw_max_iter, "ctw_max_iter")
    tol_ = _check_tol(tol)

    T = S[reference].copy()
    L, d_ref = T.shape
    history: list[float] = []
    converged = False
    results = []
    for it in range(iters):
        results = []
        for s, Xs in enumerate(S):
            k = min(d_ref, Xs.shape[1]) if dim is None else min(dim, d_ref, Xs.shape[1])
            results.append(ctw(T, Xs, dim=k, reg=r, max_iter=inner, step_pattern=step_pattern))
        J = float(sum(res.objective for res in results))
        history.append(J)
        log.debug("gtw iteration %d: summed objective %.6g", it, J)
        if len(history) >= 2 and abs(history[-2] - J) <= tol_ * max(abs(history[-2]), 1e-300):
            converged = True
            break
        if it == iters - 1:
            break
        T = _update_template(T, S, results)
    paths = [res.path for res in results]
    positions = [_positions(p, L) for p in paths]
    return GTWResult(paths, positions, T, np.asarray(history), converged, len(history), int(reference))


def _update_template(T: np.ndarray, S: list[np.ndarray], results) -> np.ndarray:
    """Consensus features (step 3) on the average warp (step 4), resampled to L uniform timeline steps."""
    L = T.shape[0]
    delta = np.zeros_like(T)
    warp = np.zeros(L)
    for Xs, res in zip(S, results):
        U = (T - res.mean_x) @ res.Wx  # template in this pair's canonical space
        Vs = (Xs - res.mean_y) @ res.Wy  # stream in the same space
        p = res.path
        Vmean = np.zeros((L, Vs.shape[1]))
        np.add.at(Vmean, p[:, 0], Vs[p[:, 1]])
        Vmean /= np.maximum(np.bincount(p[:, 0], minlength=L), 1)[:, None]
        # back to template space: least-squares inverse of the projection (only the canonical part moves)
        delta += (Vmean - U) @ np.linalg.pinv(res.Wx)
        n_s = Xs.shape[0]
        warp += _positions(p, L) / max(n_s - 1, 1)
    T_new = T + delta / len(S)
    warp /= len(S)
    # average warp: timeline step l sits at fraction a = l/(L-1) of the mean warp; invert a(i) by interpolation
    warp = np.maximum.accumulate(warp)
    if L == 1 or warp[-1] <= warp[0]:
        return T_new
    a = (warp - warp[0]) / (warp[-1] - warp[0])
    target = np.linspace(0.0, 1.0, L)
    # a is non-decreasing; make it strictly increasing for np.interp by a tiny ramp
    a = a + np.arange(L) * 1e-12
    src = np.interp(target, a, np.arange(L, dtype=np.float64))
    return np.stack([np.interp(src, np.arange(L), T_new[:, c]) for c in range(T_new.shape[1])], axis=1)
