"""`warpsync align FILE... [--ref FILE]`: align recorded files offline with the sync engine.

Prints one line per file: offset, drift and confidence against the reference file (the first file, or
``--ref``); ``--json`` prints the same as one JSON object. Convention (that of ``sync.offset``): ``offset_s =
t_local - t_ref``, so a moment at local time t of a file (seconds from its start, or on its own time column)
is at reference time ``t - offset_s``; ``drift_ppm = (d t_local / d t_ref - 1) * 1e6``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import AlignmentError, ConfigError


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every 0.1 s."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        frac = min(1.0, done / total) if total > 0 else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label[:40]:<40} [{bar:<30}] {frac * 100:5.1f}%")
        if total > 0 and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _rate(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r} is not a rate in Hz") from None
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError("a rate must be > 0 Hz")
    return x


def _run(args: argparse.Namespace) -> int:
    from ..recordings import read_recording, unique_ids

    paths = [Path(p) for p in args.files]
    if args.ref is not None:
        ref_path = Path(args.ref)
        paths = [ref_path] + [p for p in paths if p.resolve() != ref_path.resolve()]
    if len(paths) < 2:
        raise AlignmentError("give at least two files to align (the first, or --ref, is the reference)")
    if args.plot is not None:
        _need_matplotlib()
    if args.warp_csv is not None:
        wdir = Path(args.warp_csv)
        if wdir.exists() and not wdir.is_dir():
            raise ConfigError(f"--warp-csv {wdir}: exists and is not a directory")
    ids = unique_ids(paths)
    recs = []
    for p, sid in zip(paths, ids):
        recs.append(
            read_recording(p, rate_hz=args.rate, stream=sid, progress=ProgressBar(f"reading {p.name}", args.progress))
        )
    from ..engine.offline import align_recordings  # after the files are read: bad input fails fast

    bar = ProgressBar("aligning", args.progress)
    by_name = align_recordings(
        [_engine_recording(r, args.shared_clock) for r in recs],
        reference=ids[0],
        progress=(lambda f: bar(int(f * 1000), 1000)) if args.progress else None,
    )
    results = [by_name[sid] for sid in ids]
    origin = "the files' own time axes (--shared-clock)" if args.shared_clock else "each file's first sample"
    out = {
        "reference": ids[0],
        "convention": (
            "offset_s = t_local - t_ref at reference time t_s (at T: offset_s + drift_ppm * 1e-6 * (T - t_s)); "
            "drift_ppm = (d t_local / d t_ref - 1) * 1e6"
        ),
        "time_origin": origin,
        "streams": [_result_json(r, rec) for r, rec in zip(results, recs)],
    }
    if args.warp_csv is not None:
        wdir = Path(args.warp_csv)
        wdir.mkdir(parents=True, exist_ok=True)
        for r in results:
            _write_warp(wdir / f"{r.stream}.csv", r)
    if args.plot is not None:
        _plot(Path(args.plot), results, ids[0])
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"reference: {ids[0]} ({paths[0]})")
        print(f"{'stream':<24} {'offset_s':>12} {'drift_ppm':>10} {'confidence':>10} {'uncert_ms':>9}  method")
        for s in out["streams"]:
            unc = "-" if s["uncertainty_s"] is None else f"{s['uncertainty_s'] * 1e3:.3f}"
            print(
                f"{s['stream']:<24} {s['offset_s']:>+12.6f} {s['drift_ppm']:>10.2f} {s['confidence']:>10.3f} "
                f"{unc:>9}  {s['method']}"
            )
    return 0


def _engine_recording(rec: Any, shared_clock: bool) -> Any:
    """A `warpsync.engine.offline.Recording` from a file's `warpsync.recordings.Recording`: irregular time
    columns are resampled onto the uniform grid of their median rate (linear interpolation); the file's own
    time origin is used only with --shared-clock (otherwise local time starts at the first sample and the
    engine's coarse search finds the prior)."""
    import numpy as np

    from ..engine.offline import Recording as EngineRecording

    data = rec.data
    if rec.times_s is not None:
        t = rec.times_s
        period = 1.0 / rec.rate_hz
        if np.max(np.abs(np.diff(t) - period)) > 0.01 * period:
            if data.ndim > 2:
                raise AlignmentError(
                    f"{rec.path}: its frames' times are not {rec.rate_hz:g} Hz apart; frames are not interpolated"
                )
            grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * rec.rate_hz)) + 1) / rec.rate_hz
            data = np.stack([np.interp(grid, t, data[:, c]) for c in range(data.shape[1])], axis=1).astype(np.float32)
    return EngineRecording(
        name=rec.stream,
        data=data,
        rate_hz=rec.rate_hz,
        modality=rec.modality,
        t0_s=rec.t0_s if shared_clock else None,
    )


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _result_json(r: Any, rec: Any) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "file": str(rec.path),
        "modality": rec.modality,
        "rate_hz": rec.rate_hz,
        "duration_s": rec.duration_s,
        "t_s": float(r.t_s),
        "offset_s": float(r.offset_s),
        "drift_ppm": float(r.drift_ppm),
        "confidence": float(r.confidence),
        "uncertainty_s": _finite(getattr(r, "uncertainty_s", None)),
        "method": r.method,
        "prior": r.prior,
        "windows": int(r.windows),
        "informative_windows": int(r.informative),
    }


