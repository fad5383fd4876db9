"""Speech benchmarks (not collected by pytest). Prints numbers against the floors of issue 4.

    .venv/bin/python tests/benchmarks/bench_speech.py [--heldout DIR/heldout.npz] [--n 100] [--skip-speed] [--torchaudio-python PY] [--model M.pt]

1. Viterbi speed on random emissions (C = 30, L = T/4, T = 1k, 5k, 20k), float64, same path required:
   warpsync's Numba kernel vs torchaudio.functional.forced_align (in its own Python when it is not
   importable here: `--torchaudio-python`), and vs a plain scalar Numba loop; see bench_viterbi.py.
2. Accuracy on held-out espeak-ng voices (word boundaries vs espeak-ng truth): MAE and share within 20 ms,
   for warpsync and for pocketsphinx's forced aligner on the same utterances.
3. Real speech (tests/data/speech + Debian asterisk prompts / LibriVox when installed): agreement of word
   boundaries between warpsync and pocketsphinx.
4. CPU real-time factor of the whole path (model + alignment + confidence).
5. Streaming latency: audio pushed in 100 ms chunks, how long after a word's end (audio time + compute)
   the word is committed; p50 / p95.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from warpsync.speech import align
from warpsync.speech.model import AcousticModel
from warpsync.speech.stream import StreamingAligner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "speech"))
from calibrate import boundary_errors, summarize


def bench_speed(reps: int, torchaudio_python: str | None) -> None:
    """Viterbi speed against torchaudio: bench_viterbi.py (torchaudio runs in its own Python when it is not
    importable here, alternating call by call with ours)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_viterbi

    bench_viterbi.run(reps=reps, torchaudio_python=torchaudio_python)


def _ps_align(wave16k: np.ndarray, text: str):
    from pocketsphinx import Decoder

    d = Decoder(samprate=16000, loglevel="FATAL")
    words = [re.sub(r"[^a-z']", "", w.lower()) for w in text.split()]
    try:
        d.set_align_text(" ".join(w for w in words if w))
    except Exception:  # noqa: BLE001  pocketsphinx cannot align this text: no result
        return None
    pcm = (np.clip(wave16k, -1, 1) * 32767).astype(np.int16).tobytes()
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
    segs = d.seg()
    if segs is None:  # no alignment found
        return None
    out = [(s.word.split("(")[0], s.start_frame / 100, (s.end_frame + 1) / 100) for s in segs]
    out = [o for o in out if not o[0].startswith("<") and o[0] not in ("[NOISE]",)]
    if len(out) != sum(1 for w in words if w):
        return None
    return out


def _ours(model: AcousticModel, wave: np.ndarray, text: str):
    em = model.emissions(wave)
    ws = align.align_words(em, model.vocab.words(text), model.hop_s, calibration=model.calibration)
    return ws


