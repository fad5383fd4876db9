"""A speaking source for the demo: a talker's microphone and a live captioner, on their own streams.

The talker reads recorded utterances in a loop with a pause between them; the microphone sends its audio in
fixed chunks as it is captured, and the captioner sends the words a few at a time, each group some time after
it was spoken (a live captioner lags the speech). The service's speech stage aligns the captions to the audio
word by word and publishes `speech.word`.

`talker_script` is pure: it returns the chunks in the order they leave the devices, each with its send time on
the scene clock. `publish_talker` is the I/O shell that paces them into a running service. The utterances
shipped in `assets/talker/` are espeak-ng speech with voices the speech model never heard in training
(tests/data/speech/SOURCES.md).

Streams (session `talk`, device clock `talker`): `talker` (audio, 16 kHz mono float32) and `captions` (text,
`meta.audio = "talker"`). Captions carry the device time at which they were sent.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets" / "talker"
SESSION = "talk"
AUDIO_STREAM = "talker"
TEXT_STREAM = "captions"


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray
    """Mono float32 samples."""
    text: str


@dataclass(frozen=True)
class TalkerChunk:
    at_s: float
    """Scene time at which the chunk leaves its device (seconds from the start)."""
    stream: str
    payload: np.ndarray | str
    """Audio samples (n, 1) float32, or caption text ending on a word boundary."""
    t_dev_s: float
    """Device time of the chunk's first sample (audio) or of the caption (text)."""


def load_utterances(directory: Path = ASSETS) -> tuple[list[Utterance], float]:
    """The utterances listed in `directory/talker.json` and their sample rate (all files must share it)."""
    import soundfile as sf

    entries = json.loads((directory / "talker.json").read_text())
    out, rate = [], None
    for e in entries:
        x, r = sf.read(directory / e["audio"], dtype="float32", always_2d=True)
        if rate is not None and r != rate:
            raise ValueError(f"{e['audio']}: {r} Hz, but the other utterances are {rate} Hz")
        rate = r
        out.append(Utterance(x.mean(axis=1).astype(np.float32), str(e["text"])))
    if not out:
        raise ValueError(f"no utterances in {directory / 'talker.json'}")
    return out, float(rate)


def _caption_groups(text: str, words_per_caption: int) -> list[tuple[str, float]]:
    """Groups of words and, for each, the fraction of the utterance's characters spoken by its end (where the
    captioner can send it: an estimate from text length, the captioner does not know word times)."""
    words = text.split()
    total = sum(len(w) for w in words) or 1
    out, done = [], 0
    for i in range(0, len(words), words_per_caption):
        group = words[i : i + words_per_caption]
        done += sum(len(w) for w in group)
        out.append((" ".join(group), done / total))
    return out


def talker_script(
    utterances: Sequence[Utterance],
    rate_hz: float,
    *,
    chunk_s: float = 0.1,
    gap_s: float = 1.5,
    caption_lag_s: float = 1.0,
    words_per_caption: int = 3,
    t_dev0_s: float = 1000.0,
    loops: int | None = None,
) -> Iterator[TalkerChunk]:
    """The talker's chunks in send order: `gap_s` of silence, an utterance, `gap_s`, the next, ... (`loops`
    times through the list, or forever). Audio chunks of `chunk_s` leave when their last sample is captured;
    each caption group leaves `caption_lag_s` after the estimated end of its words (never before the utterance
    began). Device time = scene time + `t_dev0_s`."""
    if not utterances:
        raise ValueError("the talker needs at least one utterance")
    if chunk_s <= 0 or gap_s < 0 or caption_lag_s < 0 or words_per_caption < 1:
        raise ValueError("chunk_s must be > 0, gap_s and caption_lag_s >= 0, words_per_caption >= 1")
    n_chunk = max(1, round(chunk_s * rate_hz))
    gap = np.zeros(round(gap_s * rate_hz), np.float32)

    def segments() -> Iterator[tuple[int, np.ndarray]]:
        """(utterance index or -1 for a pause, samples), from the start (each caller walks its own copy)."""
        n = len(utterances)
        order = itertools.cycle(range(n)) if loops is None else (k for _ in range(loops) for k in range(n))
        for k in order:
            yield -1, gap
            yield k, utterances[k].audio
        yield -1, gap  # a pause after the last utterance, so its captions arrive while audio still flows

    def audio() -> Iterator[tuple[float, int, TalkerChunk]]:
        pending = np.zeros(0, np.float32)
        pos = 0  # samples sent
        for _, seg in segments():
            pending = np.concatenate([pending, seg])
            while len(pending) >= n_chunk:
                x, pending = pending[:n_chunk], pending[n_chunk:]
                at = (pos + n_chunk) / rate_hz
                yield at, 0, TalkerChunk(at, AUDIO_STREAM, x.reshape(-1, 1), t_dev0_s + pos / rate_hz)
                pos += n_chunk
        if len(pending):
            at = (pos + len(pending)) / rate_hz
            yield at, 0, TalkerChunk(at, AUDIO_STREAM, pending.reshape(-1, 1), t_dev0_s + pos / rate_hz)

    def captions() -> Iterator[tuple[float, int, TalkerChunk]]:
        start = 0
        for k, seg in segments():
            if k >= 0:
                dur = len(seg) / rate_hz
                t_start = start / rate_hz
                for group, frac in _caption_groups(utterances[k].text, words_per_caption):
                    at = t_start + frac * dur + caption_lag_s
                    yield at, 1, TalkerChunk(at, TEXT_STREAM, group, t_dev0_s + at)
            start += len(seg)

    for _, _, chunk in heapq.merge(audio(), captions(), key=lambda e: (e[0], e[1])):
        yield chunk


def publish_talker(
    control_endpoint: str,
    stop: threading.Event,
    context: zmq.Context,
    *,
    realtime: bool = True,
    loops: int | None = None,
    timeout_s: float = 5.0,
    utterances: tuple[list[Utterance], float] | None = None,
) -> dict[str, int]:
    """Publish the talker into the service at `control_endpoint` until `stop` is set (or `loops` passes
    through the utterances); both streams are closed with an acknowledgement. Returns chunks sent per stream."""
    from warpsync_client import Publisher

    utts, rate = utterances or load_utterances()
    sent = {AUDIO_STREAM: 0, TEXT_STREAM: 0}
    common = {
        "clock": "talker",
        "session": SESSION,
        "control": control_endpoint,
        "context": context,
        "timeout_s": timeout_s,
        "send_timeout_s": timeout_s,
    }
    mic = Publisher(AUDIO_STREAM, modality="audio", rate_hz=rate, channels=1, dtype="f4", **common)
    try:
        cap = Publisher(TEXT_STREAM, modality="text", meta={"audio": AUDIO_STREAM}, **common)
    except BaseException:
        mic.close(timeout_s)
        raise
    t0 = time.monotonic()
    try:
        for c in talker_script(utts, rate, loops=loops):
            if realtime:
                wait = t0 + c.at_s - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    break
            elif stop.is_set():
                break
            (mic if c.stream == AUDIO_STREAM else cap).send(c.payload, c.t_dev_s)
            sent[c.stream] += 1
    finally:
        for pub in (cap, mic):
            try:
                pub.close(timeout_s)
            except Exception as exc:  # noqa: BLE001  close both; the caller sees what was sent
                log.warning("talker: closing %s failed: %s", pub, exc)
    return sent
