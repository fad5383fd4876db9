"""The CTC acoustic model: waveform (16 kHz) → per-frame log-probabilities over the vocabulary.

Every model, the shipped one or a user's, is a TorchScript module `forward(wave: (B, N) float32) →
(B, T, C) log-probabilities` with `T = 1 + N // hop_samples` (frame `t` is centred on sample
`t * hop_samples`), described by a vocabulary JSON beside it (`<model>.vocab.json`): tokens, blank index,
sample rate, hop and the model's context in frames on each side (how many frames of audio to either side
a frame's output depends on; the windowed evaluation below needs it to give the same emissions in chunks
as in one piece).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from .calibration import BoundaryCalibration
from .tokenizer import Vocabulary, load_vocabulary

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
SHIPPED_MODEL = ASSETS / "ctc_conv.pt"


def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float = 20.0) -> np.ndarray:
    """HTK-mel triangular filters, shape (n_fft // 2 + 1, n_mels)."""

    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate_hz / 2, n_fft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(fmin_hz), hz2mel(sample_rate_hz / 2), n_mels + 2))
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    return fb.astype(np.float32)


class LogMel(nn.Module):
    """Log-mel frames, 25 ms Hann window, hop 10 ms, zero padding of half a window at both ends."""

    def __init__(self, sample_rate_hz: int = 16000, win: int = 400, hop: int = 160, n_fft: int = 512, n_mels: int = 80):
        super().__init__()
        self.win = win
        self.hop = hop
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(win, periodic=True))
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(sample_rate_hz, n_fft, n_mels)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        half = self.win // 2
        x = torch.nn.functional.pad(wave, (half, half))
        frames = x.unfold(-1, self.win, self.hop)[:, : wave.shape[-1] // self.hop + 1] * self.window
        spec = torch.fft.rfft(frames, n=self.n_fft)
        power = spec.real**2 + spec.imag**2
        return torch.log(power @ self.fb + 1e-6)  # (B, T, n_mels)


class _Block(nn.Module):
    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.norm = nn.LayerNorm(ch)
        self.conv = nn.Conv1d(ch, ch, 5, padding=2 * dilation, dilation=dilation)
        self.proj = nn.Conv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, ch, T)
        y = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.proj(torch.nn.functional.gelu(self.conv(y)))


class ConvCTC(nn.Module):
    """Log-mel → conv stem → dilated residual conv blocks → token log-probabilities. Non-causal with a
    finite context (`context_frames` on each side), so windowed evaluation equals whole-file evaluation."""

    DILATIONS = (1, 2, 4, 8, 1, 2)

    def __init__(self, n_tokens: int, channels: int = 128, n_mels: int = 80):
        super().__init__()
        self.features = LogMel(n_mels=n_mels)
        self.register_buffer("feat_mean", torch.zeros(n_mels))
        self.register_buffer("feat_std", torch.ones(n_mels))
        self.stem = nn.Conv1d(n_mels, channels, 5, padding=2)
        self.blocks = nn.ModuleList([_Block(channels, d) for d in self.DILATIONS])
        self.head = nn.Conv1d(channels, n_tokens, 1)

    @classmethod
    def context_frames(cls) -> int:
        stft = 2  # half a 400-sample window in 160-sample hops, rounded up
        return stft + 2 + sum(2 * d for d in cls.DILATIONS)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        f = (self.features(wave) - self.feat_mean) / self.feat_std
        x = torch.nn.functional.gelu(self.stem(f.transpose(1, 2)))
        for blk in self.blocks:
            x = blk(x)
        return torch.log_softmax(self.head(x).transpose(1, 2), dim=-1)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ModelError(f"speech device {spec!r} is not a torch device: use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"speech device {spec!r} asked for CUDA but torch sees no GPU: use auto or cpu")
    return dev


@dataclass
class AcousticModel:
    """A loaded TorchScript CTC model with its vocabulary and framing."""

    module: torch.jit.ScriptModule
    vocab: Vocabulary
    sample_rate_hz: int
    hop_samples: int
    context_frames: int
    device: torch.device
    calibration: BoundaryCalibration = field(default_factory=BoundaryCalibration)
    """Boundary shifts measured on training voices (`<model>.calib.json`; none when absent)."""

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.sample_rate_hz

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "auto") -> AcousticModel:
        """Load `path` (TorchScript), `<path minus .pt>.vocab.json` and, when present, the boundary
        calibration `<path minus .pt>.calib.json`; the shipped model when empty."""
        p = Path(path) if path else SHIPPED_MODEL
        vocab_path = p.with_suffix(".vocab.json")
        vocab, meta = load_vocabulary(vocab_path)
        dev = resolve_device(device)
        try:
            module = torch.jit.load(str(p), map_location=dev)
        except FileNotFoundError:
            raise ModelError(f"speech model {p} not found: set [speech] model to a TorchScript file") from None
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load speech model {p} as TorchScript: {exc}") from None
        module.eval()
        try:
            sr, hop, ctx = int(meta["sample_rate_hz"]), int(meta["hop_samples"]), int(meta["context_frames"])
        except (KeyError, TypeError, ValueError):
            raise ModelError(
                f"vocabulary {vocab_path} needs integer sample_rate_hz, hop_samples, context_frames"
            ) from None
        model = cls(module, vocab, sr, hop, ctx, dev, BoundaryCalibration.load(p.with_suffix(".calib.json")))
        probe = model._run(np.zeros(hop * 8, np.float32))
        if probe.shape[1] != len(vocab.tokens):
            raise ModelError(
                f"model {p} outputs {probe.shape[1]} classes but its vocabulary has {len(vocab.tokens)} tokens"
            )
        if probe.shape[0] != 9:
            raise ModelError(f"model {p} gave {probe.shape[0]} frames for 8 hops; expected 1 + N // hop_samples = 9")
        return model

    def _run(self, wave: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None].to(self.device)
            return self.module(x)[0].to("cpu", torch.float64).numpy()

    def emissions(self, wave: np.ndarray, block_frames: int = 3000) -> np.ndarray:
        """Log-probabilities (T, C) float64 for a whole 16 kHz mono signal, T = 1 + N // hop, evaluated in
        windows of `block_frames` with `context_frames` of overlap so memory stays bounded on long audio."""
        return WindowedEmissions(self, block_frames).run_all(wave)


