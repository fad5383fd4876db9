"""CCA and CTW: path moments kernel vs oracle, CCA vs the generalised eigenproblem, CTW vs its oracle, and
recovery of a known warp between streams of different dimension where DTW cannot run or does worse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsync.align.cca import cca
from warpsync.align.ctw import ctw, uniform_path
from warpsync.align.dtw import dtw
from warpsync.align.kernels.cca import path_moments
from warpsync.align.reference.ctw import cca_ref, ctw_ref, path_moments_ref, uniform_path_ref
from warpsync.errors import AlignmentError


def _random_path(g, n, m):
    """A random monotone, continuous warping path from (0, 0) to (n-1, m-1)."""
    i = j = 0
    p = [(0, 0)]
    while (i, j) != (n - 1, m - 1):
        moves = [(1, 1), (1, 0), (0, 1)]
        moves = [(a, b) for a, b in moves if i + a < n and j + b < m]
        a, b = moves[g.integers(len(moves))]
        i, j = i + a, j + b
        p.append((i, j))
    return np.array(p, dtype=np.int64)


@settings(max_examples=40)
@given(
    n=st.integers(1, 30), m=st.integers(1, 30), dx=st.integers(1, 4), dy=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)  # fmt: skip
def test_path_moments_match_reference(n, m, dx, dy, seed):
    g = np.random.default_rng(seed)
    X = g.standard_normal((n, dx)) * 3 + 1
    Y = g.standard_normal((m, dy))
    path = _random_path(g, n, m)
    cx, cy, sx, sy, Sxy = np.empty(n), np.empty(m), np.empty(dx), np.empty(dy), np.empty((dx, dy))
    path_moments(X, Y, path, cx, cy, sx, sy, Sxy)
    rcx, rcy, mx, my, _, _, Cxy = path_moments_ref(X, Y, path)
    np.testing.assert_array_equal(cx, rcx)
    np.testing.assert_array_equal(cy, rcy)
    np.testing.assert_allclose(sx / len(path), mx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sy / len(path), my, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Sxy / len(path), Cxy, rtol=1e-10, atol=1e-12)


def test_cca_hand_worked():
    # x = [1, 2, 3], y = 2x: centred x = [-1, 0, 1], variance 2/3; y variance 8/3; correlation 1.
    # Unit-variance projections: wx = sqrt(3/2), wy = sqrt(3/8) (same sign, so u = v exactly).
    r = cca([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], reg=0.0)
    assert r.corr[0] == pytest.approx(1.0, abs=1e-12)
    assert abs(r.Wx[0, 0]) == pytest.approx(math.sqrt(1.5), rel=1e-12)
    assert abs(r.Wy[0, 0]) == pytest.approx(math.sqrt(3 / 8), rel=1e-12)
    u, v = r.transform(np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [4.0], [6.0]]))
    np.testing.assert_allclose(u, v, atol=1e-12)


@settings(max_examples=30)
@given(
    n=st.integers(12, 40), m=st.integers(12, 40), dx=st.integers(1, 4), dy=st.integers(1, 4),
    reg=st.sampled_from([0.0, 0.01, 0.5]), seed=st.integers(0, 2**31),
)  # fmt: skip
def test_cca_matches_generalised_eigenproblem(n, m, dx, dy, reg, seed):
    g = np.random.default_rng(seed)
    X = g.standard_normal((n, dx))
    Y = g.standard_normal((m, dy)) + X[np.minimum(np.arange(m), n - 1), :1] * 0.5
    path = _random_path(g, n, m)
    k = min(dx, dy)
    r = cca(X, Y, dim=k, reg=reg, path=path)
    Wx, Wy, rho, mx, _my = cca_ref(X, Y, path, k, reg)
    np.testing.assert_allclose(r.corr, np.clip(rho, 0, 1), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(r.mean_x, mx, atol=1e-12)
    # the constraints: unit (regularised) variance each side, cross covariance diagonal = correlations
    _, _, _, _, Cxx, Cyy, Cxy = path_moments_ref(X, Y, path)
    Cxx_r = Cxx + reg * np.trace(Cxx) / dx * np.eye(dx)
    Cyy_r = Cyy + reg * np.trace(Cyy) / dy * np.eye(dy)
    np.testing.assert_allclose(r.Wx.T @ Cxx_r @ r.Wx, np.eye(k), atol=1e-8)
    np.testing.assert_allclose(r.Wy.T @ Cyy_r @ r.Wy, np.eye(k), atol=1e-8)
    np.testing.assert_allclose(r.Wx.T @ Cxy @ r.Wy, np.diag(r.corr), atol=1e-8)
    # directions agree with the oracle's up to sign where the correlations are distinct
    gaps = np.diff(np.concatenate([[2.0], rho, [-2.0]]))
    for a in range(k):
        if min(abs(gaps[a]), abs(gaps[a + 1])) > 1e-3:
            s = np.sign(r.Wx[:, a] @ Cxx_r @ Wx[:, a])
            np.testing.assert_allclose(r.Wx[:, a], s * Wx[:, a], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(r.Wy[:, a], s * Wy[:, a], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 5), (5, 1), (4, 9), (9, 4), (7, 7)])
def test_uniform_path(n, m):
    p = uniform_path(n, m)
    np.testing.assert_array_equal(p, uniform_path_ref(n, m))
    assert tuple(p[0]) == (0, 0) and tuple(p[-1]) == (n - 1, m - 1)
    steps = np.diff(p, axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ctw_matches_reference(seed):
    g = np.random.default_rng([seed, 3])
    X = g.standard_normal((30, 3)).cumsum(axis=0)
    Y = g.standard_normal((24, 2)).cumsum(axis=0)
    r = ctw(X, Y, dim=2, reg=0.05, max_iter=8, tol=1e-6)
    path, obj, hist, conv = ctw_ref(X, Y, 2, 0.05, 8, 1e-6)
    np.testing.assert_allclose(r.history, hist, rtol=1e-8)
    np.testing.assert_array_equal(r.path, path)
    assert r.objective == pytest.approx(obj, rel=1e-8)
    assert r.converged == conv


# -- recovery of a known warp ------------------------------------------------------------------------------------


def _smooth_series(g, n, d, width=15):
    z = g.standard_normal((n + 4 * width, d))
    k = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / (width / 2)) ** 2)
    k /= k.sum()
    s = np.stack([np.convolve(z[:, i], k, mode="same") for i in range(d)], 1)[2 * width : 2 * width + n]
    return (s - s.mean(0)) / s.std(0)


def _warped_projection(g, n, m, dx, dy, noise=0.3):
    """X (n, dx) smooth; Y (m, dy) = random projection of X warped by a monotone map w (slope 0.5..2) + noise."""
    X = _smooth_series(g, n, dx)
    slope = np.clip(np.exp(np.convolve(g.standard_normal(m), np.ones(60) / 60, mode="same") * 3), 0.5, 2.0)
    w = np.concatenate([[0.0], np.cumsum(slope)[:-1]])
    w = w / w[-1] * (n - 1)  # Y frame j shows X at position w[j]
    A = g.standard_normal((dy, dx))
    Xw = np.stack([np.interp(w, np.arange(n), X[:, i]) for i in range(dx)], 1)
    return X, Xw @ A.T + noise * g.standard_normal((m, dy)), w


def _path_error(path, w):
    """Mean absolute error (X frames) of the path against the true warp."""
    return float(np.abs(path[:, 0] - w[path[:, 1]]).mean())


def _zscore(a):
    return (a - a.mean(0)) / a.std(0)


def _pca(a, k):
    a = a - a.mean(0)
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    return a @ vt[:k].T


@pytest.mark.parametrize("dx,dy", [(6, 4), (3, 7)])
def test_ctw_recovers_warp_across_dimensions(dx, dy):
    # Plain DTW cannot run on these (different dimensions). The per-stream normalised alternative: z-score
    # each stream and reduce both to min(dx, dy) dimensions by their own PCA, then DTW. Measured on seeds 0-2
    # (n=400, m=350, noise 0.3): CTW 0.8-1.1 frames mean error (one local optimum at 15 frames), the baseline
    # 4-81 frames. Asserted: CTW better on every seed, and at most a quarter of the baseline's error on average.
    ours, base = [], []
    for seed in range(3):
        g = np.random.default_rng([seed, dx, dy])
        X, Y, w = _warped_projection(g, 400, 350, dx, dy)
        with pytest.raises(AlignmentError, match="dimension"):
            dtw(X, Y)
        r = ctw(X, Y)
        k = min(dx, dy)
        b = dtw(_pca(_zscore(X), k), _pca(_zscore(Y), k)).path
        ours.append(_path_error(r.path, w))
        base.append(_path_error(b, w))
        assert ours[-1] < base[-1]
        # the refits matter: far better than the first DTW on the uniform-path CCA, and not a single refit
        assert r.n_iter >= 3 and r.objective < 0.9 * r.history[0]
    assert np.mean(ours) <= 0.25 * np.mean(base)
    assert np.median(ours) <= 2.0


def test_ctw_beats_dtw_on_normalised_features_same_dimension():
    # Same dimension, so DTW runs on per-stream z-scored features, but Y mixes X's channels (a random
    # projection): CTW learns the mixing. Measured (seeds 0-2): CTW 1.3-15.5 frames, z-scored DTW 9.7-96.
    ours, base = [], []
    for seed in range(3):
        g = np.random.default_rng([seed, 5, 5])
        X, Y, w = _warped_projection(g, 400, 350, 5, 5)
        ours.append(_path_error(ctw(X, Y).path, w))
        base.append(_path_error(dtw(_zscore(X), _zscore(Y)).path, w))
        assert ours[-1] < base[-1]
    assert np.mean(ours) <= 0.25 * np.mean(base)


def test_ctw_convergence_is_real(rng):
    X, Y, _ = _warped_projection(rng, 300, 260, 4, 3)
    r = ctw(X, Y, max_iter=50, tol=1e-3)
    assert r.converged and 2 <= r.n_iter < 50
    assert r.objective == pytest.approx(r.history.min())
    h = r.history
    stopped_by_tol = abs(h[-2] - h[-1]) <= 1e-3 * abs(h[-2])
    if not stopped_by_tol:  # then the path was a fixed point: refitting on it gives it back
        again = ctw(X, Y, init_path=r.path, max_iter=1)
        assert len(again.history) == 1
    one = ctw(X, Y, max_iter=1)
    assert one.n_iter == 1 and not one.converged


def test_ctw_identical_streams_align_on_the_diagonal(rng):
    X = _smooth_series(rng, 120, 3)
    r = ctw(X, X.copy())
    assert np.all(r.path[:, 0] == r.path[:, 1])
    assert r.corr[0] == pytest.approx(1.0, abs=1e-2)


def test_bad_arguments(rng):
    X = rng.standard_normal((20, 3))
    Y = rng.standard_normal((15, 2))
    for kwargs, match in [
        ({"dim": 3}, "dim"), ({"dim": 0}, "dim"), ({"dim": 1.5}, "dim"),
        ({"reg": -1.0}, "reg"), ({"reg": float("nan")}, "reg"), ({"reg": "x"}, "reg"),
        ({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"),
        ({"init_path": np.array([[0, 0], [25, 14]])}, "outside"), ({"init_path": [[0.5, 0]]}, "integer"),
    ]:  # fmt: skip
        with pytest.raises(AlignmentError, match=match):
            ctw(X, Y, **kwargs)
    with pytest.raises(AlignmentError, match="NaN"):
        ctw(np.full((5, 2), np.nan), Y)
    with pytest.raises(AlignmentError, match="singular"):
        cca(np.ones((10, 2)), rng.standard_normal((10, 2)), reg=0.0)
    with pytest.raises(AlignmentError, match="frames"):
        cca(X, Y)  # different lengths without a path
