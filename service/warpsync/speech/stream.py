"""Streaming forced alignment: audio frames and transcript text arrive separately, in any interleaving.

The aligner keeps a *window*: the frames since the last commit point and the trellis states from the
state the path was in at that point. On every update it runs the Viterbi recursion over the window (no end
condition: the utterance is not over) and traces back every surviving state at the newest frame (those
within `beam` of the best). Where all of those paths pass through one (frame, state), everything before it
is decided — the same as the offline best path would decide, up to the beam — so the words whose last
token lies before that point are committed, and the window is re-based there (the path's state becomes the
new virtual start). If no such point appears within `horizon_frames`, the best path is committed up to the
middle of the horizon (a forced commit, counted). Frames on which the path sits after the last word known
so far are not committed while more text may come (the text may lag the audio), up to `max_window_frames`.
Memory is bounded by the window: O(window frames x window states), never the whole recording.

Times: frame f is at `f * hop_s` on the audio stream's own time axis (offset by `t0_s`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import AlignmentError
from . import kernels
from .align import WordSpan, viterbi, with_star, word_occupancy
from .calibration import BoundaryCalibration
from .tokenizer import Vocabulary, Word
from .trellis import Trellis, finish_trellis, word_segment

log = logging.getLogger(__name__)


@dataclass
class StreamStats:
    frames: int = 0
    words_received: int = 0
    words_committed: int = 0
    forced_commits: int = 0
    dropped_frames: int = 0
    """Frames given up to the star state because text lagged more than `max_window_frames`."""
    window_frames: int = 0
    window_states: int = 0
    unaligned_words: list = field(default_factory=list)


class StreamingAligner:
    def __init__(
        self,
        vocab: Vocabulary,
        n_classes: int,
        hop_s: float,
        *,
        star: bool = True,
        star_penalty: float = 1.5,
        beam: float = 15.0,
        horizon_frames: int = 300,
        max_window_frames: int = 6000,
        t0_s: float = 0.0,
        confidence: bool = True,
        calibration: BoundaryCalibration | None = None,
    ):
        """`calibration`: boundary shifts by kind, applied to seconds exactly as `align.align_words` does."""
        if not hop_s > 0:
            raise AlignmentError(f"hop_s must be > 0 seconds, got {hop_s}")
        if horizon_frames < 2 or max_window_frames < horizon_frames:
            raise AlignmentError("need 2 <= horizon_frames <= max_window_frames")
        self.vocab = vocab
        self.blank = vocab.blank
        self.C = n_classes
        self.hop_s = hop_s
        self.star_col = n_classes if star else None
        self.star_penalty = star_penalty
        self.beam = beam
        self.horizon = horizon_frames
        self.max_window = max_window_frames
        self.t0_s = t0_s
        self.confidence = confidence
        self.calibration = calibration or BoundaryCalibration()
        self._prev_end: int | None = None  # end frame (absolute) of the last word published
        self._prev_end_s: float | None = None  # its end, seconds from frame 0 (before t0_s)
        self.stats = StreamStats()
        self._next_word_index = 0
        self._pending_text = ""
        # trellis of the window: global state ids from self.s0; ext holds states s0 .. (end of known words)
        self.s0 = 0
        self.ext: list[int] = []
        self.words: list[tuple[Word, int, int]] = []  # (word, lo, hi) global states, uncommitted words
        self.f0 = 0  # absolute frame of window row 0
        self.em = np.zeros((0, n_classes + (1 if star else 0)))
        self._first: dict[int, int] = {}  # word index -> first frame (absolute), once decided
        self._match: dict[int, float] = {}  # word index -> sum of path-label posteriors on decided frames
        self._out: list[WordSpan] = []
        self.text_closed = False
        self.finished = False
        self._ext_total = 0  # global index of the next state to append (= len of global ext)
        self._append_tail_only()

    # ---- input ---------------------------------------------------------------------------------------
    def _append_tail_only(self) -> None:
        pass  # the tail (blank [STAR]) is added virtually in _window_trellis

    def add_text(self, text: str) -> None:
        """Append transcript text. Words are whitespace-separated; a word cut across two calls is joined
        (text is buffered up to the last whitespace until more text comes or `close_text`)."""
        if self.finished:
            raise AlignmentError("the aligner is finished: text arrived after the end of the stream")
        buf = self._pending_text + text
        if buf and not buf[-1].isspace():
            cut = max(buf.rfind(" "), buf.rfind("\n"), buf.rfind("\t"))
            self._pending_text = buf[cut + 1 :]
            buf = buf[: cut + 1]
        else:
            self._pending_text = ""
        self._add_words(buf)

    def _add_words(self, text: str) -> None:
        for w in self.vocab.words(text, self._next_word_index):
            self._next_word_index += 1
            self.stats.words_received += 1
            if not w.tokens:
                continue
            seg = word_segment(w.tokens, self.blank, self.star_col)
            base = self._ext_total
            self.ext.extend(seg)
            self._ext_total += len(seg)
            lo = base + (2 if self.star_col is not None else 1)
            self.words.append((w, lo, self._ext_total - 1))

    def close_text(self) -> None:
        if self._pending_text:
            self._add_words(self._pending_text)
            self._pending_text = ""
        self.text_closed = True

    def add_frames(self, log_probs: np.ndarray) -> list[WordSpan]:
        """Append emission frames (n, C) log-probabilities; returns the words committed by them."""
        if self.finished:
            raise AlignmentError("the aligner is finished: audio arrived after the end of the stream")
        lp = np.asarray(log_probs, np.float64)
        if lp.ndim != 2 or lp.shape[1] != self.C:
            raise AlignmentError(f"emissions must be (frames, {self.C}), got {lp.shape}")
        if lp.shape[0]:
            if self.star_col is not None:
                lp = with_star(lp, self.blank, self.star_penalty)
            self.em = np.concatenate([self.em, lp])
            self.stats.frames += lp.shape[0]
        return self.update()

    # ---- the window trellis ----------------------------------------------------------------------------
    def _window_trellis(self, end_ok_all: bool) -> Trellis:
        tail = [self.blank] + ([self.star_col] if self.star_col is not None else [])
        ext = np.asarray(self.ext + tail, np.int64)
        lo = np.asarray([w[1] - self.s0 for w in self.words], np.int64)
        hi = np.asarray([w[2] - self.s0 for w in self.words], np.int64)
        tr = finish_trellis(ext, self.blank, self.star_col, lo, hi)
        if end_ok_all:
            tr = Trellis(tr.ext, tr.m2, tr.m3, np.ones(len(ext), bool), tr.word_lo, tr.word_hi, tr.skippable)
        return tr

    def _tail_start(self) -> int:
        """Window state index of the first tail state (after the last known word)."""
        return len(self.ext)

    # ---- commits ---------------------------------------------------------------------------------------
    def update(self) -> list[WordSpan]:
        W = self.em.shape[0]
        self.stats.window_frames = W
        self.stats.window_states = len(self.ext) + 2
        if W == 0 or self.finished:
            return self._take()
        tr = self._window_trellis(False)
        S = tr.n_states
        S_w = min(S, 3 * W + 4)  # states reachable in W frames
        ext, m2, m3 = tr.ext[:S_w], tr.m2[:S_w], tr.m3[:S_w]
        prev = np.full(S_w, -np.inf)
        prev[0] = 0.0
        bp = np.empty((W, S_w), np.int8)
        more_text = not self.text_closed
        n_tail = 3 if self.star_col is not None else 2
        tail_lo = S - n_tail if self.words else 0
        rowmax = np.empty(W)
        tails = np.empty((W, n_tail))
        kernels._viterbi_block(self.em, ext, m2, m3, prev, 0, W, 0, tr.max_step, W, bp, True, rowmax, tails, tail_lo)
        best = prev.max()
        live = prev >= best - self.beam
        if more_text:
            inject = tails >= (rowmax - self.beam)[:, None]
        else:
            inject = np.zeros((W, n_tail), bool)
        r, s = kernels._survivor_merge(bp, live, 0, inject, tail_lo)
        if r >= 0:
            path = np.empty(r + 1, np.int64)
            kernels._traceback_block(bp, 0, r + 1, s, path)
            self._commit(path, tr)
        if self.em.shape[0] > self.horizon:
            # no convergence within the horizon: commit the best path up to the middle of the horizon
            keep = self.horizon // 2
            W2 = self.em.shape[0]
            if W2 == W:  # nothing committed above
                path = np.empty(W, np.int64)
                kernels._traceback_block(bp, 0, W, int(np.argmax(prev)), path)
                rr = W - 1 - keep
                if more_text:
                    # do not decide frames that text still to come may claim, unless the window is full
                    inj = np.nonzero(inject.any(axis=1))[0]
                    if inj.size and inj[0] <= rr:
                        if W > self.max_window:
                            self.stats.dropped_frames += int(rr + 1 - inj[0])
                        else:
                            rr = int(inj[0]) - 1
                if rr >= 0:
                    self.stats.forced_commits += 1
                    self._commit(path[: rr + 1], tr)
        return self._take()

    def _commit(self, path: np.ndarray, tr: Trellis) -> None:
        """`path` = decided states (window-relative) for window rows 0..len-1; emit finished words, rebase."""
        n = len(path)
        s_last = int(path[-1])
        done: list[tuple[int, Word, int, int]] = []  # (k, word, start frame abs, end frame abs)
        joined_after: list[bool] = []  # the next word starts on the word's end frame (b < n: path[b] known)
        post = np.exp(self.em[np.arange(n), tr.ext[path]])
        for k, (w, lo, hi) in enumerate(self.words):
            lo_r, hi_r = lo - self.s0, hi - self.s0
            if lo_r > s_last:
                break
            a = int(np.searchsorted(path, lo_r, side="left"))
            b = int(np.searchsorted(path, hi_r, side="right"))
            if w.index not in self._first:
                self._first[w.index] = self.f0 + a
            self._match[w.index] = self._match.get(w.index, 0.0) + float(post[a:b].sum())
            if hi_r >= s_last:
                break
            done.append((k, w, self._first.pop(w.index), self.f0 + b))
            joined_after.append(k + 1 < len(self.words) and b < n and int(path[b]) >= self.words[k + 1][1] - self.s0)
        conf = self._confidence(tr, done) if (self.confidence and done) else [float("nan")] * len(done)
        for (k, w, sf, ef), c, ja in zip(done, conf, joined_after):
            c = c * self._match.pop(w.index, 0.0) / max(1, ef - sf)
            self._emit(w, sf, ef, c, ja)
        self.words = self.words[len(done) :]
        self.stats.words_committed += len(done)
        # rebase: the decided state at the last row becomes the virtual start (the path was in it at the
        # frame before the new window's first)
        self.ext = self.ext[s_last:]
        self.s0 += s_last
        self.em = self.em[n:]
        self.f0 += n

    def _emit(self, w: Word, sf: int, ef: int, conf: float, joined_after: bool) -> None:
        """Publish one word on frames [sf, ef) (absolute); seconds with the boundary calibration, whose kind
        comes from the neighbouring words' frames exactly as offline."""
        joined_before = self._prev_end is not None and self._prev_end == sf
        a, b = self.calibration.span_s(sf, ef, joined_before, joined_after, self.hop_s, self._prev_end_s)
        self._out.append(WordSpan(w.index, w.text, self.t0_s + a, self.t0_s + b, conf, sf, ef))
        self._prev_end = ef
        self._prev_end_s = b

    def _confidence(self, tr: Trellis, done) -> list[float]:
        """Posterior occupancy of each committed word over its span, from one forward–backward pass over the
        current window (no end condition: the utterance goes on); frames of a span before the window were
        decided earlier and count as certain."""
        W = self.em.shape[0]
        S_w = min(tr.n_states, 3 * W + 4)
        ks = [k for k, _, _, _ in done]
        lo = np.asarray([tr.word_lo[k] for k in ks], np.int64)
        hi = np.asarray([tr.word_hi[k] for k in ks], np.int64)
        spans = [(max(0, sf - self.f0), ef - self.f0) for _, _, sf, ef in done]
        sub = Trellis(tr.ext[:S_w], tr.m2[:S_w], tr.m3[:S_w], np.ones(S_w, bool), lo, hi, tr.skippable[:S_w])
        if (hi >= S_w).any():
            return [1.0] * len(done)
        try:
            occ = word_occupancy(self.em, sub, spans)
        except AlignmentError:
            return [0.0] * len(done)
        out = []
        for (_, _, sf, ef), (a0, b), o in zip(done, spans, occ):
            decided = max(0, self.f0 - sf)
            out.append(float((o * max(0, b - a0) + decided) / max(1, ef - sf)))
        return out

    def _take(self) -> list[WordSpan]:
        out, self._out = self._out, []
        return out

    # ---- end ------------------------------------------------------------------------------------------
    def finish(self) -> list[WordSpan]:
        """End of audio (and of text: pending text is taken as complete). Aligns the rest of the window with
        the end condition, as the offline aligner does. Words that cannot be aligned (no audio left for
        them) are listed in `stats.unaligned_words`."""
        if self.finished:
            return []
        self.close_text()
        out = self.update()
        self.finished = True
        if not self.words:
            return out + self._take()
        W = self.em.shape[0]
        tr = self._window_trellis(False)
        try:
            states, _ = viterbi(self.em, tr)
        except AlignmentError as exc:
            log.warning("speech: %d words left without audio: %s", len(self.words), exc)
            self.stats.unaligned_words = [w.index for w, _, _ in self.words]
            self.words = []
            return out + self._take()
        self.text_closed = True
        # commit everything with the complete path; the tail never holds a word
        path = states
        self._commit_final(path, tr, W)
        return out + self._take()

    def _commit_final(self, path: np.ndarray, tr: Trellis, W: int) -> None:
        spans, match = [], []
        post = np.exp(self.em[np.arange(len(path)), tr.ext[path]])
        for k, (w, lo, hi) in enumerate(self.words):
            lo_r, hi_r = lo - self.s0, hi - self.s0
            a = int(np.searchsorted(path, lo_r, side="left"))
            b = int(np.searchsorted(path, hi_r, side="right"))
            start_f = self._first.pop(w.index, self.f0 + a)
            spans.append((w, start_f, self.f0 + b))
            match.append((self._match.pop(w.index, 0.0) + float(post[a:b].sum())) / max(1, self.f0 + b - start_f))
        conf = np.full(len(spans), np.nan)
        if self.confidence and spans:
            rel = [(max(0, s - self.f0), e - self.f0) for _, s, e in spans]
            try:
                conf = word_occupancy(self.em, tr, rel) * np.asarray(match)
            except AlignmentError:
                pass
        for i, ((w, s, e), c) in enumerate(zip(spans, conf)):
            self._emit(w, s, e, float(c), i + 1 < len(spans) and spans[i + 1][1] == e)
        self.stats.words_committed += len(spans)
        self.words = []