class WindowedEmissions:
    """Incremental emissions: push samples, get the frames whose full context has arrived; `finish()` gives
    the rest (zero padding after the end, as in one-piece evaluation)."""

    def __init__(self, model: AcousticModel, block_frames: int = 3000, min_frames: int = 1):
        """`min_frames`: run the model only once this many new frames are ready (each run also recomputes
        2 x context_frames of overlap, so tiny steps cost more compute; larger steps add latency)."""
        self.m = model
        self.block = max(1, block_frames)
        self.min_frames = max(1, min_frames)
        self.hop = model.hop_samples
        self.ctx = model.context_frames
        self.buf = np.zeros(0, np.float32)  # samples from buf_start
        self.buf_start = 0  # absolute sample index of buf[0]
        self.n_samples = 0
        self.next_frame = 0

    def _eval(self, f0: int, f1: int, final: bool) -> np.ndarray:
        """Frames [f0, f1): run the model on samples [(f0-ctx)*hop, (f1+ctx)*hop) clipped to what exists."""
        a = max(0, (f0 - self.ctx) * self.hop)
        b = (f1 + self.ctx) * self.hop
        b = min(b, self.n_samples) if final else b
        seg = self.buf[a - self.buf_start : b - self.buf_start]
        out = self.m._run(seg)
        k0 = f0 - a // self.hop
        return out[k0 : k0 + (f1 - f0)]

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.buf = np.concatenate([self.buf, samples])
        self.n_samples += len(samples)
        # frame t is complete when samples up to (t + ctx + 1) * hop exist (incl. its right context)
        ready = self.n_samples // self.hop - self.ctx
        outs = []
        if ready - self.next_frame < self.min_frames:
            ready = self.next_frame
        while ready - self.next_frame > 0:
            f1 = min(ready, self.next_frame + self.block)
            outs.append(self._eval(self.next_frame, f1, False))
            self.next_frame = f1
        self._trim()
        return np.concatenate(outs) if outs else np.zeros((0, len(self.m.vocab.tokens)))

    def finish(self) -> np.ndarray:
        total = 1 + self.n_samples // self.hop
        outs = []
        while self.next_frame < total:
            f1 = min(total, self.next_frame + self.block)
            outs.append(self._eval(self.next_frame, f1, True))
            self.next_frame = f1
        return np.concatenate(outs) if outs else np.zeros((0, len(self.m.vocab.tokens)))

    def _trim(self) -> None:
        keep_from = max(0, (self.next_frame - self.ctx - 1) * self.hop)
        if keep_from > self.buf_start:
            self.buf = self.buf[keep_from - self.buf_start :]
            self.buf_start = keep_from

    def run_all(self, wave: np.ndarray) -> np.ndarray:
        a = self.push(wave)
        b = self.finish()
        return np.concatenate([a, b])


def export_torchscript(model: ConvCTC, vocab: Vocabulary, path: Path) -> None:
    import json

    model = model.cpu().eval()
    scripted = torch.jit.script(model)
    scripted.save(str(path))
    meta = {
        "tokens": list(vocab.tokens),
        "blank": vocab.blank,
        "sample_rate_hz": 16000,
        "hop_samples": 160,
        "context_frames": ConvCTC.context_frames(),
    }
    path.with_suffix(".vocab.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