def _write_warp(path: Path, r: Any) -> None:
    """``t_local_s,t_ref_s`` rows: the fine warp (file time -> reference time), one row per hop in increasing
    reference time (a hop repeating the previous one's time is written once)."""
    import numpy as np

    w = np.asarray(r.warp, dtype=np.float64).reshape(-1, 2)
    keep = np.ones(len(w), dtype=bool)
    if len(w):
        keep[1:] = w[1:, 1] > np.maximum.accumulate(w[:, 1])[:-1]
    t_local, t_ref = w[keep, 0], w[keep, 1]
    with path.open("w") as fh:
        fh.write("t_local_s,t_ref_s\n")
        for a, b in zip(t_local, t_ref):
            fh.write(f"{a:.9f},{b:.9f}\n")


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed: pip install matplotlib") from None


def _plot(path: Path, results: list[Any], ref: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in results:
        w = np.asarray(r.warp, dtype=np.float64).reshape(-1, 2)
        t_local, t_ref = w[:, 0], w[:, 1]
        if t_local.size:
            ax.plot(t_ref, (t_local - t_ref) * 1e3 - r.offset_s * 1e3, label=f"{r.stream} ({r.offset_s:+.4f} s)")
    ax.set_xlabel(f"reference time ({ref}), s")
    ax.set_ylabel("t_local - t_ref - offset, ms")
    ax.set_title("warpsync align: fine warp around each file's offset")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise ConfigError(f"--plot {path}: cannot write ({exc})") from None
    finally:
        plt.close(fig)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="align recorded files (audio, video audio tracks, sensor logs) offline",
        description="Align recordings with the sync engine and print each file's offset, drift and confidence "
        "against the reference (the first file, or --ref). Reads WAV/FLAC/OGG (soundfile), the audio track of "
        "video files (PyAV), CSV sensor logs (a t/time/timestamp column in seconds, or --rate) and .npy/.npz.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--ref", default=None, metavar="FILE", help="reference file (default: the first)")
    p.add_argument(
        "--rate", type=_rate, default=None, metavar="HZ", help="sample rate of sensor logs without a time axis"
    )
    p.add_argument(
        "--shared-clock",
        action="store_true",
        help="the files' time axes (CSV time columns, container start times) share one clock: use them "
        "as the prior instead of the coarse content search",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--warp-csv", default=None, metavar="DIR", help="write each file's fine warp as DIR/<stream>.csv")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="plot the warps (needs matplotlib)")
    p.add_argument("--progress", action="store_true", help="progress bars on stderr")
    p.set_defaults(func=_run)
