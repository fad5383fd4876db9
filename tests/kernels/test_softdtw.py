"""Soft-DTW: kernel vs the cell-by-cell NumPy oracle, a hand-worked case, finite differences, DTW limit, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsync.align.dtw import dtw
from warpsync.align.reference.dtw import cost_matrix_ref
from warpsync.align.reference.soft import soft_dtw_grad_x_ref, soft_dtw_ref, sqeuclidean_cost
from warpsync.align.softdtw import soft_dtw
from warpsync.errors import AlignmentError


def _close(a, b, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale)


def test_hand_worked_two_by_two():
    # X = [0, 1], Y = [0, 1], gamma = 1: C = [[0, 1], [1, 0]].
    # R00 = 0, R01 = R10 = 1, R11 = 0 + softmin(0, 1, 1) = -log(1 + 2/e).
    # At (1,1) the weights are p = 1/(1 + 2/e) (diagonal) and q = (1/e)/(1 + 2/e) = 1/(e + 2) (above, left);
    # E01 = E10 = q, E00 = p + q + q = 1.
    r = soft_dtw([0.0, 1.0], [0.0, 1.0], gamma=1.0, return_alignment=True, return_grad=True)
    assert r.value == pytest.approx(-math.log(1 + 2 / math.e), rel=1e-14)
    q = 1 / (math.e + 2)
    np.testing.assert_allclose(r.alignment, [[1.0, q], [q, 1.0]], rtol=1e-14)
    # dvalue/dx_i = sum_j E_ij 2 (x_i - y_j): x0: 2 q (0 - 1); x1: 2 q (1 - 0)
    np.testing.assert_allclose(r.grad, [-2 * q, 2 * q], rtol=1e-13)


def test_hand_worked_single_row():
    # one frame against two: the only path visits both cells, value = 0 + 1, E = [[1, 1]]
    r = soft_dtw([0.0], [0.0, 1.0], gamma=0.5, return_alignment=True)
    assert r.value == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(r.alignment, [[1.0, 1.0]])


@settings(max_examples=60)
@given(
    n=st.integers(1, 13),
    m=st.integers(1, 13),
    d=st.integers(1, 3),
    gamma=st.sampled_from([1e-3, 0.1, 1.0, 10.0]),
    kind=st.sampled_from(["normal", "constant", "scaled"]),
    seed=st.integers(0, 2**31),
)
def test_matches_reference(n, m, d, gamma, kind, seed):
    g = np.random.default_rng(seed)
    X = g.standard_normal((n, d))
    Y = g.standard_normal((m, d))
    if kind == "constant":
        X[:] = 0.5
        Y[:] = 0.5
    elif kind == "scaled":
        X *= 30.0
    v, G, E = soft_dtw_grad_x_ref(X, Y, gamma)
    r = soft_dtw(X, Y, gamma=gamma, return_grad=True, return_alignment=True)
    scale = max(1.0, abs(v))
    _close(r.value, v, scale)
    _close(r.alignment, E)
    _close(r.grad, G, max(1.0, float(np.abs(G).max())))
    # value alone (O(m) memory path) is the same number
    assert soft_dtw(X, Y, gamma=gamma).value == r.value


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_other_metrics_match_reference(rng, metric):
    X = rng.standard_normal((23, 3))
    Y = rng.standard_normal((41, 3))
    v, E = soft_dtw_ref(cost_matrix_ref(X, Y, metric), 0.2)
    r = soft_dtw(X, Y, gamma=0.2, metric=metric, return_alignment=True)
    _close(r.value, v, max(1.0, abs(v)))
    _close(r.alignment, E)


@settings(max_examples=30)
@given(n=st.integers(1, 12), m=st.integers(1, 12), gamma=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**31))
def test_wide_dynamic_range_matches_reference(n, m, gamma, seed):
    # costs from 1e-3 to 1e6: soft-min arguments far below exp's range must underflow to weight 0, not NaN
    g = np.random.default_rng(seed)
    C = 10.0 ** g.uniform(-3, 6, (n, m))
    v, E = soft_dtw_ref(C, gamma)
    r = soft_dtw(C, metric="precomputed", gamma=gamma, return_alignment=True)
    _close(r.value, v, max(1.0, abs(v)))
    # The oracle's backward pass exponentiates differences of accumulated costs (~1e6 here) divided by gamma,
    # so its own error is ~eps * |R| / gamma per cell; the kernel stores the forward weights and has none of it.
    atol = 1e-9 + 4 * np.finfo(float).eps * C.sum() / gamma * (n + m)
    np.testing.assert_allclose(r.alignment, E, rtol=0, atol=atol)
    assert np.all(np.isfinite(r.alignment)) and r.alignment.min() >= 0.0
    if n == 1 or m == 1:  # a single path: every cell is on it
        np.testing.assert_allclose(r.alignment, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,m", [(1, 40), (40, 1), (70, 45), (33, 97), (64, 64), (2, 3)])
def test_matches_reference_across_stripes(rng, n, m):
    # sizes around and across the 32-row stripes of the kernel, and very unequal lengths
    C = rng.random((n, m)) * 5.0
    v, E = soft_dtw_ref(C, 0.7)
    r = soft_dtw(C, metric="precomputed", gamma=0.7, return_alignment=True)
    _close(r.value, v, max(1.0, abs(v)))
    _close(r.alignment, E)


@pytest.mark.parametrize("n,m,d", [(1, 40, 2), (40, 1, 3), (70, 45, 5), (33, 97, 1), (64, 64, 16), (100, 7, 4)])
def test_fused_grad_matches_reference_across_stripes(rng, n, m, d):
    # the gradient alone takes the fused path (no E matrix): per-stripe E buffers and one product per stripe
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    v, G, _ = soft_dtw_grad_x_ref(X, Y, 0.8)
    r = soft_dtw(X, Y, gamma=0.8, return_grad=True)
    assert r.alignment is None
    _close(r.value, v, max(1.0, abs(v)))
    _close(r.grad, G, max(1.0, float(np.abs(G).max())))
    # the same gradient as the path that also stores E
    both = soft_dtw(X, Y, gamma=0.8, return_grad=True, return_alignment=True)
    _close(r.grad, both.grad, max(1.0, float(np.abs(G).max())))


def test_alignment_is_symmetric_under_transposition(rng):
    X = rng.standard_normal((37, 4))
    Y = rng.standard_normal((50, 4))
    a = soft_dtw(X, Y, gamma=0.3, return_alignment=True)
    b = soft_dtw(Y, X, gamma=0.3, return_alignment=True)
    _close(a.value, b.value, abs(a.value))
    _close(a.alignment, b.alignment.T)
    assert a.alignment[0, 0] == pytest.approx(1.0) and a.alignment[-1, -1] == pytest.approx(1.0)
    assert a.alignment.min() >= 0.0 and a.alignment.max() <= 1.0 + 1e-12


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_grad_matches_finite_differences(rng, metric):
    X = rng.standard_normal((6, 3))
    Y = rng.standard_normal((8, 3))
    r = soft_dtw(X, Y, gamma=0.5, metric=metric, return_grad=True)
    h = 1e-6
    fd = np.zeros_like(X)
    for i in range(X.shape[0]):
        for k in range(X.shape[1]):
            Xp = X.copy()
            Xm = X.copy()
            Xp[i, k] += h
            Xm[i, k] -= h
            vp = soft_dtw(Xp, Y, gamma=0.5, metric=metric).value
            vm = soft_dtw(Xm, Y, gamma=0.5, metric=metric).value
            fd[i, k] = (vp - vm) / (2 * h)
    np.testing.assert_allclose(r.grad, fd, rtol=1e-5, atol=1e-7)


def test_grad_keeps_1d_shape(rng):
    x = rng.standard_normal(9)
    y = rng.standard_normal(11)
    r = soft_dtw(x, y, return_grad=True)
    assert r.grad.shape == (9,)
    _, G, _ = soft_dtw_grad_x_ref(x, y, 1.0)
    _close(r.grad, G[:, 0], float(np.abs(G).max()))


def test_tends_to_dtw_from_below(rng):
    # DTW - gamma log3 (n + m - 1) <= soft-DTW <= DTW (symmetric1 = sum of local costs on the best path)
    X = rng.standard_normal((40, 2))
    Y = rng.standard_normal((55, 2))
    d = dtw(X, Y, step_pattern="symmetric1", return_path=False).distance
    for gamma in (1.0, 0.1, 0.01, 1e-4):
        v = soft_dtw(X, Y, gamma=gamma).value
        assert d - gamma * math.log(3) * (40 + 55 - 1) - 1e-9 <= v <= d + 1e-9
    assert soft_dtw(X, Y, gamma=1e-4).value == pytest.approx(d, abs=1e-3)


def test_large_problem_value_matches_full_path(rng):
    # the value-only path (weights for one stripe, reused) equals the one with the gradient
    X = rng.standard_normal((300, 16))
    Y = rng.standard_normal((257, 16))
    a = soft_dtw(X, Y, gamma=1.0)
    b = soft_dtw(X, Y, gamma=1.0, return_grad=True, return_alignment=True)
    assert a.value == b.value
    # every path passes rows 0 and n-1 once in expectation on the diagonal corners; rows sum to >= 1
    assert np.all(b.alignment.sum(axis=1) >= 1.0 - 1e-9)
    C = sqeuclidean_cost(X[:20], Y[:20])
    v, _ = soft_dtw_ref(C, 1.0)
    assert soft_dtw(X[:20], Y[:20]).value == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
        ({"gamma": "1"}, "gamma"),
        ({"gamma": True}, "gamma"),
        ({"metric": "manhattan"}, "metric"),
        ({"metric": "cosine", "return_grad": True}, "gradient"),
        ({"return_grad": 1}, "return_grad"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(AlignmentError, match=match):
        soft_dtw(np.zeros((3, 2)), np.ones((4, 2)), **kwargs)


def test_bad_inputs():
    with pytest.raises(AlignmentError, match="NaN"):
        soft_dtw([0.0, np.nan], [1.0])
    with pytest.raises(AlignmentError, match="dimension|features"):
        soft_dtw(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(AlignmentError, match="empty"):
        soft_dtw(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(AlignmentError, match="precomputed"):
        soft_dtw(np.ones((3, 3)), metric="precomputed", return_grad=True)
    with pytest.raises(AlignmentError, match="negative"):
        soft_dtw(-np.ones((3, 3)), metric="precomputed")
    with pytest.raises(AlignmentError, match="overflow"):
        soft_dtw(np.full((3, 3), 1e308), metric="precomputed")
