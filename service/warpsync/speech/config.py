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
    preload: bool = False
    """Build the speech stage (import torch, load the model) when the service starts, before its ready line,
    instead of in the background when the first `text` stream opens. The import holds the interpreter for a
    second or two, and done mid-stream it delayed every stage's events by up to 260 ms in `warpsync demo` (which
    preloads, since it starts a talker). Default false: a rig without a transcript never pays for it."""
    threads: int = 1
    """torch CPU threads for the model (process-wide, set when the speech stage loads). 1 by default: the
    model needs a few percent of one core, and more threads spin against the ingest workers and the engine
    for the same cores (on a loaded 2-core host, 2 threads made each forward pass about 60x slower)."""
    star: bool = True
    """Use the star (garbage) state between words, so speech missing from the text does not derail the rest."""
    star_penalty: float = 1.5
    """Cost of the star state per frame, natural-log units: higher keeps more audio on transcript words. Default 1.5."""
    beam: float = 15.0
    """Streaming: paths within this many natural-log units of the best are traced for commits. Default 15."""
    horizon_s: float = 3.0
    """Streaming trust horizon, seconds: without convergence the best path is committed this far behind the newest frame (half of it). Default 3.0."""
    max_text_lag_s: float = 60.0
    """Streaming: seconds of audio kept waiting for transcript text before it is given up to the star state. Default 60."""
    confidence: bool = True
    """Compute per-word confidence by forward-backward (costs about one more pass over the trellis). Default true."""
    block_s: float = 30.0
    """Model evaluation block, seconds of audio per forward pass (bounds memory on long audio). Default 30."""
    step_s: float = 0.2
    """Streaming: run the model once at least this much new audio is ready, seconds (smaller = lower latency, more compute: each run recomputes the model's context). Default 0.2."""
    status_period_s: float = 1.0
    """Seconds between `speech.status` events per aligned pair (from `tick`). Default 1.0."""
