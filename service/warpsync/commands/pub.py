"""`warpsync pub FILE --stream ID`: publish a recorded file to the service as one stream.

Reads a sound file (.wav, .flac, .ogg, .aiff; soundfile), a CSV of numeric columns or a .npy array, cut
into chunks of ``--chunk-ms``, or SubRip captions (.srt: one text chunk per caption, with its duration), and
sends them through `warpsync_client.Publisher` at real-time pace (or as fast as the service takes them with
``--as-fast-as-possible``), then closes the stream and waits for the service's acknowledgement. See docs/client.md for the formats (CSV time columns in particular).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from warpsync_client import Publisher
from warpsync_client.control import resolve_endpoint
from warpsync_client.protocol import DTYPES, MODALITIES, dtype_code

from .. import config
from ..errors import WarpsyncError
from ._signals import restore_signals, stop_on_signals

SOUND_SUFFIXES = {".wav", ".flac", ".ogg", ".aif", ".aiff"}
TIME_COLUMNS = ("t_s", "time_s", "t", "time", "timestamp")
"""CSV header names recognised as the time column (device time of each row, seconds), first match wins."""

_SOUND_DTYPES = {
    "PCM_16": "i2",
    "PCM_S8": "i2",
    "PCM_U8": "i2",
    "PCM_24": "i4",
    "PCM_32": "i4",
    "FLOAT": "f4",
    "DOUBLE": "f8",
}
_SF_READ = {"i2": "int16", "i4": "int32", "f4": "float32", "f8": "float64"}


@dataclass
class Source:
    """A file opened for publishing: metadata, and a reader of ``(block, t_rel_s, duration_s)`` chunks where
    ``t_rel_s`` is the time of the block's first sample relative to the file's first sample and ``duration_s``
    is set for captions only."""

    modality: str
    rate_hz: float
    shape: tuple[int, ...]
    dtype: str
    n_samples: int
    t_first_s: float | None
    """Device time of the first row from the file (CSV time column), or None when the file has none."""
    blocks: Any


def _fail(msg: str) -> WarpsyncError:
    return WarpsyncError(msg)


def _open_sound(path: Path, args: argparse.Namespace, frames_per_chunk: Any) -> Source:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001  soundfile raises its own type (or RuntimeError) for unreadable files
        raise _fail(f"{path}: not a readable sound file ({exc})") from None
    code = args.dtype or _SOUND_DTYPES.get(info.subtype, "f4")
    if code not in _SF_READ:
        raise _fail(f"--dtype {code} cannot be read from a sound file; use one of {', '.join(_SF_READ)}")
    rate = float(args.rate_hz or info.samplerate)
    step = frames_per_chunk(rate)

    def blocks() -> Iterator[tuple[np.ndarray, float, None]]:
        done = 0
        with sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(step, dtype=_SF_READ[code], always_2d=True)
                if len(block) == 0:
                    return
                yield block, done / rate, None
                done += len(block)

    return Source(args.modality or "audio", rate, (info.channels,), code, info.frames, None, blocks)


def _open_npy(path: Path, args: argparse.Namespace, frames_per_chunk: Any) -> Source:
    try:
        arr = np.load(str(path), mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise _fail(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise _fail(f"{path}: the array must have at least one sample along its first axis, shape is {arr.shape}")
    if not args.rate_hz:
        raise _fail(f"{path}: a .npy file has no rate; give --rate-hz")
    code = args.dtype or dtype_code(arr.dtype)
    if code is None:
        raise _fail(f"{path}: dtype {arr.dtype} is not one of {', '.join(DTYPES)}; give --dtype to convert it")
    return _array_source(arr, code, float(args.rate_hz), args.modality or "sensor", None, None, frames_per_chunk)


def _array_source(
    arr: np.ndarray,
    code: str,
    rate: float,
    modality: str,
    times: np.ndarray | None,
    t_first: float | None,
    frames_per_chunk: Any,
) -> Source:
    step = frames_per_chunk(rate)

    def blocks() -> Iterator[tuple[np.ndarray, float, None]]:
        for i in range(0, arr.shape[0], step):
            block = np.asarray(arr[i : i + step], dtype=DTYPES[code])
            t_rel = float(times[i] - times[0]) if times is not None else i / rate
            yield block, t_rel, None

    return Source(modality, rate, tuple(arr.shape[1:]), code, arr.shape[0], t_first, blocks)


def _open_csv(path: Path, args: argparse.Namespace, frames_per_chunk: Any) -> Source:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise _fail(f"{path}: the CSV file is empty")

    def is_number(s: str) -> bool:
        try:
            float(s)
        except ValueError:
            return False
        return True

    header = None if all(is_number(c) for c in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    if not body:
        raise _fail(f"{path}: the CSV file has a header but no rows")
    width = len(header) if header else len(body[0])
    time_col = None
    if args.time_column:
        if not header or args.time_column not in header:
            raise _fail(f"{path}: --time-column {args.time_column!r} is not a column of the CSV header {header}")
        time_col = header.index(args.time_column)
    elif header:
        time_col = next((header.index(c) for c in TIME_COLUMNS if c in header), None)
    data = np.empty((len(body), width), np.float64)
    for i, row in enumerate(body):
        if len(row) != width:
            raise _fail(f"{path}: row {i + 1 + bool(header)} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            try:
                data[i, j] = float(cell)
            except ValueError:
                name = f"column {header[j]!r}" if header else f"column {j + 1}"
                raise _fail(f"{path}: row {i + 1 + bool(header)}, {name}: {cell!r} is not a number") from None
    times = None
    if time_col is not None:
        times = data[:, time_col]
        data = np.delete(data, time_col, axis=1)
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise _fail(f"{path}: the time column must be finite and strictly increasing (seconds)")
    if data.shape[1] == 0:
        raise _fail(f"{path}: no value columns besides the time column")
    if args.rate_hz:
        rate = float(args.rate_hz)
    elif times is not None and len(times) > 1:
        rate = float(1.0 / np.median(np.diff(times)))
    else:
        raise _fail(f"{path}: the CSV has no time column ({', '.join(TIME_COLUMNS)}) and no --rate-hz was given")
    code = args.dtype or "f8"
    if DTYPES[code].kind != "f" and not np.array_equal(data, np.round(data)):
        raise _fail(f"{path}: --dtype {code} is an integer type but the CSV has fractional values")
    t_first = float(times[0]) if times is not None else None
    return _array_source(data, code, rate, args.modality or "sensor", times, t_first, frames_per_chunk)


_SRT_TIME = re.compile(r"^\s*(\d+):(\d{2}):(\d{2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{2}):(\d{2})[,.](\d{1,3})(?:\s.*)?$")


def _srt_seconds(h: str, m: str, s: str, frac: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def _open_srt(path: Path, args: argparse.Namespace) -> Source:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(f"{path}: a subtitle file must be UTF-8") from None
    captions: list[tuple[float, float, str]] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        if lines and lines[0].strip().isdigit():
            lines = lines[1:]
        m = _SRT_TIME.match(lines[0]) if lines else None
        if m is None:
            raise _fail(f"{path}: caption {len(captions) + 1} has no 'HH:MM:SS,mmm --> HH:MM:SS,mmm' line")
        start, end = _srt_seconds(*m.groups()[:4]), _srt_seconds(*m.groups()[4:])
        body = "\n".join(line.strip() for line in lines[1:]).strip()
        if end < start:
            raise _fail(f"{path}: caption {len(captions) + 1} ends before it starts")
        if body:
            captions.append((start, end, body))
    if not captions:
        raise _fail(f"{path}: no captions")
    captions.sort(key=lambda c: c[0])

    def blocks() -> Iterator[tuple[str, float, float | None]]:
        # caption times count from the start of the media (t0), like a sound file's samples
        for start, end, body in captions:
            yield body, start, end - start

    return Source("text", 0.0, (), "utf8", len(captions), None, blocks)


def open_source(args: argparse.Namespace) -> Source:
    path = Path(args.file)
    if not path.is_file():
        raise _fail(f"{path}: no such file")

    def frames_per_chunk(rate: float) -> int:
        if not (math.isfinite(rate) and rate > 0):
            raise _fail(f"rate {rate} Hz: give a positive --rate-hz")
        return max(1, round(rate * args.chunk_ms / 1000.0))

    suffix = path.suffix.lower()
    if suffix == ".srt":
        return _open_srt(path, args)
    if suffix in SOUND_SUFFIXES:
        return _open_sound(path, args, frames_per_chunk)
    if suffix == ".npy":
        return _open_npy(path, args, frames_per_chunk)
    if suffix == ".csv":
        return _open_csv(path, args, frames_per_chunk)
    raise _fail(
        f"{path}: unsupported file type {suffix or '(none)'!r}; warpsync pub reads "
        f"{', '.join(sorted(SOUND_SUFFIXES))} (sound), .csv (numeric columns), .npy and .srt (captions)"
    )


def _run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.chunk_ms) and args.chunk_ms > 0):
        raise _fail(f"--chunk-ms must be > 0, got {args.chunk_ms}")
    src = open_source(args)
    endpoint = args.endpoint or config.load(args.config).control.endpoint
    endpoint = resolve_endpoint(endpoint, "tcp://127.0.0.1:0")
    stop = threading.Event()
    previous = stop_on_signals(stop)
    try:
        t_start_host = time.time()
        if args.t0 is not None:
            t0 = args.t0
        elif src.t_first_s is not None:
            t0 = src.t_first_s
        else:
            t0 = t_start_host
        with Publisher(
            args.stream,
            modality=src.modality,
            rate_hz=src.rate_hz,
            shape=src.shape,
            dtype=src.dtype,
            units=args.units,
            clock=args.clock,
            session=args.session,
            control=endpoint,
            timeout_s=args.timeout_s,
            send_timeout_s=args.send_timeout_s,
        ) as pub:
            start = time.monotonic()
            for block, t_rel, duration_s in src.blocks():
                if not args.as_fast_as_possible:
                    delay = start + t_rel - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                if stop.is_set():
                    break
                pub.send(block, t0 + t_rel, duration_s)
            ack = pub.close(timeout_s=args.timeout_s)
        elapsed = time.monotonic() - start
        state = "interrupted" if stop.is_set() else "done"
        print(
            f"warpsync pub: {state}: stream {pub.stream!r}: sent {pub.chunks_sent} chunks, {pub.samples_sent} of "
            f"{src.n_samples} samples in {elapsed:.2f} s (seq {pub.resume_seq + 1}..{pub.last_seq}); "
            f"service acknowledged; stream totals: {ack.received} accepted, {ack.rejected} rejected",
            flush=True,
        )
        return 0
    finally:
        restore_signals(previous)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pub",
        help="publish a .wav/.flac/.csv/.npy/.srt file to the service as one stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="sound file (.wav .flac .ogg .aiff), .csv (numeric columns), .npy or .srt (captions)")
    p.add_argument("--stream", required=True, help="stream id (1-128 of [A-Za-z0-9_.:/-])")
    p.add_argument("--endpoint", help="control endpoint of the service (default: [control] endpoint of the config)")
    p.add_argument("--config", help="config file for the default endpoint (default: embedded defaults)")
    p.add_argument("--modality", choices=MODALITIES[:3], help="default: audio for sound files, sensor otherwise")
    p.add_argument("--rate-hz", type=float, help="nominal rate, Hz (default: from the file; required for .npy)")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="wire dtype (default: the file's, f8 for CSV)")
    p.add_argument("--units", default="", help="units of the values")
    p.add_argument("--clock", default="", help="device clock id (default: the stream id)")
    p.add_argument("--session", default="", help="session (rig) id (default: the service's default session)")
    p.add_argument(
        "--time-column", help=f"CSV column with device times in s (default: first of {', '.join(TIME_COLUMNS)})"
    )
    p.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length, ms (default 20)")
    p.add_argument("--as-fast-as-possible", action="store_true", help="do not pace chunks at real time")
    p.add_argument(
        "--t0", type=float, help="device time of the first sample, s (default: the CSV's first time, else now)"
    )
    p.add_argument("--timeout-s", type=float, default=5.0, help="control request and close timeout, s (default 5)")
    p.add_argument("--send-timeout-s", type=float, default=10.0, help="longest wait under backpressure per chunk, s")
    p.set_defaults(func=_run)