def bench_accuracy(model, heldout: Path, n: int) -> None:
    print(f"== Accuracy on held-out espeak-ng voices ({heldout}) ==")
    d = np.load(heldout)
    d = {k: d[k] for k in d.files}
    texts = json.loads(str(d["texts"]))[:n]
    err_ws, err_ps, err_ws_common, t_model, t_audio = [], [], [], 0.0, 0.0
    ps_skipped = 0
    recs = []
    for i, text in enumerate(texts):
        wave = d["audio"][d["offsets"][i] : d["offsets"][i + 1]].astype(np.float32) / 32768
        st = d["word_start_s"][d["word_offsets"][i] : d["word_offsets"][i + 1]]
        en = d["word_end_s"][d["word_offsets"][i] : d["word_offsets"][i + 1]]
        t = time.perf_counter()
        ws = _ours(model, wave, text)
        t_model += time.perf_counter() - t
        t_audio += len(wave) / 16000
        recs += boundary_errors(ws, st, en)
        by_index = {w.index: w for w in ws}
        mine = []
        for k in range(len(st)):
            w = by_index.get(k)
            if w is None:
                continue
            if not np.isnan(st[k]):
                mine.append(abs(w.start_s - st[k]))
            if not np.isnan(en[k]):
                mine.append(abs(w.end_s - en[k]))
        err_ws += mine
        ps = _ps_align(wave, text)
        if ps is None:
            ps_skipped += 1
            continue
        err_ws_common += mine
        spoken = [k for k, w in enumerate(text.split()) if re.sub(r"[^a-z']", "", w.lower())]
        for k, (_, a, b) in zip(spoken, ps):
            if not np.isnan(st[k]):
                err_ps.append(abs(a - st[k]))
            if not np.isnan(en[k]):
                err_ps.append(abs(b - en[k]))
    e1, e2 = np.array(err_ws) * 1000, np.array(err_ps) * 1000
    print(
        f"utterances: {len(texts)}, audio {t_audio:.1f} s, boundaries: warpsync {len(e1)}, pocketsphinx {len(e2)} "
        f"(pocketsphinx skipped {ps_skipped} utterances with out-of-dictionary words)"
    )
    print(
        f"warpsync    : MAE {e1.mean():6.1f} ms, within 20 ms {np.mean(e1 <= 20) * 100:5.1f}%, median {np.median(e1):5.1f} ms"
        f"   [floor: MAE <= 20 ms, >= 80% within 20 ms]"
    )
    print(f"warpsync by boundary kind (calibration {model.calibration}):\n{summarize(recs)}")
    if len(e2):
        e3 = np.array(err_ws_common) * 1000
        print(
            f"warpsync on the utterances pocketsphinx aligned: MAE {e3.mean():6.1f} ms, within 20 ms "
            f"{np.mean(e3 <= 20) * 100:5.1f}%, median {np.median(e3):5.1f} ms"
        )
        print(
            f"pocketsphinx: MAE {e2.mean():6.1f} ms, within 20 ms {np.mean(e2 <= 20) * 100:5.1f}%, median {np.median(e2):5.1f} ms"
        )
    print(f"CPU real-time factor (model + alignment + confidence): {t_model / t_audio:.4f}   [floor: <= 0.05]")


