"""Soft-DTW (Cuturi & Blondel 2017): a differentiable DTW discrepancy, its gradient and the soft alignment.

    R(i, j) = C[i, j] + softmin_gamma(R(i-1, j-1), R(i-1, j), R(i, j-1)),
    softmin_gamma(a) = -gamma log sum exp(-a / gamma),

with R(-1, -1) = 0 and every other border +inf; the value is R(n-1, m-1). As gamma -> 0 it tends to the
DTW distance with the symmetric1 step pattern (sum of local costs along the best path), from below:
DTW - gamma log(3) (n + m - 1) <= soft-DTW <= DTW. The soft alignment matrix E = dvalue/dC is the expected
alignment under the Gibbs distribution over all warping paths (E[0, 0] = E[n-1, m-1] = 1, entries in [0, 1]).
The gradient with respect to X follows by the chain rule through the local cost.

Kernels: `warpsync.align.kernels.softdtw` (anti-diagonal stripes, vectorised soft-min; the backward pass reuses
the forward soft-min weights). Memory: the value alone takes O(m) (32 rows of weights); the gradient or the
alignment takes about 32 bytes per cell (the forward weights, plus E itself).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from warpsync.align import _validate as V
from warpsync.align.cost import _cost_matrix
from warpsync.align.kernels import softdtw as K
from warpsync.errors import AlignmentError

__all__ = ["MAX_GRAD_CELLS", "SoftDTWResult", "soft_dtw"]

log = logging.getLogger(__name__)

#: The gradient/alignment needs ~32 bytes per cell; beyond this many cells (≈ 6.4 GB) we refuse rather than swap.
MAX_GRAD_CELLS = 200_000_000

_LANES = 32  # rows per stripe (vector lanes of one anti-diagonal step)


@dataclass(frozen=True)
class SoftDTWResult:
    """Result of `soft_dtw`.

    value: the soft-DTW discrepancy R(n-1, m-1), in units of the local cost (can be negative: the soft-min of
        several equal costs is below each of them).
    grad: d value / d X, shape of X as given ((n,) or (n, d)); None unless asked for.
    alignment: the soft alignment matrix E = d value / d C (n, m), entries in [0, 1]; None unless asked for.
    gamma: the smoothing parameter used.
    """

    value: float
    grad: np.ndarray | None
    alignment: np.ndarray | None
    gamma: float


def _check_gamma(gamma) -> float:
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise AlignmentError(f"gamma must be a positive number, got {gamma!r}")
    g = float(gamma)
    if not math.isfinite(g) or g <= 0.0 or not math.isfinite(1.0 / g):
        raise AlignmentError(
            f"gamma must be a finite number > 0 (got {gamma!r}); for gamma -> 0 use warpsync.align.dtw with "
            "step_pattern='symmetric1'"
        )
    return g


def _lanes(n: int, m: int) -> int:
    return max(1, min(_LANES, n, m))


def soft_dtw(
    X,
    Y=None,
    *,
    gamma: float = 1.0,
    metric: str = "sqeuclidean",
    return_grad: bool = False,
    return_alignment: bool = False,
) -> SoftDTWResult:
    """Soft-DTW between X (n,) or (n, d) and Y (m,) or (m, d).

    gamma: smoothing (> 0), in units of the local cost; default 1.0. Smaller is closer to DTW.
    metric: "sqeuclidean" (default, as in the paper), "euclidean", "cosine", or "precomputed" (X is then the
        (n, m) non-negative cost matrix and Y is None).
    return_grad: also return d value / d X (metrics sqeuclidean and euclidean; with "precomputed" the gradient
        with respect to the cost matrix is the alignment matrix: ask for return_alignment instead).
    return_alignment: also return the soft alignment matrix E (n, m).

    Raises AlignmentError for bad input (NaN/inf, mismatched dimensions, gamma <= 0, unknown metric) and when
    the accumulated cost overflows (rescale the features).
    """
    g = _check_gamma(gamma)
    return_grad = V.check_flag(return_grad, "return_grad")
    return_alignment = V.check_flag(return_alignment, "return_alignment")
    if return_grad and metric not in ("sqeuclidean", "euclidean"):
        V.check_metric(metric)
        raise AlignmentError(
            f"the gradient with respect to X is available for metric 'sqeuclidean' or 'euclidean', not {metric!r}; "
            "with 'precomputed', the gradient with respect to the cost matrix is return_alignment=True"
        )
    x_shape = None if metric == "precomputed" else np.shape(X)
    Xa, Ya = V.pair(X, Y, metric)
    if metric == "precomputed":
        n, m = Xa.shape
    else:
        n, m = Xa.shape[0], Ya.shape[0]
    lanes = _lanes(n, m)
    nb = (n + lanes - 1) // lanes
    need_e = return_grad or return_alignment
    if need_e and n * m > MAX_GRAD_CELLS:
        raise AlignmentError(
            f"the gradient/alignment of an {n}x{m} problem needs ~{32 * n * m / 1e9:.1f} GB (more than "
            f"{MAX_GRAD_CELLS} cells); compute the value alone, or align shorter windows"
        )
    if metric == "sqeuclidean":
        # the kernel computes |x_i - y_j|^2 itself, along its anti-diagonals: no n x m cost matrix
        C = _EMPTY2
        Xt = np.ascontiguousarray(Xa.T)
        # Y.T zero-padded by `lanes` columns each side, columns reversed (the kernel's lanes then read ascending)
        Yp = np.zeros((Xa.shape[1], m + 2 * lanes))
        Yp[:, lanes : lanes + m] = Ya[::-1].T
    else:
        C = Xa if metric == "precomputed" else _cost_matrix(Xa, Ya, metric)
        Xt = np.zeros((0, n))
        Yp = _EMPTY2
    W = np.empty((nb if need_e else 1, m + lanes + 1, 3, lanes))
    value = float(K._softdtw_forward(C, Xt, Yp, metric == "sqeuclidean", g, lanes, W))
    if not math.isfinite(value):
        raise AlignmentError(
            "soft-DTW overflowed (accumulated cost is not finite); rescale the features or the cost matrix"
        )
    E = None
    G = None
    if need_e:
        fused_grad = return_grad and metric == "sqeuclidean"
        store_e = return_alignment or (return_grad and not fused_grad)
        E = np.empty((n, m)) if store_e else _EMPTY2
        Gk = np.empty(Xa.shape) if fused_grad else _EMPTY2
        Yc = np.ascontiguousarray(Ya, dtype=np.float64) if fused_grad else _EMPTY2
        Xc = np.ascontiguousarray(Xa, dtype=np.float64) if fused_grad else _EMPTY2
        K._softdtw_backward(W, n, m, lanes, E, store_e, Xc, Yc, Gk, fused_grad)
        del W
        if fused_grad:
            G = Gk.reshape(x_shape)
        elif return_grad:
            G = _grad_x(Xa, Ya, C, E, metric).reshape(x_shape)
    return SoftDTWResult(value, G, E if return_alignment else None, g)


_EMPTY2 = np.empty((0, 0))


def _grad_x(X: np.ndarray, Y: np.ndarray, C: np.ndarray, E: np.ndarray, metric: str) -> np.ndarray:
    """d value / d X = sum_j E[i, j] d C[i, j] / d X[i] for the euclidean metric (BLAS)."""
    # euclidean: d/dx_i |x_i - y_j| = (x_i - y_j) / |x_i - y_j|, taken as 0 where x_i == y_j (a subgradient)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = np.where(C > 0.0, E / C, 0.0)
    return X * F.sum(axis=1)[:, None] - F @ Y
