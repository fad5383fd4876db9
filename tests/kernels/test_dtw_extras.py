"""Batch, multiscale and subsequence search against the reference and against `dtw` itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsync.align import dtw
from warpsync.align.batch import dtw_all_pairs, dtw_cross, dtw_pairs
from warpsync.align.multiscale import downsample, dtw_multiscale, path_agreement, project_band
from warpsync.align.reference.dtw import cost_matrix_ref, dtw_ref, lb_keogh_ref, subsequence_search_ref
from warpsync.align.subsequence import lb_keogh, subsequence_search
from warpsync.align.windows import corridor_band
from warpsync.errors import AlignmentError


def _warped_pair(rng, n, m, noise=0.05, d=1):
    x = np.cumsum(rng.normal(size=(n, d)), axis=0)
    t = np.cumsum(np.clip(1 + 0.6 * np.sin(np.arange(m) / max(m / 7, 1)), 0.2, None))
    t = (t - t[0]) / (t[-1] - t[0]) * (n - 1)
    y = np.stack([np.interp(t, np.arange(n), x[:, k]) for k in range(d)], axis=1) + noise * rng.normal(size=(m, d))
    return x, y


# ---------------------------------------------------------------------------------------------------- batch


@pytest.mark.parametrize("pattern", ["symmetric1", "symmetric2"])
@pytest.mark.parametrize("window", [None, ("sakoechiba", 12)])
def test_batch_all_pairs_matches_reference(rng, pattern, window):
    lengths = [1, 7, 20, 25, 30, 30]
    series = [rng.normal(size=L) for L in lengths]
    if window is not None:
        series = [rng.normal(size=L) for L in [20, 25, 30, 30, 31]]
    D = dtw_all_pairs(series, step_pattern=pattern, window=window)
    k = len(series)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    for i in range(k):
        for j in range(i + 1, k):
            C = cost_matrix_ref(series[i], series[j])
            mask = None
            if window is not None:
                ii, jj = np.indices(C.shape)
                mask = np.abs(ii - jj) <= window[1]
            ref, *_ = dtw_ref(C, pattern, mask)
            assert D[i, j] == pytest.approx(ref, rel=1e-12)


def test_batch_multidim_cross_and_pairs(rng):
    A = [rng.normal(size=(L, 3)) for L in (5, 9, 16)]
    B = [rng.normal(size=(L, 3)) for L in (1, 8)]
    for metric in ("sqeuclidean", "euclidean", "cosine"):
        X = dtw_cross(A, B, metric=metric)
        for i, a in enumerate(A):
            for j, b in enumerate(B):
                ref, *_ = dtw_ref(cost_matrix_ref(a, b, metric), "symmetric2")
                assert X[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    p = dtw_pairs(A, np.array([[0, 2], [2, 1]]))
    assert p[0] == pytest.approx(dtw(A[0], A[2]).distance) and p[1] == pytest.approx(dtw(A[2], A[1]).distance)


def test_batch_bad_input():
    with pytest.raises(AlignmentError, match="no path"):
        dtw_all_pairs([np.zeros(5), np.zeros(20)], window=("sakoechiba", 3))
    with pytest.raises(AlignmentError, match="symmetric1 or symmetric2"):
        dtw_all_pairs([np.zeros(5), np.zeros(5)], step_pattern="asymmetric")
    with pytest.raises(AlignmentError, match="NaN"):
        dtw_all_pairs([np.zeros(5), np.array([0.0, np.nan])])
    with pytest.raises(AlignmentError, match="features"):
        dtw_all_pairs([np.zeros((5, 2)), np.zeros((5, 3))])
    with pytest.raises(AlignmentError, match="pairs"):
        dtw_pairs([np.zeros(5)], np.array([[0, 1]]))


# ---------------------------------------------------------------------------------------------------- multiscale


def test_downsample_and_projection():
    X = np.arange(10.0)[:, None]
    assert downsample(X, 4)[:, 0].tolist() == [1.5, 5.5, 8.5]
    lo, hi = project_band(np.array([[0, 0], [1, 1], [2, 1]]), 10, 8, 4, 1)
    # coarse rows 0,1,2 → fine rows 0-3, 4-7, 8-9; columns [0,4), [4,8), [4,8) widened by 1 and clipped
    assert lo.tolist() == [0, 0, 0, 0, 0, 3, 3, 3, 3, 3]
    assert hi.tolist() == [5, 5, 5, 8, 8, 8, 8, 8, 8, 8]


@pytest.mark.parametrize("d, metric", [(1, "sqeuclidean"), (3, "euclidean"), (4, "cosine")])
def test_multiscale_equals_banded_dtw_in_its_corridor(rng, d, metric):
    x, y = _warped_pair(rng, 3000, 2600, d=d)
    r = dtw_multiscale(x, y, metric=metric, factor=3, radius=6, coarsest=200)
    assert len(r.levels) >= 3 and r.levels[-1] == (3000, 2600)
    assert r.path[0].tolist() == [0, 0] and r.path[-1].tolist() == [2999, 2599]
    steps = np.diff(r.path, axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)
    exact = dtw(x, y, metric=metric)  # unconstrained, 7.8e6 cells
    assert r.distance >= exact.distance - 1e-9 * abs(exact.distance)
    # on smooth warps the corridor holds the optimum
    assert r.distance == pytest.approx(exact.distance, rel=1e-9)
    assert path_agreement(r.path, exact.path, tol=1) >= 0.99


def test_path_agreement():
    a = np.array([[0, 0], [1, 1], [1, 2], [2, 3]])
    b = np.array([[0, 0], [1, 1], [2, 2], [2, 3]])
    assert path_agreement(a, b, tol=0) == 0.75
    assert path_agreement(a, b, tol=1) == 1.0
    assert path_agreement(np.array([[0, 0], [1, 5]]), b, tol=1) == 0.5


def test_multiscale_small_inputs_are_exact(rng):
    x = rng.normal(size=50)
    y = rng.normal(size=70)
    r = dtw_multiscale(x, y, coarsest=100)
    e = dtw(x, y)
    assert r.distance == e.distance and np.array_equal(r.path, e.path)


def test_multiscale_bad_args():
    with pytest.raises(AlignmentError, match="factor"):
        dtw_multiscale(np.zeros(10), np.zeros(10), factor=1)
    with pytest.raises(AlignmentError, match="radius"):
        dtw_multiscale(np.zeros(10), np.zeros(10), radius=0)
    with pytest.raises(AlignmentError, match="symmetric1 or symmetric2"):
        dtw_multiscale(np.zeros(10), np.zeros(10), step_pattern="asymmetric")


# ---------------------------------------------------------------------------------------------------- windows


def test_corridor_band_contains_path_and_radius():
    path = np.array([[0, 0], [1, 1], [2, 1], [3, 2], [4, 3]])
    lo, hi = corridor_band(path, 5, 4, 1)
    for i, j in path:
        assert lo[i] <= j < hi[i]
    assert lo.tolist() == [0, 0, 0, 0, 1] and hi.tolist() == [3, 3, 4, 4, 4]
    # random monotone paths: the band is exactly the Chebyshev dilation of the path, row by row
    r = np.random.default_rng(5)
    for _ in range(20):
        steps = r.integers(0, 3, size=60)
        moves = np.array([[1, 1], [0, 1], [1, 0]])[steps]
        p = np.vstack([[0, 0], np.cumsum(moves, axis=0)])
        n, m = p[-1, 0] + 1, p[-1, 1] + 1
        rad = int(r.integers(0, 4))
        lo, hi = corridor_band(p, n, m, rad)
        ii, jj = np.indices((n, m))
        near = np.zeros((n, m), dtype=bool)
        for a, b in p:
            near |= (np.abs(ii - a) <= rad) & (np.abs(jj - b) <= rad)
        assert np.array_equal(near, (jj >= lo[:, None]) & (jj < hi[:, None]))
    with pytest.raises(AlignmentError, match="misses some rows"):
        corridor_band(np.array([[0, 0], [2, 1]]), 3, 2, 0)


# ---------------------------------------------------------------------------------------------------- subsequence


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31),
    st.integers(1, 20),
    st.integers(0, 5),
    st.integers(1, 4),
    st.booleans(),
    st.sampled_from(["walk", "constant", "int"]),
)
def test_subsequence_search_equals_brute_force(seed, L, radius, k, znorm, kind):
    r = np.random.default_rng(seed)
    n = L + r.integers(0, 60)
    if kind == "walk":
        s = np.cumsum(r.normal(size=n))
    elif kind == "constant":
        s = np.full(n, 2.0)
    else:
        s = r.integers(-1, 2, size=n).astype(float)
    start = int(r.integers(0, n - L + 1))
    q = s[start : start + L] + 0.1 * r.normal(size=L)
    got = subsequence_search(q, s, radius=radius, k=k, znorm=znorm)
    ref = subsequence_search_ref(q, s, radius, k, znorm)
    assert [m.distance for m in got.matches] == pytest.approx([d for _, d in ref], rel=1e-9, abs=1e-9)
    # starts agree except where distances tie
    for m, (t, d) in zip(got.matches, ref):
        if sum(abs(dd - d) <= 1e-9 * max(1, abs(d)) for _, dd in ref) == 1:
            assert m.start == t
    nolb = subsequence_search(q, s, radius=radius, k=k, znorm=znorm, use_lower_bound=False)
    assert [m.distance for m in nolb.matches] == pytest.approx([m.distance for m in got.matches], rel=1e-12)


def test_lower_bound_is_a_lower_bound_and_prunes(rng):
    q = np.cumsum(rng.normal(size=40))
    for _ in range(50):
        c = np.cumsum(rng.normal(size=40))
        lb = lb_keogh(q, c, 4)
        assert lb == pytest.approx(lb_keogh_ref(q, c, 4), rel=1e-12)
        ii, jj = np.indices((40, 40))
        full, *_ = dtw_ref((q[:, None] - c[None, :]) ** 2, "symmetric1", np.abs(ii - jj) <= 4)
        assert lb <= full + 1e-9
    s = np.cumsum(rng.normal(size=5000))
    res = subsequence_search(s[1234:1334] + 0.01, s, radius=5)
    assert res.matches[0].start == 1234
    assert res.pruned_by_lb + res.abandoned > 0.9 * res.candidates


def test_subsequence_bad_args():
    with pytest.raises(AlignmentError, match="shorter"):
        subsequence_search(np.zeros(10), np.zeros(5), radius=1)
    with pytest.raises(AlignmentError, match="radius"):
        subsequence_search(np.zeros(3), np.zeros(5), radius=-1)
    with pytest.raises(AlignmentError, match="1-D"):
        subsequence_search(np.zeros((3, 2)), np.zeros((5, 2)), radius=1)
    with pytest.raises(AlignmentError, match="k must"):
        subsequence_search(np.zeros(3), np.zeros(5), radius=1, k=0)
