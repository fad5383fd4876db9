"""CTC trellis kernels: Numba == torch == plain-NumPy reference, a hand-worked case, brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from warpsync.errors import AlignmentError
from warpsync.speech import align, reference
from warpsync.speech.trellis import build_trellis


def _random_case(rng, C=5, star=False, T=None, n_words=None):
    T = int(rng.integers(1, 40)) if T is None else T
    lp = np.log(rng.dirichlet(np.ones(C), size=T))
    nw = int(rng.integers(0, 4)) if n_words is None else n_words
    words = [tuple(int(t) for t in rng.integers(1, C, size=rng.integers(1, 4))) for _ in range(nw)]
    em = align.with_star(lp, 0, 1.0) if star else lp
    return em, build_trellis(words, 0, C if star else None)


@pytest.mark.parametrize("star", [False, True])
@pytest.mark.parametrize("block_bytes", [align.DEFAULT_MAX_BP_BYTES, 1, 37])
def test_viterbi_numba_torch_reference_agree(rng, star, block_bytes):
    checked = 0
    for _ in range(20):
        em, tr = _random_case(rng, star=star)
        try:
            path, score = align.viterbi(em, tr, max_bp_bytes=block_bytes * tr.n_states)
        except AlignmentError:
            with pytest.raises(AlignmentError):
                align.viterbi(em, tr, backend="torch")
            continue
        ref_path, ref_score = reference.viterbi_ref(em, tr)
        t_path, t_score = align.viterbi(em, tr, backend="torch", max_bp_bytes=block_bytes * tr.n_states)
        np.testing.assert_array_equal(path, ref_path)
        np.testing.assert_array_equal(path, t_path)
        assert score == pytest.approx(ref_score, abs=1e-9)
        assert score == t_score
        # the score is the sum of the path's emissions
        assert score == pytest.approx(em[np.arange(len(path)), tr.ext[path]].sum(), abs=1e-9)
        checked += 1
    assert checked >= 10


def test_ties_resolve_to_smallest_move_everywhere(rng):
    # constant emissions: every path ties; all three implementations must pick the same one
    em = np.zeros((12, 4))
    tr = build_trellis([(1, 2), (2, 3)], 0, None)
    p, _ = align.viterbi(em, tr)
    np.testing.assert_array_equal(p, reference.viterbi_ref(em, tr)[0])
    np.testing.assert_array_equal(p, align.viterbi(em, tr, backend="torch")[0])


def _all_paths(T, tr):
    """Every valid state sequence of length T (brute force, tiny sizes only)."""
    S = tr.n_states
    for seq in itertools.product(range(S), repeat=T):
        prev, ok = 0, True
        for t, s in enumerate(seq):
            d = s - prev
            if t == 0:
                d = s  # from the virtual predecessor at state 0
                ok = d in (0, 1) or (d == 2 and tr.m2[s] == 0) or (d == 3 and tr.m3[s] == 0)
            else:
                ok = d in (0, 1) or (d == 2 and tr.m2[s] == 0) or (d == 3 and tr.m3[s] == 0)
            if not ok:
                break
            prev = s
        if ok and tr.end_ok[seq[-1]]:
            yield np.array(seq)


@pytest.mark.parametrize("star", [False, True])
def test_viterbi_is_the_best_of_all_paths_brute_force(rng, star):
    for _ in range(6):
        C, T = 3, 5
        lp = np.log(rng.dirichlet(np.ones(C), size=T))
        words = [(1, 2)] if star else [(1,), (int(rng.integers(1, C)),)]
        em = align.with_star(lp, 0, 1.0) if star else lp
        tr = build_trellis(words, 0, C if star else None)
        best = max((em[np.arange(5), tr.ext[p]].sum(), tuple(p)) for p in _all_paths(5, tr))
        _path, score = align.viterbi(em, tr)
        assert score == pytest.approx(best[0], abs=1e-12)
        # forward–backward: log Z is the log-sum over the same path set
        lz = np.logaddexp.reduce([em[np.arange(5), tr.ext[p]].sum() for p in _all_paths(5, tr)])
        assert reference.forward_backward_ref(em, tr)[1] == pytest.approx(lz)


def test_hand_worked_case():
    # classes: 0 = blank, 1 = 'a', 2 = 'b'; transcript "ab"; 4 frames.
    # frame probabilities (rows): a-ish, a-ish, blank-ish, b-ish:
    p = np.array([[0.2, 0.7, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    # candidate paths: a a _ b = .7*.6*.6*.8 = .2016 (best); a a a b = .7*.6*.3*.8 = .1008;
    # _ a _ b = .2*.6*.6*.8 = .0576; a _ _ b = .7*.3*.6*.8 = .1008
    labels, score = align.forced_align(np.log(p), [1, 2], blank=0)
    np.testing.assert_array_equal(labels, [1, 1, 0, 2])
    assert score == pytest.approx(np.log(0.2016))


@pytest.mark.parametrize("star", [False, True])
def test_word_occupancy_matches_reference(rng, star):
    for _ in range(15):
        em, tr = _random_case(rng, star=star, n_words=int(rng.integers(1, 4)))
        try:
            path, _ = align.viterbi(em, tr)
        except AlignmentError:
            continue
        spans = align.word_frames(path, tr)
        occ = align.word_occupancy(em, tr, spans)
        np.testing.assert_allclose(occ, reference.word_occupancy_ref(em, tr, spans), atol=1e-10)
        occ_blocked = align.word_occupancy(em, tr, spans, max_bytes=16 * tr.n_states * 2)
        np.testing.assert_allclose(occ, occ_blocked, atol=1e-10)
        assert ((occ >= 0) & (occ <= 1)).all()


def test_plain_trellis_equals_build_trellis(rng):
    from warpsync.speech.trellis import plain_trellis

    for L in (0, 1, 2, 7, 40):
        tg = rng.integers(1, 4, size=L)  # few classes: many repeats
        a = plain_trellis(tg, 0)
        b = build_trellis([tg.tolist()] if L else [], 0, None)
        for f in ("ext", "m2", "m3", "end_ok", "word_lo", "word_hi", "skippable"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def test_emission_check_sees_what_the_fast_sum_hides():
    # -inf entries are fine; +inf and NaN are not, also beside -inf (sum NaN) and beside huge values
    ok = np.array([[np.log(0.5), np.log(0.5), -np.inf], [0.0, -np.inf, -np.inf]])
    align.check_emissions(ok)
    big = np.full((2, 3), 1e308)
    align.check_emissions(big)  # the sum overflows to +inf: looked at entry by entry, and it is finite
    for bad in (np.inf, np.nan):
        x = ok.copy()
        x[1, 0] = bad
        with pytest.raises(AlignmentError, match="NaN"):
            align.check_emissions(x)


def test_forced_align_contract_and_long_input(rng):
    T, C = 3000, 30
    lp = np.log(rng.dirichlet(np.ones(C), size=T))
    tg = rng.integers(1, C, size=T // 4)
    labels, _score = align.forced_align(lp, tg)
    assert labels.shape == (T,)
    collapsed = [k for k, _ in itertools.groupby(labels.tolist()) if k != 0]
    assert collapsed == [k for k, _ in itertools.groupby(tg.tolist())] or len(collapsed) == len(tg)
    # chunked (checkpointed) traceback gives the same path
    tr = build_trellis([tg.tolist()], 0, None)
    p1, s1 = align.viterbi(lp, tr)
    p2, s2 = align.viterbi(lp, tr, max_bp_bytes=tr.n_states * 97)
    np.testing.assert_array_equal(p1, p2)
    assert s1 == s2


def _viterbi_frame_vectorised(em, tr):
    """A third implementation for wide trellises, where the plain-loop reference is too slow: NumPy across
    states, one frame at a time; argmax picks the first maximum (the smallest move, the kernels' tie rule)."""
    T, S = em.shape[0], tr.n_states
    prev = np.full(S, -np.inf)
    prev[0] = 0.0
    bp = np.zeros((T, S), np.int8)
    for t in range(T):
        p = np.concatenate([np.full(3, -np.inf), prev])
        cands = np.stack([p[3:], p[2 : 2 + S], p[1 : 1 + S] + tr.m2, p[:S] + tr.m3])
        bp[t] = cands.argmax(axis=0)
        prev = cands.max(axis=0) + em[t, tr.ext]
    final = np.where(tr.end_ok, prev, -np.inf)
    s = S - 1 - int(np.argmax(final[::-1]))
    score = float(final[s])
    path = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(bp[t, s])
    return path, score


@pytest.mark.parametrize("star", [False, True])
def test_viterbi_wide_trellis_matches_frame_vectorised(rng, star):
    # more states than several strips of the Numba kernel (kernels.CHUNK), with ragged strip and band edges,
    # repeated tokens (no 2-moves between equal tokens) and, with the star, 3-moves; blocked or not
    from warpsync.speech import kernels

    C = 6
    n_words = kernels.CHUNK // 2 + 7
    words = [tuple(int(t) for t in rng.integers(1, C, size=rng.integers(1, 5))) for _ in range(n_words)]
    tr = build_trellis(words, 0, C if star else None)
    assert tr.n_states > 2 * kernels.CHUNK
    T = int(1.3 * tr.n_states)
    lp = np.log(rng.dirichlet(np.ones(C), size=T))
    em = align.with_star(lp, 0, 1.0) if star else lp
    path, score = align.viterbi(em, tr)
    v_path, v_score = _viterbi_frame_vectorised(em, tr)
    np.testing.assert_array_equal(path, v_path)
    assert score == v_score
    assert score == pytest.approx(em[np.arange(T), tr.ext[path]].sum(), abs=1e-9)
    b_path, b_score = align.viterbi(em, tr, max_bp_bytes=tr.n_states * 101)
    np.testing.assert_array_equal(path, b_path)
    assert score == b_score


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((5,)), "frames, classes"),
        (np.full((5, 3), np.nan), "NaN"),
        (np.zeros((5, 1)), "at least 2 classes"),
        (np.zeros((5, 3), np.int64), "floating point"),
    ],
)
def test_bad_emissions_rejected(bad, match):
    with pytest.raises(AlignmentError, match=match):
        align.forced_align(bad, [1])