def _real_items(limit_asterisk: int):
    import soundfile as sf
    from scipy.signal import resample_poly

    items = []
    man = json.loads((ROOT / "tests/data/speech/manifest.json").read_text())
    for it in man:
        if it["kind"] != "espeak":
            items.append((ROOT / "tests/data/speech" / it["audio"], it["text"]))
    core = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
    if core.exists():
        k = 0
        with gzip.open(core, "rt", errors="replace") as fh:
            for line in fh:
                if ":" not in line or line.startswith(";"):
                    continue
                name, text = line.split(":", 1)
                p = Path("/usr/share/asterisk/sounds/en") / f"{name.strip()}.wav"
                if p.exists() and re.fullmatch(r"[A-Za-z' ,.?!-]+", text.strip()) and len(text.split()) >= 3:
                    items.append((p, text.strip()))
                    k += 1
                    if k >= limit_asterisk:
                        break
    lib = Path("/usr/share/pocketsphinx/test/data/librivox/transcription")
    if lib.exists():
        for line in lib.read_text().splitlines():
            m = re.match(r"<s> (.*) </s> \((.*)\)", line)
            if m:
                p = lib.parent / f"{m.group(2)}.wav"
                if p.exists() and all((p != q) for q, _ in items):
                    items.append((p, m.group(1)))
    out = []
    for p, text in items:
        x, sr = sf.read(str(p), dtype="float32")
        if x.ndim > 1:
            x = x.mean(axis=1)
        if sr != 16000:
            g = np.gcd(int(sr), 16000)
            x = resample_poly(x, 16000 // g, sr // g).astype(np.float32)
        out.append((p.name, x, text))
    return out


def bench_real(model, limit_asterisk: int) -> None:
    print("== Real speech: agreement with pocketsphinx ==")
    diffs, n_utt, n_skip = [], 0, 0
    for name, x, text in _real_items(limit_asterisk):
        ps = _ps_align(x, text)
        if ps is None:
            n_skip += 1
            continue
        ws = _ours(model, x, text)
        if len(ws) != len(ps):
            n_skip += 1
            continue
        n_utt += 1
        for w, (_, a, b) in zip(ws, ps):
            diffs += [abs(w.start_s - a), abs(w.end_s - b)]
    d = np.array(diffs) * 1000
    if len(d):
        print(
            f"{n_utt} recordings ({n_skip} skipped), {len(d)} boundaries: |warpsync - pocketsphinx| mean {d.mean():.1f} ms,"
            f" median {np.median(d):.1f} ms, within 20 ms {np.mean(d <= 20) * 100:.1f}%, within 50 ms {np.mean(d <= 50) * 100:.1f}%"
        )


def bench_streaming(model, heldout: Path, n: int) -> None:
    print("== Streaming latency (100 ms audio chunks, model step 0.2 s, text up front) ==")
    from warpsync.speech.model import WindowedEmissions

    d = np.load(heldout)
    d = {k: d[k] for k in d.files}
    texts = json.loads(str(d["texts"]))[:n]
    wave = (
        np.concatenate([d["audio"][d["offsets"][i] : d["offsets"][i + 1]] for i in range(len(texts))]).astype(
            np.float32
        )
        / 32768
    )
    text = " ".join(texts)
    we = WindowedEmissions(model, 3000, min_frames=20)  # [speech] step_s = 0.2
    sa = StreamingAligner(
        model.vocab, len(model.vocab.tokens), model.hop_s, horizon_frames=300, calibration=model.calibration
    )
    sa.add_text(text)
    lat, chunk = [], 1600
    t_compute = 0.0
    words = []
    for i in range(0, len(wave), chunk):
        t = time.perf_counter()
        got = sa.add_frames(we.push(wave[i : i + chunk]))
        dt = time.perf_counter() - t
        t_compute += dt
        audio_now = (i + chunk) / 16000
        for w in got:
            lat.append(audio_now - w.end_s + dt)
        words += got
    words += sa.add_frames(we.finish()) + sa.finish()
    lat = np.array(lat)
    em = model.emissions(wave)
    off = align.align_words(em, model.vocab.words(text), model.hop_s, calibration=model.calibration)
    bo = np.array([(w.start_frame, w.end_frame) for w in off])
    bs = np.array([(w.start_frame, w.end_frame) for w in words])
    agree = (bo == bs).mean() if bo.shape == bs.shape else float("nan")
    so = np.array([(w.start_s, w.end_s) for w in off])
    ss = np.array([(w.start_s, w.end_s) for w in words])
    agree_s = np.mean(np.abs(so - ss) < 1e-9) if so.shape == ss.shape else float("nan")
    print(
        f"{len(wave) / 16000:.1f} s of audio, {len(words)} words: latency p50 {np.percentile(lat, 50):.2f} s, "
        f"p95 {np.percentile(lat, 95):.2f} s [floor: p95 <= 1.5 s]; forced commits {sa.stats.forced_commits}; "
        f"streaming == offline on {agree * 100:.2f}% of boundaries (frames), {agree_s * 100:.2f}% (seconds, calibrated); compute RTF {t_compute / (len(wave) / 16000):.4f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--heldout",
        type=Path,
        default=Path("/work/speechdata/heldout.npz"),
        help="held-out set from tools/speech/make_dataset.py",
    )
    ap.add_argument("--n", type=int, default=100, help="held-out utterances to use")
    ap.add_argument("--asterisk", type=int, default=60, help="asterisk prompts to use for the real-speech check")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--torchaudio-python", default=None, help="a Python with torchaudio for the Viterbi peer (see bench_viterbi.py)"
    )
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--model", default="", help="TorchScript CTC model to measure (default: the shipped one)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # one core: the floors are per core, and the host is shared
    if not a.skip_speed:
        bench_speed(a.reps, a.torchaudio_python)
    model = AcousticModel.load(a.model or None, "cpu")
    if a.heldout.exists():
        bench_accuracy(model, a.heldout, a.n)
        bench_streaming(model, a.heldout, min(a.n, 40))
    else:
        print(f"held-out set {a.heldout} not found: run tools/speech/make_dataset.py first (needs espeak-ng)")
    bench_real(model, a.asterisk)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
