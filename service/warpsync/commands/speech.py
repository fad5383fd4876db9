"""`warpsync speech align AUDIO TRANSCRIPT [--json|--textgrid|--srt|--vtt]` and `warpsync speech train`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import AlignmentError


def _read_audio(path: Path, rate_hz: int):
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    from ..speech.features import to_mono

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AlignmentError(f"cannot read audio {path}: {exc} (use WAV, FLAC or OGG)") from None
    x = to_mono(x)
    if sr != rate_hz:
        g = np.gcd(int(sr), int(rate_hz))
        x = resample_poly(x.astype(np.float64), rate_hz // g, int(sr) // g).astype(np.float32)
    return x


def _ts(t: float, sep: str) -> str:
    ms = round(t * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def format_words(words, fmt: str, duration_s: float) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {
                    "index": w.index,
                    "word": w.text,
                    "start_s": round(w.start_s, 3),
                    "end_s": round(w.end_s, 3),
                    "confidence": round(w.confidence, 4),
                }
                for w in words
            ],
            indent=1,
        )
    if fmt == "srt":
        return "\n".join(
            f"{i}\n{_ts(w.start_s, ',')} --> {_ts(w.end_s, ',')}\n{w.text}\n" for i, w in enumerate(words, 1)
        )
    if fmt == "vtt":
        return "WEBVTT\n\n" + "\n".join(f"{_ts(w.start_s, '.')} --> {_ts(w.end_s, '.')}\n{w.text}\n" for w in words)
    # Praat TextGrid (long text format), one interval tier; gaps become empty intervals
    iv, t = [], 0.0
    for w in words:
        if w.start_s > t:
            iv.append((t, w.start_s, ""))
        iv.append((w.start_s, w.end_s, w.text))
        t = w.end_s
    end = max(duration_s, t)
    if end > t:
        iv.append((t, end, ""))
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {end:.3f}",
        "tiers? <exists>",
        "size = 1",
        "item []:",
        "    item [1]:",
        '        class = "IntervalTier"',
        '        name = "words"',
        "        xmin = 0",
        f"        xmax = {end:.3f}",
        f"        intervals: size = {len(iv)}",
    ]
    for i, (a, b, s) in enumerate(iv, 1):
        s = s.replace('"', '""')
        lines += [
            f"        intervals [{i}]:",
            f"            xmin = {a:.3f}",
            f"            xmax = {b:.3f}",
            f'            text = "{s}"',
        ]
    return "\n".join(lines) + "\n"


def _align(args: argparse.Namespace) -> int:
    from ..speech.align import align_words
    from ..speech.model import AcousticModel

    model = AcousticModel.load(args.model or None, args.device)
    wave = _read_audio(Path(args.audio), model.sample_rate_hz)
    try:
        text = Path(args.transcript).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlignmentError(f"cannot read transcript {args.transcript}: {exc}") from None
    em = model.emissions(wave)
    words = align_words(
        em,
        model.vocab.words(text),
        model.hop_s,
        blank=model.vocab.blank,
        star=not args.no_star,
        star_penalty=args.star_penalty,
        backend="torch" if model.device.type == "cuda" else "numba",
        device=str(model.device),
        calibration=model.calibration,
    )
    sys.stdout.write(format_words(words, args.format, len(wave) / model.sample_rate_hz))
    if args.format == "json":
        sys.stdout.write("\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..speech.train import train

    stats = train(
        Path(args.data),
        Path(args.out),
        epochs=args.epochs,
        seed=args.seed,
        channels=args.channels,
        lr=args.lr,
        blank_weight=args.blank_weight,
        init=Path(args.init) if args.init else None,
        threads=args.threads,
        word_weight=args.word_weight,
    )
    print(json.dumps(stats))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("speech", help="CTC speech alignment: align files offline, train the model")
    sub = p.add_subparsers(dest="speech_command", metavar="ACTION", required=True)
    a = sub.add_parser("align", help="align a transcript to an audio file, word by word")
    a.add_argument("audio", help="audio file (WAV, FLAC, OGG; any rate, mixed to mono)")
    a.add_argument("transcript", help="UTF-8 text file with the words spoken")
    g = a.add_mutually_exclusive_group()
    for f in ("json", "textgrid", "srt", "vtt"):
        g.add_argument(f"--{f}", dest="format", action="store_const", const=f, help=f"write {f.upper()} (default json)")
    a.set_defaults(format="json")
    a.add_argument("--model", default="", help="TorchScript CTC model (vocabulary beside it); default: shipped")
    a.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    a.add_argument("--star-penalty", type=float, default=1.5, help="star (garbage) cost per frame, nats")
    a.add_argument("--no-star", action="store_true", help="plain CTC trellis without the star state")
    a.set_defaults(func=_align)
    t = sub.add_parser("train", help="train the CTC model (data from tools/speech/make_dataset.py)")
    t.add_argument("data", help="directory holding train.npz")
    t.add_argument("--out", required=True, help="output TorchScript path (the vocabulary JSON is written beside it)")
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--channels", type=int, default=96)
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle schedule)")
    t.add_argument("--blank-weight", type=float, default=1.5, help="weight of the frame-level blank loss")
    t.add_argument("--init", default="", help="warm-start from this exported model (same shape)")
    t.add_argument(
        "--word-weight",
        type=float,
        default=0.0,
        help="weight of the word-level CTC term (each word's tokens inside its truth frames)",
    )
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (at most the cores you may use)")
    t.set_defaults(func=_train)