def test_audio_too_short_and_bad_targets():
    lp = np.log(np.full((3, 3), 1 / 3))
    with pytest.raises(AlignmentError, match="too short"):
        align.forced_align(lp, [1, 1, 1])  # needs 5 frames (repeats need blanks)
    with pytest.raises(AlignmentError, match="token ids"):
        align.forced_align(lp, [0])
    with pytest.raises(AlignmentError, match="token ids"):
        align.forced_align(lp, [7])
    with pytest.raises(AlignmentError, match="empty"):
        align.forced_align(np.zeros((0, 3)), [1])


def test_star_absorbs_untranscribed_speech(rng):
    # frames: word "ab", then 20 frames of speech not in the transcript ("cc..."), then word "ba"
    C = 5
    seq = [1] * 4 + [2] * 4 + [0] * 2 + [3, 4] * 10 + [0] * 2 + [2] * 4 + [1] * 4 + [0] * 2
    T = len(seq)
    lp = np.full((T, C), np.log(0.02))
    lp[np.arange(T), seq] = np.log(0.92)
    from warpsync.speech.tokenizer import Vocabulary

    vocab = Vocabulary(("_", "a", "b", "c", "d"))
    words = vocab.words("ab ba")
    with_star = align.align_words(lp, words, 0.01, star=True)
    assert [(w.start_frame, w.end_frame) for w in with_star] == [(0, 8), (32, 40)]
    assert with_star[0].confidence > 0.8 and with_star[1].confidence > 0.8
