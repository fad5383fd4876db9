"""Training recipe for the shipped CTC model (`warpsync speech train DATA_DIR --out MODEL.pt`).

Data: `train.npz` made by `tools/speech/make_dataset.py` (espeak-ng speech with truth word spans). Loss: CTC
over the character tokens of the transcript plus a frame-level term on the blank posterior — frames inside
a spoken word are pushed away from blank, frames in pauses toward it — so that the model's non-blank
emissions cover each word's whole extent instead of a single spike: word boundaries then come out of the
CTC Viterbi path directly — plus, optionally (`word_weight`), a word-level CTC term: each word's tokens over
only its own truth frames, which pins where the path moves from one word to the next when words are run
together without a pause. The result is still a plain CTC model (any CTC aligner can use it). Seeded; run
with a fixed data file, seed and thread count for the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from .model import ConvCTC, export_torchscript
from .tokenizer import DEFAULT_VOCAB

log = logging.getLogger(__name__)

HOP = 160
SR = 16000


def _load(path: Path):
    with np.load(path) as npz:
        d = {k: npz[k] for k in npz.files}  # each access of an NpzFile member decompresses it again
    texts = json.loads(str(d["texts"]))
    off, woff = d["offsets"], d["word_offsets"]
    audio, w_start, w_end = d["audio"], d["word_start_s"], d["word_end_s"]
    utts = []
    for i, text in enumerate(texts):
        wave = audio[off[i] : off[i + 1]].astype(np.float32) / 32768.0
        words = DEFAULT_VOCAB.words(text)
        toks = [t for w in words for t in w.tokens]
        st, en = w_start[woff[i] : woff[i + 1]], w_end[woff[i] : woff[i + 1]]
        T = 1 + len(wave) // HOP
        utts.append(
            (
                wave,
                np.array(toks, np.int64),
                _frame_labels(len(wave), st, en),
                _word_segments(T, [w.tokens for w in words], st, en),
            )
        )
    return utts


def _groups(start_s: np.ndarray, end_s: np.ndarray):
    """(first word, last word, start_s, end_s) of each run of words espeak-ng spoke as one (NaN inner
    boundaries); a group with an unknown outer edge has NaN there."""
    i, n = 0, len(start_s)
    while i < n:
        j = i
        while j < n - 1 and np.isnan(end_s[j]):
            j += 1
        yield i, j, start_s[i], end_s[j]
        i = j + 1


def _frame_range(n_frames: int, a_s: float, b_s: float) -> tuple[int, int]:
    """Frames assigned to the span [a_s, b_s): those nearest to it, i.e. t with t*hop in [a - hop/2, b - hop/2).
    The aligner reports a word on frames [f, g) as [f*hop, g*hop), so this labelling makes the ideal frame
    path round each boundary to the nearest frame (no half-frame bias)."""
    hop_s = HOP / SR
    f = max(0, math.ceil((a_s - hop_s / 2) / hop_s - 1e-9))
    g = min(n_frames, math.ceil((b_s - hop_s / 2) / hop_s - 1e-9))
    return f, g


def _frame_labels(n_samples: int, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Per frame: 1 inside a word, 0 in a pause, -1 unknown. Words merged by espeak (NaN inner boundary)
    count as one span."""
    T = 1 + n_samples // HOP
    lab = np.zeros(T, np.int8)
    for _, _, a, b in _groups(start_s, end_s):
        if not (np.isnan(a) or np.isnan(b)):
            f, g = _frame_range(T, a, b)
            lab[f:g] = 1
    return lab


