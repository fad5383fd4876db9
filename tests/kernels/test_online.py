"""On-line time warping: kernel vs oracle, streaming in random chunks == one pass, agreement with offline DTW."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsync.align.dtw import dtw
from warpsync.align.online import OnlineAligner
from warpsync.align.reference.online import oltw_ref
from warpsync.errors import AlignmentError


def test_hand_worked_case():
    # c = 2, MaxRunCount 3, squared-Euclidean cost, X = [0, 0, 0, 1, 1], Y = [0, 1, 1] (worked in the docs of
    # this test): steps BOTH (0,0); BOTH (start-up, t < c-1) -> best (1,0); ROW -> (2,0); ROW -> (3,1);
    # BOTH -> (4,2); the next step needs X frame 5 and stops.
    a = OnlineAligner(1, search_width=2, max_run=3, metric="sqeuclidean")
    r = a.push([0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(r.pairs, [[0, 0], [1, 0], [2, 0], [3, 1], [4, 2]])
    np.testing.assert_array_equal(r.cost, [0.0, 0.0, 0.0, 0.0, 0.0])
    assert a.frames_used == (5, 3)
    assert a.pending == (0, 0)
    assert a.position == (4, 2)


@settings(max_examples=60)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 40),
    d=st.integers(1, 3),
    c=st.integers(1, 8),
    max_run=st.integers(1, 4),
    metric=st.sampled_from(["euclidean", "sqeuclidean", "cosine"]),
    kind=st.sampled_from(["normal", "constant", "integers"]),
    seed=st.integers(0, 2**31),
)
def test_kernel_matches_reference(n, m, d, c, max_run, metric, kind, seed):
    g = np.random.default_rng(seed)
    X = g.standard_normal((n, d))
    Y = g.standard_normal((m, d))
    if kind == "constant":
        X[:] = 1.0
        Y[:] = 1.0
    elif kind == "integers":  # many exact ties
        X = g.integers(0, 3, (n, d)).astype(float)
        Y = g.integers(0, 3, (m, d)).astype(float)
    pairs, cost = oltw_ref(X, Y, c, max_run, metric)
    r = OnlineAligner(d, search_width=c, max_run=max_run, metric=metric).push(X, Y)
    np.testing.assert_array_equal(r.pairs, pairs)
    np.testing.assert_allclose(r.cost, cost, rtol=1e-12, atol=1e-12)


def _random_chunks(g: np.random.Generator, total: int) -> list[int]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(g.choice([0, 0, 1, 2, 3, 7, 16, 50])))
    sizes[-1] -= sum(sizes) - total
    return sizes


@pytest.mark.parametrize("trial", range(4))
def test_streaming_in_random_chunks_equals_one_pass(rng, trial):
    n, m, d = 400, 330, 4
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))
    one = OnlineAligner(d, search_width=12, max_run=3).push(X, Y)

    a = OnlineAligner(d, search_width=12, max_run=3)
    got_p, got_c = [], []
    cx = _random_chunks(rng, n)
    cy = _random_chunks(rng, m)
    ix = iy = 0
    # interleave the two streams in a random order, sometimes both in one call
    while cx or cy:
        which = rng.integers(0, 3)
        if (which == 0 and cx) or not cy:
            k = cx.pop(0)
            r = a.push_x(X[ix : ix + k])
            ix += k
        elif which == 1 or not cx:
            k = cy.pop(0)
            r = a.push_y(Y[iy : iy + k])
            iy += k
        else:
            kx, ky = cx.pop(0), cy.pop(0)
            r = a.push(X[ix : ix + kx], Y[iy : iy + ky])
            ix += kx
            iy += ky
        got_p.append(r.pairs)
        got_c.append(r.cost)
    np.testing.assert_array_equal(np.concatenate(got_p), one.pairs)
    np.testing.assert_array_equal(np.concatenate(got_c), one.cost)  # exact, not approximately
    assert a.position == tuple(one.pairs[-1])


def _smooth_series(g, n, d, width=15):
    z = g.standard_normal((n + 4 * width, d))
    k = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / (width / 2)) ** 2)
    k /= k.sum()
    s = np.stack([np.convolve(z[:, i], k, mode="same") for i in range(d)], 1)[2 * width : 2 * width + n]
    return (s - s.mean(0)) / s.std(0)


def _warp(g, m, n):
    """Monotone map from Y frame index to X position, local slope in [0.5, 2]."""
    slope = np.clip(np.exp(np.convolve(g.standard_normal(m), np.ones(60) / 60, mode="same") * 3), 0.5, 2.0)
    w = np.concatenate([[0.0], np.cumsum(slope)[:-1]])
    return w / w[-1] * (n - 1)


def _distance_to_path(pairs, path):
    """Per online pair (x, y): how many frames y lies outside the offline path's column range at row x."""
    n = int(path[:, 0].max()) + 1
    lo = np.full(n, np.iinfo(np.int64).max)
    hi = np.full(n, -1)
    np.minimum.at(lo, path[:, 0], path[:, 1])
    np.maximum.at(hi, path[:, 0], path[:, 1])
    x, y = pairs[:, 0], pairs[:, 1]
    return np.maximum(0, np.maximum(lo[x] - y, y - hi[x]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_offline_dtw(seed):
    # Y = X warped by a random monotone map (slope 0.5..2) plus noise. Offline DTW (same cost and weights) is
    # what OLTW approximates causally. Floors (measured 0.95-0.97 and 0.993-0.999 over seeds 0-3):
    # >= 90% of the online pairs within 5 frames of the offline path, >= 98% within 10.
    g = np.random.default_rng([seed, 7])
    n, m, d = 1500, 1200, 8
    X = _smooth_series(g, n, d)
    w = _warp(g, m, n)
    Y = np.stack([np.interp(w, np.arange(n), X[:, i]) for i in range(d)], 1) + 0.3 * g.standard_normal((m, d))
    path = dtw(X, Y, metric="euclidean", step_pattern="symmetric2").path
    r = OnlineAligner(d, search_width=60, max_run=3).push(X, Y)
    assert len(r.pairs) > 0.9 * (n + m) / 2
    err = _distance_to_path(r.pairs, path)
    assert (err <= 5).mean() >= 0.90
    assert (err <= 10).mean() >= 0.98
    # and the estimate tracks the true warp, not only the offline path
    assert (np.abs(r.pairs[:, 0] - w[r.pairs[:, 1]]) <= 10).mean() >= 0.95


def test_memory_is_bounded(rng):
    a = OnlineAligner(2, search_width=10, max_run=3, history=64)
    shapes = None
    for _ in range(50):
        a.push(rng.standard_normal((97, 2)), rng.standard_normal((101, 2)))
        now = (a._D.shape, a._Xr.shape, a._Yr.shape, a._hist.shape)
        assert shapes is None or now == shapes
        shapes = now
    assert sum(a.pending) <= 2 * 50 * 101
    p, c = a.recent_path()
    assert p.shape == (64, 2) and c.shape == (64,)
    assert tuple(p[-1]) == a.position
    assert a.steps > 64


def test_recent_path_before_wrapping(rng):
    a = OnlineAligner(1, search_width=3, history=100)
    r = a.push(rng.standard_normal(20), rng.standard_normal(20))
    p, c = a.recent_path()
    np.testing.assert_array_equal(p, r.pairs)
    np.testing.assert_array_equal(c, r.cost)


def test_reset_starts_again(rng):
    X = rng.standard_normal((30, 2))
    Y = rng.standard_normal((30, 2))
    a = OnlineAligner(2, search_width=4)
    first = a.push(X, Y)
    a.reset()
    assert a.position == (-1, -1) and a.steps == 0 and a.pending == (0, 0)
    again = a.push(X, Y)
    np.testing.assert_array_equal(first.pairs, again.pairs)


def test_waits_for_the_other_stream(rng):
    a = OnlineAligner(2, search_width=4)
    r = a.push_x(rng.standard_normal((10, 2)))
    assert len(r.pairs) == 0 and a.pending == (10, 0)
    r = a.push_y(np.zeros((0, 2)))
    assert len(r.pairs) == 0
    r = a.push_y(rng.standard_normal((1, 2)))
    assert len(r.pairs) == 1 and a.pending == (9, 0)


def test_bad_arguments(rng):
    for kwargs in ({"search_width": 0}, {"max_run": 0}, {"history": 0}, {"max_pending": 0},
                   {"search_width": 2.5}, {"search_width": True}):  # fmt: skip
        with pytest.raises(AlignmentError, match="integer"):
            OnlineAligner(2, **kwargs)
    with pytest.raises(AlignmentError, match="dim"):
        OnlineAligner(0)
    with pytest.raises(AlignmentError, match="metric"):
        OnlineAligner(2, metric="manhattan")
    a = OnlineAligner(2)
    with pytest.raises(AlignmentError, match=r"shape \(k, 2\)"):
        a.push_x(np.zeros((3, 3)))
    with pytest.raises(AlignmentError, match="NaN"):
        a.push_y([[0.0, np.nan]])
    with pytest.raises(AlignmentError, match="numeric"):
        a.push_x([["a", "b"]])
    b = OnlineAligner(1, max_pending=5)
    with pytest.raises(AlignmentError, match="ahead"):
        b.push_x(np.zeros(8))
    assert b.pending == (5, 0)


def _warped_projection(g, n, m, dx, dy, noise=0.3):
    """X (n, dx) smooth; Y (m, dy) = random projection of X warped by a monotone map w (slope 0.5..2) + noise."""
    X = _smooth_series(g, n, dx)
    w = _warp(g, m, n)  # Y frame j shows X at position w[j]
    Xw = np.stack([np.interp(w, np.arange(n), X[:, i]) for i in range(dx)], 1)
    return X, Xw @ g.standard_normal((dy, dx)).T + noise * g.standard_normal((m, dy)), w


@pytest.mark.parametrize("seed", [0, 1])
def test_streams_of_different_dimension_through_a_ctw_projection(seed):
    # CTW fitted offline on the first quarter of X (and the part of Y showing it); the live aligner then projects
    # every frame into that shared space. Measured over seeds 0-3: 94-96% of the pairs within 5 frames of the
    # true warp, 99.4-99.7% within 10. Floors: 90% and 97%.
    from warpsync.align.ctw import ctw

    g = np.random.default_rng([seed, 21])
    X, Y, w = _warped_projection(g, 2000, 1700, 6, 4)
    fit = ctw(X[:500], Y[: int(np.searchsorted(w, 499))])
    a = OnlineAligner.with_projection(fit, search_width=60)
    assert (a.x_dim, a.y_dim, a.dim) == (6, 4, 4)
    r = a.push(X, Y)
    err = np.abs(r.pairs[:, 0] - w[r.pairs[:, 1]])
    assert len(r.pairs) > 0.9 * (2000 + 1700) / 2
    assert (err <= 5).mean() >= 0.90
    assert (err <= 10).mean() >= 0.97
    # chunking still cannot change the result: frames are projected one by one in a fixed order
    b = OnlineAligner.with_projection(fit, search_width=60)
    parts = [b.push(X[37 * k : 37 * k + 37], Y[29 * k : 29 * k + 29]).pairs for k in range(2000 // 29 + 1)]
    np.testing.assert_array_equal(np.concatenate(parts), r.pairs)


def test_bad_projection(rng):
    from warpsync.align.cca import cca

    with pytest.raises(AlignmentError, match="CTWResult or CCAResult"):
        OnlineAligner.with_projection(object())
    fit = cca(rng.standard_normal((50, 3)), rng.standard_normal((50, 2)))
    a = OnlineAligner.with_projection(fit)
    with pytest.raises(AlignmentError, match=r"shape \(k, 3\)"):
        a.push_x(np.zeros((2, 2)))
    with pytest.raises(AlignmentError, match=r"shape \(k, 2\)"):
        a.push_y(np.zeros((2, 3)))
