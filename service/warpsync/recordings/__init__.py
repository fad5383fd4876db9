"""Recorded files as arrays on an explicit time axis, for offline alignment (`warpsync align`).

Supported:

* audio files (WAV, FLAC, OGG, AIFF, ... whatever libsndfile reads) via soundfile → ``audio``;
* the audio track of video files (MP4, MOV, MKV, WebM, AVI, ...) via PyAV → ``audio``; the track's start
  time in the container becomes ``t0_s``;
* CSV sensor logs → ``sensor``: numeric columns with an optional header row; a column named ``t``, ``time``,
  ``timestamp``, ``time_s`` or ``t_s`` (any case) is the time axis in seconds and the rate is estimated from it,
  otherwise ``rate_hz`` must be given. Empty lines and lines starting with ``#`` are skipped;
* NumPy ``.npy`` (``(n,)`` or ``(n, channels)``, numeric; ``rate_hz`` must be given) and ``.npz`` with ``data``
  and either ``t`` (seconds per sample) or ``rate_hz`` → ``sensor`` (or the modality given). An ``.npz`` may say
  its ``modality``: ``video`` takes per-frame vectors ``(n, d)`` (motion energies, embeddings) or grayscale/colour
  frames ``(n, h, w[, c])`` at least 4x4 pixels, whose motion the engine computes (an IMU is then aligned to
  them as live, on the change of motion energy per cell); video frames need regular times.

Every failure is one `AlignmentError` saying which file and what to do. Reading is blockwise with a progress
callback ``progress(done, total)`` (units: samples or bytes, whichever the reader knows), for long files.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import AlignmentError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Modality = Literal["audio", "video", "sensor"]

AUDIO_EXT = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"}
VIDEO_EXT = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mts",
    ".m2ts",
    ".ts",
    ".mpg",
    ".mpeg",
    ".3gp",
    ".m4a",
    ".aac",
    ".mp3",
    ".opus",
}
CSV_EXT = {".csv", ".tsv", ".txt"}
NPY_EXT = {".npy", ".npz"}
TIME_COLUMNS = ("t", "time", "timestamp", "time_s", "t_s", "seconds")
BLOCK_SAMPLES = 1 << 16


@dataclass(frozen=True)
class Recording:
    """One recorded stream: ``data`` is ``(n, channels)`` float32 (video frames: ``(n, h, w[, c])`` as stored)
    sampled at ``rate_hz``; sample i is at local time ``t0_s + i / rate_hz`` unless ``times_s`` (per-sample local
    times, seconds) is given."""

    path: Path
    stream: str
    """Stream id (the file name without its extension, made unique by the caller)."""
    modality: Modality
    rate_hz: float
    data: np.ndarray
    t0_s: float = 0.0
    times_s: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.data.shape[0] / self.rate_hz if self.rate_hz > 0 else 0.0


def kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in AUDIO_EXT:
        return "audio"
    if ext in VIDEO_EXT:
        return "video"
    if ext in CSV_EXT:
        return "csv"
    if ext in NPY_EXT:
        return "npy"
    raise AlignmentError(
        f"{path}: unsupported file type {ext or '(no extension)'!r}; give an audio file "
        f"({', '.join(sorted(AUDIO_EXT))}), a video/audio container ({', '.join(sorted(VIDEO_EXT))}), "
        f"a CSV sensor log ({', '.join(sorted(CSV_EXT))}) or a NumPy array (.npy/.npz)"
    )


def read_recording(
    path: str | Path,
    *,
    rate_hz: float | None = None,
    modality: Modality | None = None,
    progress: Progress | None = None,
    stream: str | None = None,
) -> Recording:
    """Read one file (see the module docstring). ``rate_hz`` is required for sensor logs without a time
    axis; ``modality`` overrides the guess (``audio`` for sound, ``sensor`` for CSV/NumPy)."""
    p = Path(path)
    if not p.exists():
        raise AlignmentError(f"{p}: no such file")
    if not p.is_file():
        raise AlignmentError(f"{p}: not a regular file")
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise AlignmentError(f"{p}: rate {rate_hz!r} Hz must be a positive number")
    kind = kind_of(p)
    sid = stream or p.stem
    if kind == "audio":
        rec = _read_audio(p, sid, progress)
    elif kind == "video":
        rec = _read_av_audio(p, sid, progress)
    elif kind == "csv":
        rec = _read_csv(p, sid, rate_hz, progress)
    else:
        rec = _read_npy(p, sid, rate_hz)
    if modality is not None and modality != rec.modality:
        rec = Recording(rec.path, rec.stream, modality, rec.rate_hz, rec.data, rec.t0_s, rec.times_s, rec.meta)
    if rec.data.shape[0] < 2:
        raise AlignmentError(f"{p}: holds {rec.data.shape[0]} sample(s); at least 2 are needed to align")
    if not np.isfinite(rec.data).all():
        bad = int(np.count_nonzero(~np.isfinite(rec.data)))
        raise AlignmentError(f"{p}: {bad} value(s) are NaN or infinite; clean or interpolate them first")
    return rec


# ---------------------------------------------------------------------------------------------- audio


def _read_audio(p: Path, sid: str, progress: Progress | None) -> Recording:
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AlignmentError(f"{p}: not a readable audio file ({exc}); convert it to WAV or FLAC") from None
    total = int(info.frames)
    blocks: list[np.ndarray] = []
    done = 0
    try:
        with sf.SoundFile(str(p)) as fh:
            while True:
                b = fh.read(BLOCK_SAMPLES, dtype="float32", always_2d=True)
                if b.shape[0] == 0:
                    break
                blocks.append(b)
                done += b.shape[0]
                if progress is not None:
                    progress(done, total)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AlignmentError(f"{p}: audio data is corrupt after {done} samples ({exc})") from None
    data = np.concatenate(blocks) if blocks else np.zeros((0, max(info.channels, 1)), np.float32)
    return Recording(
        p,
        sid,
        "audio",
        float(info.samplerate),
        data,
        0.0,
        None,
        {"format": info.format, "subtype": info.subtype, "channels": info.channels},
    )


def _read_av_audio(p: Path, sid: str, progress: Progress | None) -> Recording:
    try:
        import av
    except ImportError:
        raise AlignmentError(f"{p}: reading video files needs PyAV: pip install 'warpsync[video]'") from None
    try:
        container = av.open(str(p))
    except Exception as exc:  # noqa: BLE001  PyAV raises its own error types per container/codec problem
        raise AlignmentError(f"{p}: not a readable media file ({type(exc).__name__}: {exc})") from None
    try:
        if not container.streams.audio:
            raise AlignmentError(
                f"{p}: has no audio track; warpsync align reads the audio of video files (to align by motion, "
                f"save the frames or per-frame motion as .npz with data, rate_hz and modality='video')"
            )
        st = container.streams.audio[0]
        rate = float(st.rate or st.codec_context.sample_rate or 0)
        if not rate > 0:
            raise AlignmentError(f"{p}: the audio track declares no sample rate")
        tb = float(st.time_base) if st.time_base is not None else 1.0 / rate
        total = int(st.duration * tb * rate) if st.duration else 0
        resampler = av.AudioResampler(format="fltp")
        blocks: list[np.ndarray] = []
        t0: float | None = None
        done = 0
        for frame in container.decode(st):
            if t0 is None:
                t0 = float(frame.pts * tb) if frame.pts is not None else 0.0
            for out in resampler.resample(frame):
                arr = out.to_ndarray()
                blocks.append(np.ascontiguousarray(arr.T, dtype=np.float32))
                done += arr.shape[1]
            if progress is not None:
                progress(done, max(total, done))
        for out in resampler.resample(None):
            blocks.append(np.ascontiguousarray(out.to_ndarray().T, dtype=np.float32))
    except AlignmentError:
        raise
    except Exception as exc:  # noqa: BLE001  decoding errors of any codec
        raise AlignmentError(f"{p}: could not decode the audio track ({type(exc).__name__}: {exc})") from None
    finally:
        container.close()
    if not blocks:
        raise AlignmentError(f"{p}: the audio track is empty")
    data = np.concatenate(blocks)
    return Recording(
        p, sid, "audio", rate, data, t0 or 0.0, None, {"codec": st.codec_context.name, "container": p.suffix}
    )


# ---------------------------------------------------------------------------------------------- sensors


def _read_csv(p: Path, sid: str, rate_hz: float | None, progress: Progress | None) -> Recording:
    total = p.stat().st_size
    rows: list[list[float]] = []
    header: list[str] | None = None
    delim = "\t" if p.suffix.lower() == ".tsv" else ","
    read_chars = [0]

    def lines(fh):
        for ln in fh:
            read_chars[0] += len(ln)
            if ln.strip() and not ln.lstrip().startswith("#"):
                yield ln

    try:
        with p.open(newline="", encoding="utf-8") as fh:
            if p.suffix.lower() == ".txt":
                sample = fh.read(4096)
                fh.seek(0)
                delim = "\t" if "\t" in sample and "," not in sample else ("," if "," in sample else " ")
            reader = csv.reader(lines(fh), delimiter=delim, skipinitialspace=True)
            for lineno, row in enumerate(reader, 1):
                row = [c for c in row if c != ""] if delim == " " else row
                try:
                    vals = [float(c) for c in row]
                except ValueError:
                    if header is None and not rows:
                        header = [c.strip() for c in row]
                        continue
                    raise AlignmentError(
                        f"{p}: row {lineno} has a non-numeric value ({', '.join(row)[:80]}); sensor logs hold numbers only"
                    ) from None
                if rows and len(vals) != len(rows[0]):
                    raise AlignmentError(
                        f"{p}: row {lineno} has {len(vals)} columns, the first data row {len(rows[0])}"
                    )
                rows.append(vals)
                if progress is not None and lineno % 10000 == 0:
                    progress(min(read_chars[0], total), total)
    except UnicodeDecodeError:
        raise AlignmentError(f"{p}: not a text file (UTF-8 CSV expected)") from None
    if progress is not None:
        progress(total, total)
    if not rows:
        raise AlignmentError(f"{p}: no numeric rows")
    arr = np.asarray(rows, dtype=np.float64)
    if header is not None and len(header) != arr.shape[1]:
        raise AlignmentError(f"{p}: the header names {len(header)} columns but rows have {arr.shape[1]}")
    names = header or [f"c{i}" for i in range(arr.shape[1])]
    tcol = next((i for i, n in enumerate(names) if n.lower() in TIME_COLUMNS), None)
    times = None
    t0 = 0.0
    if tcol is not None:
        times = arr[:, tcol].copy()
        arr = np.delete(arr, tcol, axis=1)
        names = [n for i, n in enumerate(names) if i != tcol]
        if arr.shape[1] == 0:
            raise AlignmentError(f"{p}: only a time column, no data columns")
        d = np.diff(times)
        if times.size < 2 or not np.all(d > 0):
            raise AlignmentError(f"{p}: the time column {header[tcol]!r} must increase strictly (seconds)")
        est = 1.0 / float(np.median(d))
        if rate_hz is None:
            rate_hz = est
        t0 = float(times[0])
    elif rate_hz is None:
        raise AlignmentError(
            f"{p}: no time column ({'/'.join(TIME_COLUMNS)}) and no rate: pass --rate HZ for this sensor log"
        )
    return Recording(p, sid, "sensor", float(rate_hz), arr.astype(np.float32), t0, times, {"columns": names})


def _read_npy(p: Path, sid: str, rate_hz: float | None) -> Recording:
    try:
        obj = np.load(str(p), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise AlignmentError(f"{p}: not a NumPy file ({exc}); object arrays are not read (no pickle)") from None
    times = None
    t0 = 0.0
    modality: Modality = "sensor"
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            if "data" not in obj.files:
                raise AlignmentError(f"{p}: an .npz needs an array 'data' (and 't' or 'rate_hz'); it has {obj.files}")
            data = obj["data"]
            if "t" in obj.files:
                times = np.asarray(obj["t"], dtype=np.float64)
            if "rate_hz" in obj.files and rate_hz is None:
                rate_hz = float(obj["rate_hz"])
            if "modality" in obj.files:
                m = obj["modality"]
                if m.dtype.kind != "U" or m.ndim != 0 or str(m) not in ("audio", "video", "sensor"):
                    raise AlignmentError(f"{p}: 'modality' must be one of 'audio', 'video', 'sensor', got {m!r}")
                modality = str(m)  # type: ignore[assignment]
    else:
        data = obj
    if data.dtype.kind not in "uifb":
        raise AlignmentError(f"{p}: dtype {data.dtype} is not numeric")
    if data.ndim == 1:
        data = data[:, None]
    frames = modality == "video" and data.ndim in (3, 4)
    if frames and (data.shape[1] < 4 or data.shape[2] < 4):
        raise AlignmentError(f"{p}: video frames {data.shape[1:3]} are smaller than 4x4 pixels")
    if frames and times is not None and np.ptp(np.diff(times)) > 0.01 * float(np.median(np.diff(times))):
        raise AlignmentError(f"{p}: video frames need regular times (frames are not interpolated); give 'rate_hz'")
    if data.ndim != 2 and not frames:
        raise AlignmentError(
            f"{p}: shape {data.shape}: expected (samples,) or (samples, channels)"
            + ("" if modality == "video" else "; frames (n, h, w[, c]) need modality='video' in an .npz")
        )
    if times is not None:
        if times.shape != (data.shape[0],) or times.size < 2 or not np.all(np.diff(times) > 0):
            raise AlignmentError(f"{p}: 't' must hold one strictly increasing time per sample (seconds)")
        if rate_hz is None:
            rate_hz = 1.0 / float(np.median(np.diff(times)))
        t0 = float(times[0])
    if rate_hz is None:
        raise AlignmentError(f"{p}: no sample rate: pass --rate HZ (or save an .npz with 'data' and 't'/'rate_hz')")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise AlignmentError(f"{p}: rate {rate_hz!r} Hz must be a positive number")
    # frames keep their dtype (8-bit frames as float32 would take four times the memory)
    return Recording(p, sid, modality, float(rate_hz), data if frames else data.astype(np.float32), t0, times, {})


def unique_ids(paths: list[Path]) -> list[str]:
    """Stream ids from file names, made unique (``a``, ``a-2``) and valid for the wire protocol."""
    import re

    out: list[str] = []
    seen: dict[str, int] = {}
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9_.:/\-]", "_", p.stem)[:120] or "stream"
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(base if n == 1 else f"{base}-{n}")
    return out
