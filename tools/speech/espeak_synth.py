"""Synthesize English text with libespeak-ng and record exact word times (phoneme events).

Needs the Debian package `libespeak-ng1` (build-time only: the tests never import this module). Uses the
synthesis callback with `espeakINITIALIZE_PHONEME_EVENTS`: every WORD event gives the start of a word in
the audio (ms); every PHONEME event the start of a phoneme. A word's end is the start of the first pause
phoneme (`_`, `_:`, `_!` ...) after its last phoneme, or the start of the next word, or the end of the voiced
audio for the last word. Times are relative to the first sample of the returned audio.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INIT_PHONEME_EVENTS = 0x0001
INIT_DONT_EXIT = 0x8000
EV_LIST_TERMINATED, EV_WORD, EV_SENTENCE, EV_MARK, EV_PLAY, EV_END, EV_MSG_TERMINATED, EV_PHONEME = range(8)
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Utterance:
    audio: np.ndarray
    """float32 mono samples in [-1, 1]."""
    rate_hz: int
    words: list[tuple[int, float, float]]
    """(character offset in the text, start_s, end_s) for every word espeak-ng spoke on its own, [start, end)."""


class Espeak:
    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INIT_PHONEME_EVENTS | INIT_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self.rate_hz = rate
        self._pcm: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._cb = _CALLBACK(self._on_synth)
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_synth(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._pcm.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EV_LIST_TERMINATED:
            e = events[i]
            self._events.append((e.type, e.text_position, e.length, e.sample, bytes(e.id.string)))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate_wpm: int = 175, pitch: int = 50, range_: int = 50) -> Utterance:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(PARAM_RATE, rate_wpm, 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(PARAM_RANGE, range_, 0)
        self._pcm, self._events = [], []
        raw = text.encode("utf-8")
        buf = ctypes.create_string_buffer(raw)
        self.lib.espeak_Synth(buf, len(raw) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        pcm = np.concatenate(self._pcm) if self._pcm else np.zeros(0, np.int16)
        audio = pcm.astype(np.float32) / 32768.0
        return Utterance(audio, self.rate_hz, self._words(text, audio))

    def _words(self, text: str, audio: np.ndarray) -> list[tuple[int, float, float]]:
        """(character offset of the word in `text`, start_s, end_s) per WORD event. A word starts at its
        first phoneme and ends at the first pause phoneme after it, or where the next word starts."""
        sr = self.rate_hz
        words: list[list] = []  # [char offset, start_sample, end_sample or None, has_phoneme]
        last_sample = 0
        for typ, pos, length, sample, name in self._events:
            if typ == EV_WORD:
                words.append([pos - 1, sample, None, False])
            elif typ == EV_PHONEME and words:
                ph = name.split(b"\0", 1)[0]
                w = words[-1]
                if ph.startswith(b"_"):
                    if w[3] and w[2] is None:
                        w[2] = sample
                else:
                    if not w[3]:
                        w[1], w[3] = sample, True
                        if len(words) > 1 and words[-2][2] is None:
                            words[-2][2] = sample
                last_sample = sample
            elif typ in (EV_END, EV_MSG_TERMINATED):
                last_sample = max(last_sample, sample)
        if words and words[-1][2] is None:
            words[-1][2] = max(last_sample, words[-1][1])
        return [(p, s / sr, e / sr) for p, s, e, ok in words if ok and e is not None and e > s]
