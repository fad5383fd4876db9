"""[speech] section: the CTC model and the streaming aligner."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechConfig:
    enabled: bool = True
    """Align `text` streams to the audio stream of their session with the CTC model."""
    model: str = ""
    """Path of a TorchScript CTC model (with its vocabulary beside it); empty uses the shipped model."""
    device: str = "auto"
    """torch device: `auto` (CUDA when available, else CPU), `cpu` or `cuda[:N]`."""
