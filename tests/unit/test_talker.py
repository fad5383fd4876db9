"""The demo's speaking source: a pure script of audio and caption chunks in send order."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.sim.talker import AUDIO_STREAM, TEXT_STREAM, Utterance, load_utterances, talker_script


def _utts(rng):
    return [
        Utterance(rng.standard_normal(n).astype(np.float32), t)
        for n, t in ((1234, "one two three four"), (800, "five"), (2001, "six seven eight nine ten eleven twelve"))
    ]


@pytest.mark.parametrize("loops", [1, 2])
def test_audio_is_the_utterances_between_pauses_in_contiguous_chunks(rng, loops):
    rate, gap_s, t0 = 1000.0, 0.5, 50.0
    utts = _utts(rng)
    chunks = list(talker_script(utts, rate, chunk_s=0.1, gap_s=gap_s, t_dev0_s=t0, loops=loops))
    audio = [c for c in chunks if c.stream == AUDIO_STREAM]
    gap = np.zeros(int(gap_s * rate), np.float32)
    want = np.concatenate([p for _ in range(loops) for u in utts for p in (gap, u.audio)] + [gap])
    np.testing.assert_array_equal(np.concatenate([c.payload[:, 0] for c in audio]), want)
    pos = 0
    for c in audio:
        assert c.t_dev_s == pytest.approx(t0 + pos / rate)
        pos += len(c.payload)
        assert c.at_s == pytest.approx(pos / rate)  # sent when its last sample is captured
    assert all(len(c.payload) == 100 for c in audio[:-1])


def test_captions_carry_every_word_in_order_after_it_was_spoken(rng):
    rate, gap_s, lag = 1000.0, 0.5, 0.7
    utts = _utts(rng)
    chunks = list(talker_script(utts, rate, gap_s=gap_s, caption_lag_s=lag, words_per_caption=3, loops=2))
    caps = [c for c in chunks if c.stream == TEXT_STREAM]
    words = " ".join(c.payload for c in caps).split()
    assert words == " ".join(u.text for u in utts).split() * 2
    assert all(len(c.payload.split()) <= 3 for c in caps)
    # each utterance's captions: after it started (+ lag), the last one exactly lag after it ended
    start = 0.0
    i = 0
    for _ in range(2):
        for u in utts:
            start += gap_s
            end = start + len(u.audio) / rate
            n = -(-len(u.text.split()) // 3)
            group = caps[i : i + n]
            assert all(start + lag < c.at_s <= end + lag + 1e-9 for c in group)
            assert group[-1].at_s == pytest.approx(end + lag)
            assert all(c.t_dev_s == pytest.approx(1000.0 + c.at_s) for c in group)
            i += n
            start = end
    # one merged sequence in send order
    at = [c.at_s for c in chunks]
    assert at == sorted(at)


def test_endless_by_default_and_bad_arguments(rng):
    it = talker_script(_utts(rng), 1000.0)
    assert sum(1 for _ in zip(range(500), it)) == 500  # keeps going
    with pytest.raises(ValueError):
        next(talker_script([], 1000.0))
    with pytest.raises(ValueError):
        next(talker_script(_utts(rng), 1000.0, chunk_s=0))


def test_shipped_utterances_load():
    utts, rate = load_utterances()
    assert rate == 16000.0 and len(utts) >= 3
    assert all(u.audio.dtype == np.float32 and u.audio.ndim == 1 and len(u.audio) > rate for u in utts)
    assert all(u.text.split() for u in utts)
