"""The CTC trellis for a transcript: blank-separated tokens, with optional star (garbage) states.

States (`ext`) for words w1..wn, each a token sequence c1..ck:
    for each word: blank, [STAR], c1, blank, c2, ..., blank, ck       then the tail: blank, [STAR]
The STAR state emits the star column (index `n_classes` in the extended emissions): it absorbs audio that
is not in the transcript (speech before, between or after words); it can be skipped. A path starts in state
0 (virtual predecessor) and moves each frame by 0 (stay), 1, 2 or 3 states: by 2 or 3 only over skippable
states (blank, STAR) and never between two equal tokens (CTC's repeat rule). A path ends in any state after
which every state is skippable. The states of a transcript are a prefix of the states of any extension of
it (the tail is the start of the next word's segment), which the streaming aligner relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NEG_INF = -np.inf


@dataclass(frozen=True)
class Trellis:
    ext: np.ndarray
    """(S,) int64 column of the extended emissions each state reads (blank, a token, or the star column)."""
    m2: np.ndarray
    """(S,) float64: 0 where a move of 2 states into `s` is allowed, -inf otherwise."""
    m3: np.ndarray
    """(S,) float64: 0 where a move of 3 states into `s` is allowed, -inf otherwise."""
    end_ok: np.ndarray
    """(S,) bool: a path may end in this state."""
    word_lo: np.ndarray
    """(W,) first state (first token) of each aligned word."""
    word_hi: np.ndarray
    """(W,) last state (last token) of each aligned word."""
    skippable: np.ndarray
    """(S,) bool: blank or STAR."""

    @property
    def n_states(self) -> int:
        return int(self.ext.shape[0])

    @property
    def max_step(self) -> int:
        return 3 if np.isfinite(self.m3).any() else 2


def word_segment(tokens: Sequence[int], blank: int, star_col: int | None) -> list[int]:
    seg = [blank] + ([star_col] if star_col is not None else [])
    for i, t in enumerate(tokens):
        if i:
            seg.append(blank)
        seg.append(int(t))
    return seg


def build_trellis(words: Sequence[Sequence[int]], blank: int, star_col: int | None) -> Trellis:
    """Trellis for `words` (token ids; empty words are skipped by the caller). `star_col` is the column of
    the star token in the extended emissions, or None for a plain CTC trellis."""
    ext: list[int] = []
    lo: list[int] = []
    hi: list[int] = []
    for toks in words:
        seg = word_segment(toks, blank, star_col)
        base = len(ext)
        ext.extend(seg)
        lo.append(base + (2 if star_col is not None else 1))
        hi.append(len(ext) - 1)
    ext.extend([blank] + ([star_col] if star_col is not None else []))
    return finish_trellis(
        np.asarray(ext, np.int64), blank, star_col, np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    )


def plain_trellis(targets: np.ndarray, blank: int) -> Trellis:
    """`build_trellis([targets], blank, None)` built with array operations: the plain CTC trellis of one token
    sequence (blank, t1, blank, t2, ..., blank, tL, blank), for `forced_align`."""
    tg = np.asarray(targets, np.int64).reshape(-1)
    L = tg.shape[0]
    if L == 0:
        return build_trellis([], blank, None)
    ext = np.full(2 * L + 1, blank, np.int64)
    ext[1::2] = tg
    return finish_trellis(ext, blank, None, np.array([1], np.int64), np.array([2 * L - 1], np.int64))


def finish_trellis(ext: np.ndarray, blank: int, star_col: int | None, lo: np.ndarray, hi: np.ndarray) -> Trellis:
    S = len(ext)
    skip = (ext == blank) | ((ext == star_col) if star_col is not None else np.zeros(S, bool))
    m2 = np.full(S, NEG_INF)
    m3 = np.full(S, NEG_INF)
    if S > 2:
        ok2 = skip[1:-1] & (ext[2:] != ext[:-2])
        m2[2:][ok2] = 0.0
    if S > 3:
        ok3 = skip[2:-1] & skip[1:-2] & (ext[3:] != ext[:-3])
        m3[3:][ok3] = 0.0
    # may end in s iff every state after s is skippable
    after_all_skip = np.ones(S, bool)
    if S > 1:
        after_all_skip[:-1] = np.flip(np.cumprod(np.flip(skip[1:])).astype(bool))
    return Trellis(ext, m2, m3, after_all_skip, lo, hi, skip)


def min_frames(trellis: Trellis) -> int:
    """Fewest frames a complete path needs (a bound used to reject audio too short for its transcript)."""
    need = 0
    e = trellis.ext
    for lo, hi in zip(trellis.word_lo, trellis.word_hi):
        toks = e[lo : hi + 1 : 2]
        need += len(toks) + int(np.sum(toks[1:] == toks[:-1]))
    # equal tokens across a word boundary need a blank too
    for a, b in zip(trellis.word_hi[:-1], trellis.word_lo[1:]):
        need += int(e[a] == e[b])
    return need
