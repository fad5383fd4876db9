"""Transcript → words → character tokens for the CTC model.

A transcript is split on whitespace into *words* (kept as written, for display). Each word is normalized
to the model's alphabet: Unicode compatibility-folded, lower-cased, accents stripped, digits spelled out
("42" → "forty two"), every character outside the vocabulary dropped. A word whose normalized form is empty
(punctuation, symbols) has no tokens and is not aligned (`Word.tokens == ()`); it keeps its index.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell_number(n: int) -> str:
    """English words for 0 <= n < 10**12 (larger numbers are read digit by digit)."""
    if n < 0:
        return "minus " + spell_number(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spell_number(rest))
    for div, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= div:
            if n >= 1000 * div:
                break
            rest = n % div
            return spell_number(n // div) + " " + name + ("" if rest == 0 else " " + spell_number(rest))
    return " ".join(_ONES[int(d)] for d in str(n))


_NUM = re.compile(r"\d+")


@dataclass(frozen=True)
class Word:
    index: int
    """Position of the word in the transcript (0-based, counting every whitespace-separated word)."""
    text: str
    """The word as written."""
    tokens: tuple[int, ...]
    """Token ids of the normalized word; empty when nothing in it can be spoken by the model."""


@dataclass(frozen=True)
class Vocabulary:
    """The model's output alphabet: `tokens[blank]` is the CTC blank; the others are single characters."""

    tokens: tuple[str, ...]
    blank: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.blank < len(self.tokens):
            raise ModelError(f"vocabulary blank index {self.blank} is outside its {len(self.tokens)} tokens")
        if len(set(self.tokens)) != len(self.tokens):
            raise ModelError("vocabulary has duplicate tokens; every token must be unique")

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens) if i != self.blank}

    def normalize(self, word: str) -> str:
        s = unicodedata.normalize("NFKD", word)
        s = "".join(c for c in s if not unicodedata.combining(c)).lower().replace("’", "'")
        s = _NUM.sub(lambda m: " " + spell_number(int(m.group())) + " ", s)
        idx = self.index
        return "".join(c for c in s if c in idx)

    def encode_word(self, word: str) -> tuple[int, ...]:
        idx = self.index
        return tuple(idx[c] for c in self.normalize(word))

    def words(self, text: str, first_index: int = 0) -> list[Word]:
        return [Word(first_index + i, w, self.encode_word(w)) for i, w in enumerate(text.split())]


DEFAULT_VOCAB = Vocabulary(tuple(["<blank>", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]), 0)


def load_vocabulary(path: str | Path) -> tuple[Vocabulary, dict]:
    """Read a vocabulary JSON: {"tokens": [...], "blank": 0, "sample_rate_hz": 16000, "hop_samples": 160,
    "context_frames": [left, right]}; returns the vocabulary and the whole mapping."""
    p = Path(path)
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"vocabulary file {p} not found: put <model>.vocab.json beside the model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read vocabulary {p}: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("tokens"), list):
        raise ModelError(f"vocabulary {p} must be a JSON object with a 'tokens' list")
    toks = meta["tokens"]
    if not all(isinstance(t, str) for t in toks) or len(toks) < 2:
        raise ModelError(f"vocabulary {p}: 'tokens' must be a list of at least two strings")
    return Vocabulary(tuple(toks), int(meta.get("blank", 0))), meta
