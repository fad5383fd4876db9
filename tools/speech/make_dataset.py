"""Build the speech training / held-out sets with espeak-ng (reproducible: fixed seed, fixed voice split).

    python tools/speech/make_dataset.py OUT_DIR [--train N] [--heldout N] [--seed S]

Writes OUT_DIR/train.npz and OUT_DIR/heldout.npz: 16 kHz int16 audio of all utterances concatenated
(`audio`, `offsets`), their texts (`texts`, JSON list) and, per whitespace-separated word of each text, the
truth span from espeak-ng's phoneme events (`word_start_s`, `word_end_s`, NaN where espeak-ng merged the
word with a neighbour, e.g. "of the"). Held-out voices (dialect and variant) never occur in training.
Sentences come from texts shipped by Debian (asterisk prompts, the LibriVox transcriptions of
pocketsphinx-testdata, the common licenses) and from random word sequences over their vocabulary; training
audio is augmented with noise, gain, reverberation, band-limiting and leading/trailing silence.
Needs: espeak-ng, libespeak-ng1, asterisk-core-sounds-en, pocketsphinx-testdata (Debian).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from espeak_synth import Espeak  # noqa: E402

TRAIN_DIALECTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029"]
HELDOUT_DIALECTS = ["en-us-nyc", "en-gb-x-gbcwmd"]
TRAIN_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "f1", "f4", "klatt", "klatt2", "klatt3", "david", "john"]
HELDOUT_VARIANTS = ["", "m6", "m7", "f5", "klatt4"]


def _sentences() -> list[str]:
    out: list[str] = []
    core = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
    for line in gzip.open(core, "rt", encoding="utf-8", errors="replace"):
        if ":" in line and not line.startswith(";"):
            out.append(line.split(":", 1)[1].strip())
    libri = Path("/usr/share/pocketsphinx/test/data/librivox/transcription")
    for line in libri.read_text().splitlines():
        out.append(re.sub(r"</?s>|\(.*\)", "", line).strip())
    for lic in sorted(Path("/usr/share/common-licenses").glob("*")):
        if lic.is_file():
            text = " ".join(lic.read_text(errors="replace").split())
            out.extend(s.strip() for s in re.split(r"(?<=[.;:])\s+", text))
    clean = []
    for s in out:
        s = re.sub(r"[^A-Za-z' ,.?]", " ", s)
        s = " ".join(w for w in s.split() if re.search(r"[A-Za-z]", w))
        if 3 <= len(s.split()) <= 30:
            clean.append(s)
    return sorted(set(clean))


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _truth(text: str, events: list[tuple[int, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    spans = _word_spans(text)
    start = np.full(len(spans), np.nan)
    end = np.full(len(spans), np.nan)
    owner = {}
    for i, (a, b) in enumerate(spans):
        for c in range(a, b):
            owner[c] = i
    hit = {}
    for pos, s, e in events:
        i = owner.get(pos)
        if i is None:
            # espeak may point at leading punctuation; take the next word that starts at/after pos
            cand = [k for k, (a, _) in enumerate(spans) if a >= pos]
            if not cand:
                continue
            i = cand[0]
        hit[i] = (s, e)
    for i, (s, e) in hit.items():
        # a word merged into its neighbour by espeak-ng has no event of its own: its boundary with the
        # word owning the event is unknown, so only the outer edges of the merged group are truth
        nxt_missing = i + 1 < len(spans) and (i + 1) not in hit
        prev_missing = i > 0 and (i - 1) not in hit
        start[i] = np.nan if prev_missing else s
        end[i] = np.nan if nxt_missing else e
    return start, end


def _augment(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    if rng.random() < 0.3:  # reverberation: exponentially decaying noise tail, RT60 0.1..0.5 s
        rt = rng.uniform(0.1, 0.5)
        n = int(rt * sr)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.05, 0.3)
        ir /= np.abs(ir).sum() / 4
        y = fftconvolve(x, ir)[: len(x)]
        x = y / (np.abs(y).max() + 1e-9) * np.abs(x).max()
    if rng.random() < 0.25:  # band-limiting (telephone-like)
        lo, hi = rng.uniform(100, 400), rng.uniform(3000, 7000)
        x = sosfilt(butter(4, [lo, hi], btype="band", fs=sr, output="sos"), x)
    if rng.random() < 0.6:  # noise at 10..40 dB SNR, white or brown-ish
        snr = rng.uniform(10, 40)
        noise = rng.standard_normal(len(x))
        if rng.random() < 0.5:
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        p_sig = np.mean(x**2) + 1e-12
        noise *= np.sqrt(p_sig / (np.mean(noise**2) + 1e-12) / 10 ** (snr / 10))
        x = x + noise
    return x * rng.uniform(0.2, 1.0) / max(1e-6, np.abs(x).max())


def build(n: int, dialects, variants, sentences, rng, es: Espeak, augment: bool):
    audio, offsets, texts, starts, ends = [], [0], [], [], []
    vocab = sorted({w.lower().strip(",.?") for s in sentences for w in s.split()} - {""})
    for k in range(n):
        if rng.random() < 0.6:
            text = sentences[rng.integers(len(sentences))]
        else:
            text = " ".join(vocab[i] for i in rng.integers(len(vocab), size=rng.integers(3, 16)))
        voice = dialects[rng.integers(len(dialects))]
        var = variants[rng.integers(len(variants))]
        if var:
            voice += "+" + var
        u = es.synth(text, voice, int(rng.integers(120, 230)), int(rng.integers(25, 75)), int(rng.integers(20, 80)))
        st, en = _truth(text, u.words)
        x = resample_poly(u.audio.astype(np.float64), 320, 441)
        lead = int(rng.uniform(0.0, 0.6) * 16000)
        tail = int(rng.uniform(0.05, 0.6) * 16000)
        x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
        x = _augment(x, rng, 16000) if augment else x / max(1e-6, np.abs(x).max()) * 0.8
        audio.append(np.clip(x * 32767, -32768, 32767).astype(np.int16))
        offsets.append(offsets[-1] + len(x))
        texts.append(text)
        starts.append(st + lead / 16000)
        ends.append(en + lead / 16000)
    wcount = np.array([0] + [len(s) for s in starts]).cumsum()
    return dict(
        audio=np.concatenate(audio),
        offsets=np.array(offsets, np.int64),
        texts=np.array(json.dumps(texts)),
        word_offsets=wcount,
        word_start_s=np.concatenate(starts),
        word_end_s=np.concatenate(ends),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sents = _sentences()
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(sents))
    held_sents = [sents[i] for i in order[: len(sents) // 10]]
    train_sents = [sents[i] for i in order[len(sents) // 10 :]]
    es = Espeak()
    np.savez_compressed(a.out / "train.npz", **build(a.train, TRAIN_DIALECTS, TRAIN_VARIANTS, train_sents, rng, es, True))
    np.savez_compressed(
        a.out / "heldout.npz", **build(a.heldout, HELDOUT_DIALECTS, HELDOUT_VARIANTS, held_sents, rng, es, False)
    )
    print(f"{a.out}: {a.train} training and {a.heldout} held-out utterances from {len(sents)} sentences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
