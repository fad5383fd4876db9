"""Streaming alignment == offline alignment (≥ 99% of word boundaries), any interleaving, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.errors import AlignmentError
from warpsync.speech import align
from warpsync.speech.stream import StreamingAligner
from warpsync.speech.tokenizer import Vocabulary

VOCAB = Vocabulary(tuple(["_"] + list("abcdefgh")))
C = len(VOCAB.tokens)


def synthetic(rng, n_words: int, noise: float = 1.0, missing_every: int = 0):
    """Emissions from a known frame labelling of random words (a CTC-like posteriorgram with noise).
    With `missing_every`, every k-th word is spoken but left out of the returned text."""
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(1, 6))) for _ in range(n_words)]
    labels, spans = [], []
    for w in words:
        labels += [0] * int(rng.integers(0, 8))
        a = len(labels)
        for ch in w:
            labels += [VOCAB.index[ch]] * int(rng.integers(1, 5))
            labels += [0] * int(rng.integers(0, 2))
        spans.append((a, len(labels)))
    labels += [0] * 5
    T = len(labels)
    lp = np.full((T, C), -4.0) + rng.normal(0, noise, (T, C))
    lp[np.arange(T), labels] += 4.5
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    kept = [w for i, w in enumerate(words) if not (missing_every and i % missing_every == missing_every - 1)]
    return lp, " ".join(kept), spans


def run_stream(rng, lp, text, *, text_first=False, audio_first=False, **kw):
    sa = StreamingAligner(VOCAB, C, 0.01, **kw)
    out, pos, tpos, max_window = [], 0, 0, 0
    T = lp.shape[0]
    if text_first:
        sa.add_text(text)
        tpos = len(text)
    if audio_first:
        while pos < T:
            n = int(rng.integers(0, 50))
            out += sa.add_frames(lp[pos : pos + n])
            pos += n
            max_window = max(max_window, sa.stats.window_frames)
    while pos < T or tpos < len(text):
        if rng.random() < 0.5 and tpos < len(text):
            n = int(rng.integers(0, 30))  # text cut anywhere, words split across chunks, empty chunks
            out += sa.add_text(text[tpos : tpos + n]) or []
            tpos += n
        elif pos < T:
            n = int(rng.integers(0, 40))
            out += sa.add_frames(lp[pos : pos + n])
            pos += n
        max_window = max(max_window, sa.stats.window_frames)
    out += sa.finish()
    return out, sa, max_window


def boundaries(words):
    return np.array([(w.index, w.start_frame, w.end_frame) for w in words])


@pytest.mark.parametrize("mode", ["interleaved", "text_first", "audio_first"])
def test_streaming_equals_offline(rng, mode):
    agree = []
    for _ in range(3):
        lp, text, _ = synthetic(rng, 150)
        off = align.align_words(lp, VOCAB.words(text), 0.01)
        out, sa, _ = run_stream(
            rng, lp, text, text_first=mode == "text_first", audio_first=mode == "audio_first", max_window_frames=100000
        )
        assert [w.index for w in out] == [w.index for w in off]  # every word once, in order
        bo, bs = boundaries(off), boundaries(out)
        agree.append((bo[:, 1:] == bs[:, 1:]).mean())
        assert sa.stats.words_committed == len(off)
    assert np.mean(agree) >= 0.99, agree


def test_streaming_times_and_confidence(rng):
    lp, text, _ = synthetic(rng, 60)
    out, _, _ = run_stream(rng, lp, text, t0_s=100.0)
    off = align.align_words(lp, VOCAB.words(text), 0.01, offset_s=100.0)
    for a, b in zip(out, off):
        assert a.start_s == pytest.approx(100.0 + a.start_frame * 0.01)
        assert 0.0 <= a.confidence <= 1.0
    conf_s = np.array([w.confidence for w in out])
    conf_o = np.array([w.confidence for w in off])
    assert np.mean(np.abs(conf_s - conf_o)) < 0.1


def test_bounded_memory_on_long_stream(rng):
    # ~ 2000 words, ~ 8 minutes of frames: the window stays near the horizon, not the recording
    lp, text, _ = synthetic(rng, 2000)
    out, _sa, max_window = run_stream(rng, lp, text, horizon_frames=300)
    assert len(out) == 2000
    assert max_window <= 300 + 50  # horizon plus one chunk
    assert lp.shape[0] > 20 * max_window


def test_words_missing_from_text_do_not_derail(rng):
    lp, text, spans = synthetic(rng, 120, noise=0.5, missing_every=10)
    kept_spans = [s for i, s in enumerate(spans) if i % 10 != 9]
    out, _, _ = run_stream(rng, lp, text)
    err = [abs(w.start_frame - s[0]) + abs(w.end_frame - s[1]) for w, s in zip(out, kept_spans)]
    assert np.mean(np.array(err) <= 2) >= 0.9


def test_text_never_arriving_is_bounded_and_counted(rng):
    lp, text, _ = synthetic(rng, 50)
    sa = StreamingAligner(VOCAB, C, 0.01, horizon_frames=100, max_window_frames=400)
    sa.add_text(" ".join(text.split()[:5]) + " ")
    for i in range(0, lp.shape[0], 25):
        sa.add_frames(lp[i : i + 25])
        assert sa.stats.window_frames <= 400 + 25
    assert sa.stats.dropped_frames > 0
    assert sa.stats.forced_commits > 0


def test_bad_input_rejected():
    sa = StreamingAligner(VOCAB, C, 0.01)
    with pytest.raises(AlignmentError, match="frames"):
        sa.add_frames(np.zeros((3, C + 1)))
    sa.finish()
    with pytest.raises(AlignmentError, match="finished"):
        sa.add_frames(np.zeros((3, C)))
    with pytest.raises(AlignmentError):
        StreamingAligner(VOCAB, C, 0.0)
