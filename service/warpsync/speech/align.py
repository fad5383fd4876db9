"""Forced alignment of a transcript to CTC emissions: Viterbi path, word spans, confidences.

Public, validated layer over `kernels.py` (Numba, CPU) and `torch_backend.py` (torch, CPU or GPU; the same
results). Emissions are log-probabilities (T, C); accumulation is float64. Long inputs are aligned in
blocks: a first pass keeps the Viterbi scores every K frames (checkpoints), then each block is recomputed
with its int8 backpointers and traced back from its end, so memory is O(S * (T/K + K)) instead of O(S * T).

Frames and seconds: frame t stands for time t * hop_s; a word on frames [a, b) spans [a * hop_s, b * hop_s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import AlignmentError
from . import kernels
from .calibration import BoundaryCalibration
from .tokenizer import Word
from .trellis import Trellis, build_trellis, min_frames, plain_trellis

Backend = Literal["numba", "torch"]
DEFAULT_MAX_BP_BYTES = 256 * 2**20
_NO_ROW = np.zeros(0)
_NO_TAILS = np.zeros((0, 3))


@dataclass(frozen=True)
class WordSpan:
    index: int
    """Index of the word in the transcript."""
    text: str
    start_s: float
    """Start of the word, seconds on the audio's time axis (inclusive)."""
    end_s: float
    """End of the word, seconds (exclusive)."""
    confidence: float
    """In [0, 1]: (mean forward–backward posterior that the span's frames belong to this word) x (mean CTC
    posterior of the path's label on those frames): alignment certainty times acoustic match."""
    start_frame: int
    end_frame: int


def check_emissions(log_probs: np.ndarray, name: str = "log_probs") -> np.ndarray:
    lp = np.asarray(log_probs)
    if lp.ndim != 2:
        raise AlignmentError(f"{name} must be a (frames, classes) array, got shape {lp.shape}")
    if lp.shape[1] < 2:
        raise AlignmentError(f"{name} needs at least 2 classes (blank and one token), got {lp.shape[1]}")
    if not np.issubdtype(lp.dtype, np.floating):
        raise AlignmentError(f"{name} must be floating point log-probabilities, got dtype {lp.dtype}")
    lp = np.ascontiguousarray(lp, dtype=np.float64)
    # one pass without temporaries: the sum is NaN or +inf whenever an entry is (-inf entries, log 0, are
    # fine); only then (or when finite entries overflow the sum) look entry by entry
    with np.errstate(over="ignore", invalid="ignore"):
        total = lp.sum()
    if not total < np.inf and (np.isnan(lp).any() or np.isposinf(lp).any()):
        raise AlignmentError(f"{name} contains NaN or +inf: pass finite log-probabilities (log_softmax output)")
    return lp


def with_star(log_probs: np.ndarray, blank: int, star_penalty: float) -> np.ndarray:
    """Append the star column: the best log-probability of each frame (any class, blank included) minus
    `star_penalty` — a garbage state that fits any frame, at a fixed cost per frame."""
    lp = log_probs
    star = lp.max(axis=1) - star_penalty if lp.shape[0] else np.zeros(0)
    return np.ascontiguousarray(np.concatenate([lp, star[:, None]], axis=1))


