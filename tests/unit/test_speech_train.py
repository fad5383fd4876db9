"""Training recipe pieces: frame targets from truth spans, the word-level CTC term, a tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from warpsync.speech import train as tr
from warpsync.speech.model import AcousticModel


def test_frame_range_rounds_each_boundary_to_the_nearest_frame():
    # 10 ms hop: frame t is in [a, b) when t*10 ms lies in [a - 5 ms, b - 5 ms)
    assert tr._frame_range(100, 0.105, 0.200) == (10, 20)
    assert tr._frame_range(100, 0.104, 0.196) == (10, 20)
    assert tr._frame_range(100, 0.106, 0.194) == (11, 19)
    assert tr._frame_range(100, 0.0, 0.003) == (0, 0)
    assert tr._frame_range(30, 0.2, 0.9) == (20, 30)  # clipped to the frames that exist


def test_frame_labels_and_segments_merge_words_without_inner_truth():
    st = np.array([0.100, 0.300, np.nan, 0.700])
    en = np.array([0.300, np.nan, 0.600, 0.800])  # words 1 and 2 spoken as one by espeak-ng
    lab = tr._frame_labels(16000, st, en)
    assert lab.shape == (101,)
    assert lab[:10].sum() == 0 and lab[10:60].all() and lab[60:70].sum() == 0 and lab[70:80].all()
    segs = tr._word_segments(101, [(1, 2), (3,), (4, 5), (6,)], st, en)
    assert [(f, g) for f, g, _ in segs] == [(10, 30), (30, 60), (70, 80)]
    assert [list(t) for *_, t in segs] == [[1, 2], [3, 4, 5], [6]]
    # a group too short for its tokens is left out; an unknown edge too
    segs = tr._word_segments(101, [(1, 2, 3, 4)], np.array([0.1]), np.array([0.12]))
    assert segs == []
    assert tr._word_segments(101, [(1,)], np.array([np.nan]), np.array([0.5])) == []


def test_word_ctc_equals_ctc_of_each_segment_alone(rng):
    B, T, C = 2, 40, 6
    lp = torch.log_softmax(torch.from_numpy(rng.normal(size=(B, T, C))), -1)
    segs = [[(0, 7, np.array([1, 2])), (9, 20, np.array([3, 3, 4]))], [(5, 12, np.array([5]))]]
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    got = tr._word_ctc(ctc, lp, segs)
    each = []
    for b, ss in enumerate(segs):
        for f, g, tk in ss:
            x = lp[b, f:g][:, None]
            each.append(
                torch.nn.functional.ctc_loss(
                    x,
                    torch.from_numpy(tk)[None],
                    torch.tensor([g - f]),
                    torch.tensor([len(tk)]),
                    blank=0,
                    reduction="sum",
                )
                / len(tk)
            )
    assert float(got) == pytest.approx(float(torch.stack(each).mean()), rel=1e-9)
    assert float(tr._word_ctc(ctc, lp, [[], []])) == 0.0


def test_tiny_training_run_exports_a_loadable_model(tmp_path, rng):
    texts = ["ab ba", "a b", "ba", "ab a"]
    audio, offsets, st, en = [], [0], [], []
    for t in texts:
        x = (rng.normal(size=8000) * 3000).astype(np.int16)
        audio.append(x)
        offsets.append(offsets[-1] + len(x))
        k = len(t.split())
        st.append(np.linspace(0.05, 0.3, k))
        en.append(np.linspace(0.05, 0.3, k) + 0.1)
    np.savez(
        tmp_path / "train.npz",
        audio=np.concatenate(audio),
        offsets=np.array(offsets),
        texts=np.array(json.dumps(texts)),
        word_offsets=np.cumsum([0] + [len(s) for s in st]),
        word_start_s=np.concatenate(st),
        word_end_s=np.concatenate(en),
    )
    out = tmp_path / "m" / "ctc.pt"
    stats = tr.train(tmp_path, out, epochs=1, channels=8, batch_s=1.0, word_weight=1.0)
    assert stats["epoch"] == 1 and np.isfinite(stats["ctc"]) and np.isfinite(stats["word"]) and stats["word"] > 0
    m = AcousticModel.load(out, "cpu")
    assert m.calibration.is_zero and m.emissions(np.zeros(1600, np.float32)).shape == (11, len(m.vocab.tokens))