def _word_segments(n_frames: int, tokens, start_s: np.ndarray, end_s: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(first frame, end frame, tokens) of each word group with known edges: the word-level CTC term asks
    that each word's tokens be emitted inside its own truth frames, which pins where the path moves from
    one word to the next when words run together without a pause (most boundaries)."""
    out = []
    for i, j, a, b in _groups(start_s, end_s):
        if np.isnan(a) or np.isnan(b):
            continue
        tk = [t for k in range(i, j + 1) for t in tokens[k]]
        f, g = _frame_range(n_frames, a, b)
        if tk and g - f >= len(tk):
            out.append((f, g, np.array(tk, np.int64)))
    return out


def train(
    data_dir: Path,
    out: Path,
    epochs: int = 2,
    seed: int = 0,
    batch_s: float = 32.0,
    lr: float = 2e-3,
    channels: int = 96,
    blank_weight: float = 1.5,
    max_minutes: float = 0.0,
    init: Path | None = None,
    threads: int = 1,
    word_weight: float = 0.0,
) -> dict:
    """Train and export `out` (+ vocabulary JSON). `init` warm-starts from an exported model of the same
    shape (the shipped weights: a first run of 2 epochs, a second of 2 epochs from it with lr 1e-3 and
    blank_weight 3.0, a third of 2 epochs from that adding word_weight 1.0 on 2 threads; docs/speech.md). The model is exported to `out` after every epoch
    (a checkpoint to poll or resume from with `init`). `threads`: torch CPU threads (results are
    reproducible for a fixed thread count). `word_weight`: weight of the word-level CTC term (each word's
    tokens inside its own truth frames; 0 disables it)."""
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    utts = _load(Path(data_dir) / "train.npz")
    model = ConvCTC(len(DEFAULT_VOCAB.tokens), channels=channels)
    if init is not None:
        if Path(init).suffix == ".ckpt":
            model.load_state_dict(torch.load(str(init), map_location="cpu"))
        else:
            model.load_state_dict(torch.jit.load(str(init), map_location="cpu").state_dict())
    else:
        with torch.no_grad():  # global feature normalisation from 200 utterances
            feats = torch.cat([model.features(torch.from_numpy(u[0])[None])[0] for u in utts[:200]])
            model.feat_mean.copy_(feats.mean(0))
            model.feat_std.copy_(feats.std(0) + 1e-3)
    order = np.argsort([len(u[0]) for u in utts])
    batches, cur, cur_s = [], [], 0.0
    for i in order:
        dur = len(utts[i][0]) / SR
        if cur and (cur_s + dur > batch_s):
            batches.append(cur)
            cur, cur_s = [], 0.0
        cur.append(i)
        cur_s += dur
    if cur:
        batches.append(cur)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    total = epochs * len(batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    ctc = torch.nn.CTCLoss(blank=DEFAULT_VOCAB.blank, zero_infinity=True)
    t0 = time.monotonic()
    step = 0
    stats = {}
    for ep in range(epochs):
        model.train()
        tot = [0.0, 0.0, 0, 0.0]
        for bi in rng.permutation(len(batches)):
            idx = batches[bi]
            n = max(len(utts[i][0]) for i in idx)
            wave = torch.zeros(len(idx), n)
            for k, i in enumerate(idx):
                wave[k, : len(utts[i][0])] = torch.from_numpy(utts[i][0])
            lp = model(wave)  # (B, T, C)
            in_len = torch.tensor([1 + len(utts[i][0]) // HOP for i in idx])
            tg = [torch.from_numpy(utts[i][1]) for i in idx]
            tg_len = torch.tensor([len(t) for t in tg])
            loss_ctc = ctc(lp.transpose(0, 1), torch.cat(tg), in_len, tg_len)
            lab = torch.full(lp.shape[:2], -1, dtype=torch.int8)
            for k, i in enumerate(idx):
                lab[k, : len(utts[i][2])] = torch.from_numpy(utts[i][2])
            pb = lp[..., DEFAULT_VOCAB.blank].clamp(max=-1e-6)
            inside, pause = lab == 1, lab == 0
            nll = torch.where(inside, -torch.log1p(-torch.exp(pb)), -pb)
            mask = (inside | pause).float()
            loss_blank = (nll * mask).sum() / mask.sum().clamp(min=1)
            loss = loss_ctc + blank_weight * loss_blank
            if word_weight > 0:
                loss_word = _word_ctc(ctc, lp, [utts[i][3] for i in idx])
                loss = loss + word_weight * loss_word
                tot[3] += float(loss_word.detach())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            tot[0] += float(loss_ctc.detach())
            tot[1] += float(loss_blank.detach())
            tot[2] += 1
            if step % 50 == 0:
                log.info(
                    "step %d/%d: ctc %.3f blank %.3f word %.3f (%.0f s)",
                    step,
                    total,
                    tot[0] / tot[2],
                    tot[1] / tot[2],
                    tot[3] / tot[2],
                    time.monotonic() - t0,
                )
            if max_minutes and time.monotonic() - t0 > max_minutes * 60:
                break
        stats = {
            "epoch": ep + 1,
            "ctc": tot[0] / tot[2],
            "blank": tot[1] / tot[2],
            "word": tot[3] / tot[2],
            "elapsed_s": time.monotonic() - t0,
        }
        log.info(
            "epoch %d: ctc %.3f blank %.3f word %.3f (%.0f s)",
            ep + 1,
            stats["ctc"],
            stats["blank"],
            stats["word"],
            stats["elapsed_s"],
        )
        _export(model, out)
        if max_minutes and time.monotonic() - t0 > max_minutes * 60:
            log.warning("stopping at the %.0f-minute limit", max_minutes)
            break
    _export(model, out)
    return stats


def _word_ctc(ctc: torch.nn.CTCLoss, lp: torch.Tensor, segs_per_utt) -> torch.Tensor:
    """CTC loss of every word segment on its own frames, batched: segments are gathered from `lp` (B, T, C)
    into a padded (L, N, C) tensor."""
    B, T, C = lp.shape
    segs = [(b, f, g, tk) for b, segs in enumerate(segs_per_utt) for f, g, tk in segs]
    if not segs:
        return lp.sum() * 0.0
    L = max(g - f for _, f, g, _ in segs)
    ar = torch.arange(L)
    base = torch.tensor([b * T + f for b, f, _, _ in segs])
    lens = torch.tensor([g - f for _, f, g, _ in segs])
    idx = (base[:, None] + torch.minimum(ar[None, :], lens[:, None] - 1)).reshape(-1)
    x = lp.reshape(B * T, C)[idx].reshape(len(segs), L, C).transpose(0, 1)
    tg = torch.from_numpy(np.concatenate([tk for *_, tk in segs]))
    tg_len = torch.tensor([len(tk) for *_, tk in segs])
    return ctc(x, tg, lens, tg_len)


def _export(model: ConvCTC, out: Path) -> None:
    """Write the weights (`<out>.ckpt`, a state dict `init` accepts) and the TorchScript export."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out.with_suffix(".ckpt"))
    export_torchscript(model, DEFAULT_VOCAB, out)
    model.train()
