"""Measure the boundary calibration of a CTC model on TRAINING voices and write `<model>.calib.json`.

    python tools/speech/calibrate.py DATA_DIR [--model MODEL.pt] [--n 400] [--seed 0] [--dry-run]

Aligns `n` utterances drawn (seeded) from DATA_DIR/train.npz — the training voices only; the held-out set
is never read — with no calibration, splits the word boundaries by kind (a start after a pause, an end
before a pause, a boundary where two words are joined on one frame; the kind comes from the alignment, as
the aligners decide it) and takes the median signed error of each kind (the shift that minimises the
mean absolute error), negated. Prints the error breakdown before and after. See service/warpsync/speech/calibration.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from warpsync.speech.align import align_words
from warpsync.speech.calibration import BoundaryCalibration
from warpsync.speech.model import SHIPPED_MODEL, AcousticModel

KINDS = ("start_pause", "end_pause", "joined")


def boundary_errors(spans, start_s: np.ndarray, end_s: np.ndarray) -> list[tuple[str, float, bool]]:
    """(kind, signed error predicted - truth in seconds, is_start) of every truth boundary of one utterance;
    the kind is decided from the alignment (`spans`: `WordSpan`s of the spoken words, in order)."""
    out = []
    ws = list(spans)
    for i, w in enumerate(ws):
        k = w.index
        joined_before = i > 0 and ws[i - 1].end_frame == w.start_frame
        joined_after = i + 1 < len(ws) and ws[i + 1].start_frame == w.end_frame
        if k < len(start_s) and not np.isnan(start_s[k]):
            out.append(("joined" if joined_before else "start_pause", w.start_s - start_s[k], True))
        if k < len(end_s) and not np.isnan(end_s[k]):
            out.append(("joined" if joined_after else "end_pause", w.end_s - end_s[k], False))
    return out


def summarize(recs: list[tuple[str, float, bool]]) -> str:
    lines = []
    groups = [("all", lambda r: True), ("starts", lambda r: r[2]), ("ends", lambda r: not r[2])]
    groups += [(k, lambda r, k=k: r[0] == k) for k in KINDS]
    for name, sel in groups:
        e = np.array([r[1] for r in recs if sel(r)]) * 1000
        if len(e) == 0:
            continue
        a = np.abs(e)
        lines.append(
            f"  {name:12s} n={len(e):5d}  MAE {a.mean():5.1f} ms  bias {e.mean():+5.1f} ms  median|e| "
            f"{np.median(a):5.1f} ms  within 20 ms {np.mean(a <= 20) * 100:5.1f}%  p90 {np.percentile(a, 90):5.1f} ms"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="directory holding train.npz (tools/speech/make_dataset.py)")
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--n", type=int, default=400, help="training utterances to measure on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the calibration file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = AcousticModel.load(a.model, "cpu")
    with np.load(a.data / "train.npz") as npz:
        d = {k: npz[k] for k in ("audio", "offsets", "texts", "word_offsets", "word_start_s", "word_end_s")}
    texts = json.loads(str(d["texts"]))
    pick = np.sort(np.random.default_rng(a.seed).choice(len(texts), size=min(a.n, len(texts)), replace=False))
    raw = []
    for i in pick:
        wave = d["audio"][d["offsets"][i] : d["offsets"][i + 1]].astype(np.float32) / 32768
        st = d["word_start_s"][d["word_offsets"][i] : d["word_offsets"][i + 1]]
        en = d["word_end_s"][d["word_offsets"][i] : d["word_offsets"][i + 1]]
        spans = align_words(model.emissions(wave), model.vocab.words(texts[i]), model.hop_s, confidence=False)
        raw.append((spans, st, en))
    before = [r for s, st, en in raw for r in boundary_errors(s, st, en)]
    # the shift that removes the median signed error (predicted - truth) of each kind
    shift = {k: -float(np.median([r[1] for r in before if r[0] == k] or [0.0])) for k in KINDS}
    cal = BoundaryCalibration(**{f"{k}_s": round(v, 4) for k, v in shift.items()})
    after = []
    for spans, st, en in raw:
        shifted, s1 = [], None
        for i, w in enumerate(spans):
            jb = i > 0 and spans[i - 1].end_frame == w.start_frame
            ja = i + 1 < len(spans) and spans[i + 1].start_frame == w.end_frame
            s0, s1 = cal.span_s(w.start_frame, w.end_frame, jb, ja, model.hop_s, s1)
            shifted.append(type(w)(w.index, w.text, s0, s1, w.confidence, w.start_frame, w.end_frame))
        after += boundary_errors(shifted, st, en)
    print(f"{len(pick)} training utterances, {len(before)} boundaries; before calibration:\n{summarize(before)}")
    print(f"calibration: {cal}\nafter (same training utterances):\n{summarize(after)}")
    if not a.dry_run:
        out = a.model.with_suffix(".calib.json")
        cal.save(out, measured_on=f"{len(pick)} utterances of {a.data / 'train.npz'} (training voices), seed {a.seed}")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