def viterbi(
    em: np.ndarray,
    tr: Trellis,
    *,
    backend: Backend = "numba",
    device: str = "cpu",
    max_bp_bytes: int = DEFAULT_MAX_BP_BYTES,
) -> tuple[np.ndarray, float]:
    """Best complete path through the trellis: (states (T,) int64, total log-score)."""
    T, S = em.shape[0], tr.n_states
    if T == 0:
        raise AlignmentError("no audio frames to align: the audio is empty")
    need = min_frames(tr)
    if need > T:
        raise AlignmentError(
            f"the audio has {T} frames but the transcript needs at least {need}: the audio is too short for "
            "the text (check that they belong together)"
        )
    if backend == "torch":
        from .torch_backend import TorchTrellis

        return TorchTrellis(tr, device).viterbi(em, max_bp_bytes)
    if backend != "numba":
        raise AlignmentError(f"unknown alignment backend {backend!r}: use 'numba' or 'torch'")
    lo_end = int(np.argmax(tr.end_ok))
    step = tr.max_step
    block = max(1, min(T, max_bp_bytes // max(S, 1)))
    prev = np.full(S, -np.inf)
    prev[0] = 0.0  # virtual predecessor of frame 0
    path = np.empty(T, np.int64)
    nb = math.ceil(T / block)
    checkpoints = [prev.copy()]
    if nb > 1:
        empty = np.zeros((0, S), np.int8)
        for b in range(nb - 1):
            kernels._viterbi_block(
                em,
                tr.ext,
                tr.m2,
                tr.m3,
                prev,
                b * block,
                (b + 1) * block,
                lo_end,
                step,
                T,
                empty,
                False,
                _NO_ROW,
                _NO_TAILS,
                0,
            )
            checkpoints.append(prev.copy())
    bp = np.empty((min(block, T), S), np.int8)
    s_end = -1
    score = -np.inf
    for b in range(nb - 1, -1, -1):
        t0, t1 = b * block, min(T, (b + 1) * block)
        p = checkpoints[b].copy()
        kernels._viterbi_block(em, tr.ext, tr.m2, tr.m3, p, t0, t1, lo_end, step, T, bp, True, _NO_ROW, _NO_TAILS, 0)
        if s_end < 0:
            final = np.where(tr.end_ok, p, -np.inf)
            # ties: the highest end state (trailing blank/star before the last token)
            s_end = S - 1 - int(np.argmax(final[::-1]))
            score = float(final[s_end])
            if not np.isfinite(score):
                raise AlignmentError("no complete alignment path: the audio is too short for the transcript")
        s_end = kernels._traceback_block(bp, t0, t1, s_end, path)
    return path, score


def forced_align(
    log_probs: np.ndarray, targets: Sequence[int], *, blank: int = 0, backend: Backend = "numba", device: str = "cpu"
) -> tuple[np.ndarray, float]:
    """Plain CTC forced alignment (the contract of torchaudio.functional.forced_align for one utterance):
    returns the token label of every frame (blank where the path is on a blank) and the path's log-score."""
    lp = check_emissions(log_probs)
    C = lp.shape[1]
    tg = np.asarray(targets, dtype=np.int64).reshape(-1)
    if not 0 <= blank < C:
        raise AlignmentError(f"blank index {blank} is outside the {C} classes")
    if tg.size and (tg.min() < 0 or tg.max() >= C or (tg == blank).any()):
        raise AlignmentError(f"targets must be token ids in [0, {C}) other than the blank {blank}")
    tr = plain_trellis(tg, blank)
    states, score = viterbi(lp, tr, backend=backend, device=device)
    return tr.ext[states], score


def word_frames(states: np.ndarray, tr: Trellis) -> list[tuple[int, int]]:
    """[first, last + 1) frame of each word's token states along the path."""
    out = []
    T = len(states)
    for lo, hi in zip(tr.word_lo, tr.word_hi):
        a = int(np.searchsorted(states, lo, side="left"))
        b = int(np.searchsorted(states, hi, side="right"))
        out.append((a, max(b, a + 1) if a < T else a))
    return out


def path_match(em: np.ndarray, tr: Trellis, states: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """Mean CTC posterior of the path's label over each word's frames (how well the audio fits the text)."""
    p = np.exp(em[np.arange(len(states)), tr.ext[states]])
    return np.array([p[a:e].mean() if e > a else 0.0 for a, e in spans])


def word_occupancy(
    em: np.ndarray, tr: Trellis, spans: list[tuple[int, int]], max_bytes: int = DEFAULT_MAX_BP_BYTES
) -> np.ndarray:
    """Forward–backward posterior, for each word, that its span's frames are in the word's states (mean over
    the span). Blocked like `viterbi` (alpha checkpoints, one block of alpha and beta at a time)."""
    T, S = em.shape[0], tr.n_states
    W = len(spans)
    if W == 0:
        return np.zeros(0)
    block = max(1, min(T, max_bytes // (16 * max(S, 1))))
    nb = math.ceil(T / block)
    prev = np.full(S, -np.inf)
    prev[0] = 0.0
    cps = [prev.copy()]
    empty = np.zeros((0, S))
    for b in range(nb - 1):
        kernels._forward_block(em, tr.ext, tr.m2, tr.m3, prev, b * block, (b + 1) * block, empty, False)
        cps.append(prev.copy())
    frame_word = np.full(T, -1, np.int64)
    for w, (a, e) in enumerate(spans):
        frame_word[a:e] = w
    occ_sum = np.zeros(W)
    log_z = None
    beta_next = np.where(tr.end_ok, 0.0, -np.inf)
    alpha_blk = np.empty((block, S))
    beta_blk = np.empty((block, S))
    for b in range(nb - 1, -1, -1):
        t0, t1 = b * block, min(T, (b + 1) * block)
        p = cps[b].copy()
        kernels._forward_block(em, tr.ext, tr.m2, tr.m3, p, t0, t1, alpha_blk, True)
        if log_z is None:
            fin = np.where(tr.end_ok, p, -np.inf)
            m = fin.max()
            log_z = m + np.log(np.exp(fin - m).sum())
            if not np.isfinite(log_z):
                raise AlignmentError("no complete alignment path: the audio is too short for the transcript")
        n = t1 - t0
        # beta at frame t1-1: the last frame takes the end condition, others come from the block after
        if t1 == T:
            beta_blk[n - 1] = beta_next
            if n > 1:
                tmp = beta_next.copy()
                kernels._backward_block(em, tr.ext, tr.m2, tr.m3, tmp, t0, t1 - 1, beta_blk)
                beta_next = tmp
            else:
                beta_next = beta_next.copy()
        else:
            tmp = beta_next.copy()
            kernels._backward_block(em, tr.ext, tr.m2, tr.m3, tmp, t0, t1, beta_blk)
            beta_next = tmp
        fw = frame_word[t0:t1]
        rows = np.nonzero(fw >= 0)[0]
        if rows.size:
            g = alpha_blk[rows] + beta_blk[rows] - log_z
            cs = np.cumsum(np.exp(g), axis=1)
            ws = fw[rows]
            hi = cs[np.arange(rows.size), tr.word_hi[ws]]
            lo_idx = tr.word_lo[ws] - 1
            lo = np.where(lo_idx >= 0, cs[np.arange(rows.size), np.maximum(lo_idx, 0)], 0.0)
            np.add.at(occ_sum, ws, hi - lo)
    lengths = np.array([max(1, e - a) for a, e in spans], np.float64)
    return np.clip(occ_sum / lengths, 0.0, 1.0)


def align_words(
    log_probs: np.ndarray,
    words: Sequence[Word],
    hop_s: float,
    *,
    blank: int = 0,
    star: bool = True,
    star_penalty: float = 1.5,
    backend: Backend = "numba",
    device: str = "cpu",
    confidence: bool = True,
    offset_s: float = 0.0,
    calibration: BoundaryCalibration | None = None,
) -> list[WordSpan]:
    """Align `words` (from `Vocabulary.words`) to emissions; words without tokens are left out.
    `calibration` shifts the seconds of each boundary by its kind (see `calibration.py`; frames unchanged)."""
    lp = check_emissions(log_probs)
    if not hop_s > 0:
        raise AlignmentError(f"hop_s must be > 0 seconds, got {hop_s}")
    C = lp.shape[1]
    spoken = [w for w in words if w.tokens]
    for w in spoken:
        if min(w.tokens) < 0 or max(w.tokens) >= C or blank in w.tokens:
            raise AlignmentError(f"word {w.text!r} has token ids outside the model's {C} classes")
    em = with_star(lp, blank, star_penalty) if star else lp
    tr = build_trellis([w.tokens for w in spoken], blank, C if star else None)
    if not spoken:
        return []
    states, _ = viterbi(em, tr, backend=backend, device=device)
    spans = word_frames(states, tr)
    if confidence:
        conf = word_occupancy(em, tr, spans) * path_match(em, tr, states, spans)
    else:
        conf = np.full(len(spans), np.nan)
    cal = calibration or BoundaryCalibration()
    out = []
    prev_end = None
    for i, (w, (a, e), c) in enumerate(zip(spoken, spans, conf)):
        joined_before = i > 0 and spans[i - 1][1] == a
        joined_after = i + 1 < len(spans) and spans[i + 1][0] == e
        s0, prev_end = cal.span_s(a, e, joined_before, joined_after, hop_s, prev_end)
        out.append(WordSpan(w.index, w.text, offset_s + s0, offset_s + prev_end, float(c), a, e))
    return out
