"""DTW kernels against the plain-NumPy reference, dtw-python, and a case worked by hand."""

from __future__ import annotations

import dtw as dtw_python
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warpsync.align import STEP_PATTERNS, dtw
from warpsync.align.reference.dtw import cost_matrix_ref, dtw_ref
from warpsync.align.windows import itakura_band, sakoe_chiba_band, slanted_band
from warpsync.errors import AlignmentError

PATTERNS = sorted(STEP_PATTERNS)
N_PATTERNS = [p for p in PATTERNS if STEP_PATTERNS[p].norm == "N"]


def _mask(lo, hi, n, m):
    jj = np.arange(m)[None, :]
    return (jj >= np.asarray(lo)[:, None]) & (jj < np.asarray(hi)[:, None])


def test_textbook_case_by_hand():
    # x = [0, 1, 2], y = [0, 2], squared differences:
    #        y=0  y=2
    #  x=0 [  0,   4 ]
    #  x=1 [  1,   1 ]
    #  x=2 [  4,   0 ]
    # symmetric2 (diagonal weight 2): G00 = 0, G01 = 4, G10 = 1, G11 = min(G00 + 2*1, G10 + 1, G01 + 1) = 2,
    # G20 = 5, G21 = min(G10 + 2*0, G20 + 0, G11 + 0) = 1. Path (0,0) (1,0) (2,1); normalised 1 / (3 + 2).
    r = dtw([0.0, 1.0, 2.0], [0.0, 2.0])
    assert r.distance == 1.0
    assert r.normalized_distance == pytest.approx(0.2)
    assert r.path.tolist() == [[0, 0], [1, 0], [2, 1]]
    # symmetric1: G11 = min(0 + 1, 1 + 1, 4 + 1) = 1, G21 = min(G10 + 0, G20 + 0, G11 + 0) = 1 via (1,0)
    r1 = dtw([0.0, 1.0, 2.0], [0.0, 2.0], step_pattern="symmetric1")
    assert r1.distance == 1.0 and np.isnan(r1.normalized_distance)
    assert r1.path.tolist() == [[0, 0], [1, 0], [2, 1]]
    # distance-only agrees
    assert dtw([0.0, 1.0, 2.0], [0.0, 2.0], return_path=False).distance == 1.0


