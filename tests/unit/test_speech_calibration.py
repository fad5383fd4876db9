"""Boundary calibration: file format, the shift by kind, and the same seconds offline and streaming."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from warpsync.errors import ModelError
from warpsync.speech import align
from warpsync.speech.calibration import BoundaryCalibration
from warpsync.speech.stream import StreamingAligner
from warpsync.speech.tokenizer import Vocabulary

VOCAB = Vocabulary(tuple(["_"] + list("abcdefgh")))
C = len(VOCAB.tokens)
CAL = BoundaryCalibration(start_pause_s=-0.004, end_pause_s=0.006, joined_s=-0.003)


def _emissions(labels: list[int], sharp: float = 6.0) -> np.ndarray:
    lp = np.full((len(labels), C), -sharp)
    lp[np.arange(len(labels)), labels] = 0.0
    return lp - np.log(np.exp(lp).sum(1, keepdims=True))


def test_span_shifts_by_kind_hand_worked():
    # frames [3, 7) at 10 ms: 30 ms .. 70 ms; pause before, joined after
    a, b = CAL.span_s(3, 7, False, True, 0.01)
    assert a == pytest.approx(0.030 - 0.004) and b == pytest.approx(0.070 - 0.003)
    a, b = CAL.span_s(3, 7, True, False, 0.01)
    assert a == pytest.approx(0.030 - 0.003) and b == pytest.approx(0.070 + 0.006)
    # a one-frame word whose shifts would cross keeps a positive length
    a, b = BoundaryCalibration(0.009, -0.009, 0.0).span_s(5, 6, False, False, 0.01)
    assert b - a == pytest.approx(0.0025)


def test_align_words_applies_the_kind_from_the_alignment():
    # "ab" then a pause then "cd" joined to "ef": frames
    a, b, c, d, e, f = (VOCAB.index[ch] for ch in "abcdef")
    labels = [0, 0, a, a, b, b, 0, 0, 0, c, d, d, e, e, f, 0, 0]
    lp = _emissions(labels)
    words = VOCAB.words("ab cd ef")
    plain = align.align_words(lp, words, 0.01, confidence=False)
    assert [(w.start_frame, w.end_frame) for w in plain] == [(2, 6), (9, 12), (12, 15)]
    cal = align.align_words(lp, words, 0.01, confidence=False, calibration=CAL, offset_s=1.0)
    assert [(w.start_frame, w.end_frame) for w in cal] == [(2, 6), (9, 12), (12, 15)]
    want = [(1.02 - 0.004, 1.06 + 0.006), (1.09 - 0.004, 1.12 - 0.003), (1.12 - 0.003, 1.15 + 0.006)]
    for w, (s, t) in zip(cal, want):
        assert w.start_s == pytest.approx(s) and w.end_s == pytest.approx(t)


def test_streaming_gives_the_offline_seconds(rng):
    agree = []
    for trial in range(4):
        words = []
        while len(words) < 60:  # no letter repeated across a joint (ties between equal-score paths)
            w = "".join(rng.choice(list("abcdefgh"), size=rng.integers(1, 5)))
            if not words or w[0] != words[-1][-1]:
                words.append(w)
        labels = []
        for w in words:
            labels += [0] * int(rng.choice([0, 0, 0, 3]))  # most words run together
            for ch in w:
                labels += [VOCAB.index[ch]] * int(rng.integers(1, 4))
        labels += [0] * 4
        lp = _emissions(labels, 3.0) + rng.normal(0, 0.5, (len(labels), C))
        lp -= np.log(np.exp(lp).sum(1, keepdims=True))
        text = " ".join(words)
        off = align.align_words(lp, VOCAB.words(text), 0.01, calibration=CAL, offset_s=2.0, confidence=False)
        sa = StreamingAligner(VOCAB, C, 0.01, calibration=CAL, t0_s=2.0, confidence=False)
        out, pos, tpos = [], 0, 0
        while pos < len(lp) or tpos < len(text):
            if rng.random() < 0.5 and tpos < len(text):
                n = int(rng.integers(0, 25))
                sa.add_text(text[tpos : tpos + n])
                tpos += n
            elif pos < len(lp):
                n = int(rng.integers(0, 40))
                out += sa.add_frames(lp[pos : pos + n])
                pos += n
        out += sa.finish()
        assert [w.index for w in out] == [w.index for w in off]
        assert all(p.end_s <= q.start_s + 1e-12 for p, q in itertools.pairwise(out))  # never overlapping
        so = np.array([(w.start_s, w.end_s) for w in off])
        ss = np.array([(w.start_s, w.end_s) for w in out])
        same_frames = np.array([(w.start_frame, w.end_frame) for w in off]) == np.array(
            [(w.start_frame, w.end_frame) for w in out]
        )
        agree.append(same_frames.mean())
        # where the frames agree (and their neighbours' frames too) the calibrated seconds are identical
        ok = same_frames.all(axis=1)
        ok[1:] &= ok[:-1].copy()
        ok[:-1] &= same_frames.all(axis=1)[1:]
        assert np.allclose(so[ok], ss[ok], atol=1e-12)
        assert ok.mean() >= 0.9
        assert any(CAL.joined_s == pytest.approx(w.start_s - 2.0 - w.start_frame * 0.01) for w in out)
        assert any(CAL.start_pause_s == pytest.approx(w.start_s - 2.0 - w.start_frame * 0.01) for w in out)
    assert np.mean(agree) >= 0.99


def test_words_never_overlap_across_a_one_frame_gap():
    a, b, c, d = (VOCAB.index[ch] for ch in "abcd")
    lp = _emissions([0, a, a, b, 0, c, d, d, 0])
    cal = BoundaryCalibration(start_pause_s=-0.006, end_pause_s=0.009, joined_s=0.0)
    ws = align.align_words(lp, VOCAB.words("ab cd"), 0.01, confidence=False, calibration=cal)
    assert [(w.start_frame, w.end_frame) for w in ws] == [(1, 4), (5, 8)]
    assert ws[0].end_s == pytest.approx(0.049)  # 40 ms + 9 ms
    assert ws[1].start_s == pytest.approx(0.049)  # 50 ms - 6 ms would overlap: starts at the previous end
    assert ws[1].end_s == pytest.approx(0.089)
    sa = StreamingAligner(VOCAB, C, 0.01, calibration=cal, confidence=False)
    sa.add_text("ab cd")
    out = []
    for t in range(len(lp)):
        out += sa.add_frames(lp[t : t + 1])
    out += sa.finish()
    assert [(w.start_s, w.end_s) for w in out] == [(w.start_s, w.end_s) for w in ws]


def test_calibration_file_round_trip_and_errors(tmp_path):
    p = tmp_path / "m.calib.json"
    assert BoundaryCalibration.load(p).is_zero  # missing: no shift
    CAL.save(p, measured_on="test")
    assert BoundaryCalibration.load(p) == CAL
    p.write_text(json.dumps({"joined_s": 0.5}))
    with pytest.raises(ModelError, match="within"):
        BoundaryCalibration.load(p)
    p.write_text(json.dumps({"joined": 0.001}))
    with pytest.raises(ModelError, match="unknown keys"):
        BoundaryCalibration.load(p)
    p.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        BoundaryCalibration.load(p)
    p.write_text(json.dumps({"joined_s": "x"}))
    with pytest.raises(ModelError):
        BoundaryCalibration.load(p)