@st.composite
def problems(draw):
    n = draw(st.integers(1, 24))
    m = draw(st.sampled_from([1, 2, n, n + 1, max(1, n // 3), 3 * n + 2, draw(st.integers(1, 30))]))
    d = draw(st.sampled_from([1, 1, 3]))
    pattern = draw(st.sampled_from(PATTERNS))
    open_begin = draw(st.booleans()) if STEP_PATTERNS[pattern].norm == "N" else False
    open_end = draw(st.booleans()) if STEP_PATTERNS[pattern].norm != "NA" else False
    window = draw(
        st.sampled_from(
            [
                None,
                ("sakoechiba", draw(st.integers(0, 6))),
                ("slantedband", draw(st.integers(0, 4))),
                ("itakura", draw(st.sampled_from([1.0, 1.5, 2.0, 3.0]))),
                "corridor",
            ]
        )
    )
    kind = draw(st.sampled_from(["normal", "constant", "int"]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**31))
    metric = draw(st.sampled_from(["sqeuclidean", "euclidean", "cosine"] if d > 1 else ["sqeuclidean", "euclidean"]))
    return n, m, d, pattern, open_begin, open_end, window, kind, dtype, seed, metric


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.booleans())
def test_matches_reference(problem, return_path):
    n, m, d, pattern, open_begin, open_end, window, kind, dtype, seed, metric = problem
    r = np.random.default_rng(seed)
    if kind == "constant":
        X = np.full((n, d), 0.5)
        Y = np.full((m, d), 0.5)
    elif kind == "int":
        X = r.integers(-2, 3, size=(n, d)).astype(float)
        Y = r.integers(-2, 3, size=(m, d)).astype(float)
    else:
        X = r.normal(size=(n, d))
        Y = r.normal(size=(m, d))
    if metric == "cosine":
        X[np.all(X == 0, axis=1)] = 1.0
        Y[np.all(Y == 0, axis=1)] = 1.0
    X = X.astype(dtype)
    Y = Y.astype(dtype)
    if d == 1 and seed % 2:
        X, Y = X[:, 0], Y[:, 0]
    kwargs = {"metric": metric, "step_pattern": pattern, "open_begin": open_begin, "open_end": open_end}
    if window == "corridor":
        centre = np.round(np.arange(n) * (m / n)).astype(np.int64)
        lo = np.clip(centre - r.integers(0, 3, n), 0, m)
        hi = np.clip(centre + r.integers(1, 4, n), 1, m)
        lo = np.minimum(lo, hi - 1)
        lo[0] = 0 if not open_begin else lo[0]
        hi[-1] = m if not open_end else hi[-1]
        kwargs["band"] = (lo, hi)
        mask = _mask(lo, hi, n, m)
    else:
        kwargs["window"] = window
        if window is None:
            mask = np.ones((n, m), dtype=bool)
        else:
            f = {"sakoechiba": sakoe_chiba_band, "slantedband": slanted_band, "itakura": itakura_band}[window[0]]
            mask = _mask(*f(n, m, window[1]), n, m)
    C = cost_matrix_ref(np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64), metric)
    ref_d, ref_nd, ref_path, _ = dtw_ref(C, pattern, mask, open_begin, open_end)
    if not np.isfinite(ref_d):
        with pytest.raises(AlignmentError):
            dtw(X, Y, return_path=return_path, **kwargs)
        return
    res = dtw(X, Y, return_path=return_path, **kwargs)
    assert res.distance == pytest.approx(ref_d, rel=1e-9, abs=1e-9)
    if STEP_PATTERNS[pattern].norm != "NA":
        assert res.normalized_distance == pytest.approx(ref_nd, rel=1e-9, abs=1e-9)
    else:
        assert np.isnan(res.normalized_distance)
    if return_path:
        assert res.path.dtype == np.int64 and res.path.shape[1] == 2
        assert res.path.tolist() == [list(p) for p in ref_path]
        # the path is feasible and its weighted cost is the distance (checked independently of the DP)
        assert mask[res.path[:, 0], res.path[:, 1]].all()
    # precomputed cost gives the same answer
    kw = {**kwargs, "metric": "precomputed"}
    rp = dtw(C, None, return_path=return_path, **kw)
    assert rp.distance == pytest.approx(ref_d, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("pattern", ["symmetric1", "symmetric2", "asymmetric", "symmetricP1", "asymmetricP2"])
@pytest.mark.parametrize("window", [None, 5])
def test_matches_dtw_python(rng, pattern, window):
    x = rng.normal(size=(40, 2))
    y = rng.normal(size=(47, 2))
    C = cost_matrix_ref(x, y, "euclidean")
    kw = {} if window is None else {"window_type": "sakoechiba", "window_args": {"window_size": 10}}
    ref = dtw_python.dtw(C, step_pattern=getattr(dtw_python, pattern), **kw)
    ours = dtw(x, y, metric="euclidean", step_pattern=pattern, window=None if window is None else ("sakoechiba", 10))
    assert ours.distance == pytest.approx(ref.distance, rel=1e-12)
    assert np.array_equal(ours.path, np.c_[ref.index1, ref.index2])
    if pattern in N_PATTERNS:
        ob = dtw(x[10:25], y, metric="euclidean", step_pattern=pattern, open_begin=True, open_end=True)
        refo = dtw_python.dtw(C[10:25], step_pattern=getattr(dtw_python, pattern), open_begin=True, open_end=True)
        assert ob.distance == pytest.approx(refo.distance, rel=1e-12)
        assert np.array_equal(ob.path, np.c_[refo.index1, refo.index2])


def test_long_1d_distance_only_matches_path_kernel(rng):
    # exercises the four-row blocked kernel's interior, edges and leftover rows, full and banded, both ways round
    for n, m in [(203, 157), (157, 203), (64, 64), (5, 300)]:
        x = rng.normal(size=n)
        y = rng.normal(size=m)
        for window in [None, ("sakoechiba", abs(n - m) + 7), ("itakura", 3.0)]:
            try:
                full = dtw(x, y, window=window)
            except AlignmentError:
                with pytest.raises(AlignmentError):
                    dtw(x, y, window=window, return_path=False)
                continue
            for pattern in ["symmetric1", "symmetric2"]:
                a = dtw(x, y, window=window, step_pattern=pattern, return_path=False).distance
                b = dtw(x, y, window=window, step_pattern=pattern).distance
                assert a == pytest.approx(b, rel=1e-12)
            assert full.path[0].tolist() == [0, 0] and full.path[-1].tolist() == [n - 1, m - 1]


@pytest.mark.parametrize("pattern", ["symmetric1", "symmetric2", "symmetricP05", "symmetricP1", "symmetricP2"])
def test_distance_only_transposes_symmetric_patterns(rng, pattern):
    # n > m: the distance-only call runs on the transpose; it must equal the path computation and the reference
    x = rng.normal(size=(60, 2))
    y = rng.normal(size=(41, 2))
    for window in [None, ("sakoechiba", 25)]:
        a = dtw(x, y, step_pattern=pattern, window=window, return_path=False)
        b = dtw(x, y, step_pattern=pattern, window=window)
        assert a.distance == pytest.approx(b.distance, rel=1e-12)
        assert a.normalized_distance == pytest.approx(b.normalized_distance, rel=1e-12, nan_ok=True)


def test_float32_and_int_inputs_accepted(rng):
    x = rng.normal(size=20).astype(np.float32)
    y = rng.normal(size=25).astype(np.float32)
    a = dtw(x, y).distance
    b = dtw(x.astype(np.float64), y.astype(np.float64)).distance
    assert a == b
    assert dtw(np.arange(5), np.arange(7)).distance == pytest.approx(dtw(np.arange(5.0), np.arange(7.0)).distance)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dtw([0.0, np.nan], [1.0]), "NaN"),
        (lambda: dtw([0.0, np.inf], [1.0]), "NaN or inf"),
        (lambda: dtw(np.zeros((2, 2, 2)), [1.0]), "1-D"),
        (lambda: dtw([], [1.0]), "empty"),
        (lambda: dtw(np.zeros((3, 2)), np.zeros((3, 3))), "features"),
        (lambda: dtw([1.0], [1.0], metric="manhattan"), "unknown metric"),
        (lambda: dtw([1.0], [1.0], step_pattern="nope"), "unknown step_pattern"),
        (lambda: dtw(np.zeros((3, 3)), np.zeros(3), metric="precomputed"), "Y=None"),
        (lambda: dtw(-np.ones((3, 3)), metric="precomputed"), "negative"),
        (lambda: dtw(np.arange(10.0), np.arange(30.0), window=("sakoechiba", 5)), "no path"),
        (lambda: dtw(np.arange(10.0), np.arange(30.0), window=("itakura", 2.0)), "admits no"),
        (lambda: dtw(np.arange(10.0), np.arange(30.0), window=("bogus", 2)), "unknown window"),
        (lambda: dtw(np.arange(3.0), np.arange(3.0), window=("sakoechiba", -1)), "radius"),
        (lambda: dtw(np.arange(3.0), np.arange(3.0), band=(np.array([0, 2, 1]), np.array([1, 2, 3]))), "row 1"),
        (lambda: dtw(np.arange(3.0), np.arange(3.0), band=(np.zeros(2), np.ones(2))), "shape"),
        (lambda: dtw(np.arange(3.0), np.arange(3.0), window=("sakoechiba", 1), band=(0, 1)), "either"),
        (lambda: dtw(np.arange(3.0), np.arange(4.0), open_begin=True), "open_begin"),
        (lambda: dtw(np.arange(3.0), np.arange(4.0), step_pattern="symmetric1", open_end=True), "open_end"),
        (lambda: dtw(np.zeros((3, 2)), np.ones((3, 2)), metric="cosine"), "all-zero"),
        (lambda: dtw(np.arange(3.0), np.arange(3.0), return_path="yes"), "return_path"),
        # a band every row of which is non-empty but that a symmetricP2 path cannot traverse
        (lambda: dtw(np.arange(4.0), np.arange(12.0), step_pattern="symmetricP2"), "no warping path"),
    ],
)
def test_bad_input_raises_alignment_error(call, match):
    with pytest.raises(AlignmentError, match=match):
        call()
