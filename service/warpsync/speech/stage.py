"""The speech stage: aligns each `text` stream to an audio stream of its session, word by word, live.

Pairing: a text stream aligns to the audio stream named in its metadata (`meta={"audio": "<stream>"}`),
else to the first audio stream of its session (opened before or after it). Audio chunks are mixed down to
mono, resampled to the model's rate, turned into emissions (windowed, so chunking does not change them),
and fed to one `StreamingAligner` per text stream. Each text chunk is taken to end on a word boundary.

Times: `start_s`/`end_s` of `speech.word` are on the audio stream's own device time axis: the device time
of its first chunk plus samples / rate (gaps and drift are not corrected here; the engine maps device time
to the session timeline). Bad input never raises here (ingest validated it); odd shapes are counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from warpsync_client.protocol import StreamMeta

from ..errors import ConfigError
from ..stage import Event, Samples
from .config import SpeechConfig
from .features import StreamResampler, to_mono
from .model import AcousticModel, WindowedEmissions
from .stream import StreamingAligner

log = logging.getLogger(__name__)


@dataclass
class _Audio:
    meta: object
    resampler: StreamResampler
    emitter: WindowedEmissions
    t0_s: float | None = None
    samples_in: int = 0
    frames_out: int = 0
    closed: bool = False


@dataclass
class _Pair:
    text_stream: str
    audio_stream: str | None
    aligner: StreamingAligner | None = None
    text_backlog: list = field(default_factory=list)
    text_closed: bool = False
    last_status_s: float = 0.0
    finished: bool = False


class SpeechStage:
    name = "speech"

    def __init__(
        self, cfg: SpeechConfig, registry: CollectorRegistry | None = None, model: AcousticModel | None = None
    ):
        self.cfg = cfg
        if cfg.threads < 1:
            raise ConfigError(f"[speech] threads must be >= 1, got {cfg.threads}")
        if model is None:
            import torch

            torch.set_num_threads(cfg.threads)
        self.model = model or AcousticModel.load(cfg.model or None, cfg.device)
        reg = registry if registry is not None else CollectorRegistry()
        self.m_words = Counter("warpsync_speech_words_total", "Words aligned and published", ["stream"], registry=reg)
        self.m_forced = Counter(
            "warpsync_speech_forced_commits_total", "Commits forced by the trust horizon", ["stream"], registry=reg
        )
        self.m_lag = Histogram(
            "warpsync_speech_commit_lag_seconds",
            "Audio received after a word's end before the word was committed (audio seconds)",
            registry=reg,
            buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
        )
        self.m_compute = Counter(
            "warpsync_speech_compute_seconds_total", "CPU/GPU wall time spent in the model and aligner", registry=reg
        )
        self.audio: dict[str, _Audio] = {}
        self.pairs: dict[str, _Pair] = {}
        self.session_of: dict[str, str] = {}

    def warm_up(self) -> float:
        """Run the model and the aligner once, on 2 s of synthetic noise and a four-word text, through a
        scratch stage that shares this one's model and config but not its streams or metrics. The aligner's
        numba kernels compile on their first call (4.8 s on a fresh install here; 0.3 s to load numba's cache
        later): without this that call is the first transcript's, on the service loop, and a demo on a fresh
        machine lost its rig (the publisher's `open` had no reply within 5 s) while the talker's chunks, 4.3 s
        late, looked like a clock jump. Returns the seconds it took; nothing when speech sync is disabled."""
        if not self.cfg.enabled:
            return 0.0
        t = time.perf_counter()
        scratch = SpeechStage(self.cfg, CollectorRegistry(), model=self.model)
        rate = float(self.model.sample_rate_hz)
        am = StreamMeta("warm-up.audio", "audio", rate, (1,), "f4", session="warm-up")
        tm = StreamMeta("warm-up.text", "text", 0.0, (), "str", session="warm-up")
        scratch.open(am, 0.0)
        scratch.open(tm, 0.0)
        x = 0.05 * np.random.default_rng(0).standard_normal((int(2 * rate), 1)).astype(np.float32)
        scratch.samples(tm, Samples(tm.stream, 0, 0.0, 0.0, "warm up the aligner"))
        for k, i in enumerate(range(0, len(x), len(x) // 4)):
            scratch.samples(am, Samples(am.stream, k + 1, i / rate, 0.0, x[i : i + len(x) // 4]))
        scratch.close(tm.stream, 0.0)
        scratch.close(am.stream, 0.0)
        return time.perf_counter() - t

    # ---- pairing ----------------------------------------------------------------------------------------
    def _new_aligner(self, audio: _Audio) -> StreamingAligner:
        m, c = self.model, self.cfg
        return StreamingAligner(
            m.vocab,
            len(m.vocab.tokens),
            m.hop_s,
            star=c.star,
            star_penalty=c.star_penalty,
            beam=c.beam,
            horizon_frames=max(2, round(c.horizon_s / m.hop_s)),
            max_window_frames=max(round(c.horizon_s / m.hop_s), round(c.max_text_lag_s / m.hop_s)),
            t0_s=audio.t0_s or 0.0,
            confidence=c.confidence,
            calibration=m.calibration,
        )

    def _bind(self, pair: _Pair) -> None:
        if pair.audio_stream is None:
            sess = self.session_of.get(pair.text_stream, "")
            for sid, a in self.audio.items():
                if self.session_of.get(sid, "") == sess and not a.closed:
                    pair.audio_stream = sid
                    break

    def open(self, meta, now_s: float) -> list[Event]:
        if not self.cfg.enabled:
            return []
        self.session_of[meta.stream] = meta.session
        if meta.modality == "audio":
            hop = self.model.hop_samples
            self.audio[meta.stream] = _Audio(
                meta,
                StreamResampler(meta.rate_hz, self.model.sample_rate_hz),
                WindowedEmissions(
                    self.model,
                    max(1, int(self.cfg.block_s * self.model.sample_rate_hz / hop)),
                    max(1, round(self.cfg.step_s * self.model.sample_rate_hz / hop)),
                ),
            )
            for p in self.pairs.values():
                self._bind(p)
        elif meta.modality == "text":
            want = meta.meta.get("audio") if meta.meta else None
            pair = _Pair(meta.stream, str(want) if want else None)
            self.pairs[meta.stream] = pair
            self._bind(pair)
        return []

    # ---- data ---------------------------------------------------------------------------------------------
    def samples(self, meta, chunk: Samples) -> list[Event]:
        if not self.cfg.enabled:
            return []
        t = time.perf_counter()
        try:
            if meta.modality == "text" and chunk.stream in self.pairs:
                return self._text(self.pairs[chunk.stream], str(chunk.data))
            a = self.audio.get(chunk.stream)
            if a is None:
                return []
            if not any(p.audio_stream == chunk.stream and not p.finished for p in self.pairs.values()):
                return []  # no transcript aligns to this stream (now): no model time spent on it
            if a.t0_s is None:  # the time axis starts at the first chunk that is aligned
                a.t0_s = float(chunk.t_dev_s)
            x = to_mono(np.asarray(chunk.data))
            a.samples_in += len(x)
            em = a.emitter.push(a.resampler.push(x))
            return self._frames(chunk.stream, a, em)
        finally:
            self.m_compute.inc(time.perf_counter() - t)

    def _text(self, pair: _Pair, text: str) -> list[Event]:
        if pair.finished:
            log.debug("speech: text on %s after its audio ended is not aligned", pair.text_stream)
            return []
        if pair.aligner is None:
            pair.text_backlog.append(text)
            return []
        pair.aligner.add_text(text + " ")
        return self._events(pair, pair.aligner.update())

    def _frames(self, audio_id: str, a: _Audio, em: np.ndarray) -> list[Event]:
        a.frames_out += em.shape[0]
        out: list[Event] = []
        for p in self.pairs.values():
            if p.audio_stream != audio_id or p.finished:
                continue
            if p.aligner is None:
                p.aligner = self._new_aligner(a)
                for t in p.text_backlog:
                    p.aligner.add_text(t + " ")
                p.text_backlog.clear()
                if p.text_closed:
                    p.aligner.close_text()
            out += self._events(p, p.aligner.add_frames(em))
        return out

    def _events(self, pair: _Pair, words) -> list[Event]:
        if not words:
            return []
        a = self.audio.get(pair.audio_stream or "")
        newest_s = (a.t0_s or 0.0) + (pair.aligner.stats.frames * self.model.hop_s) if a else 0.0
        evs = []
        for w in words:
            self.m_words.labels(pair.text_stream).inc()
            self.m_lag.observe(max(0.0, newest_s - w.end_s))
            evs.append(
                Event(
                    "speech.word",
                    pair.text_stream,
                    {
                        "word": w.text,
                        "index": w.index,
                        "start_s": w.start_s,
                        "end_s": w.end_s,
                        "confidence": None if np.isnan(w.confidence) else round(float(w.confidence), 4),
                        "audio_stream": pair.audio_stream,
                        "method": "speech",
                        "time_axis": "audio_device",
                    },
                )
            )
        return evs

    def _status(self, pair: _Pair, state: str) -> Event:
        st = pair.aligner.stats if pair.aligner else None
        body = {
            "state": state,
            "audio_stream": pair.audio_stream,
            "method": "speech",
            "frames": st.frames if st else 0,
            "audio_s": (st.frames * self.model.hop_s) if st else 0.0,
            "words_received": st.words_received if st else 0,
            "words_aligned": st.words_committed if st else 0,
            "window_s": (st.window_frames * self.model.hop_s) if st else 0.0,
            "forced_commits": st.forced_commits if st else 0,
            "dropped_audio_s": (st.dropped_frames * self.model.hop_s) if st else 0.0,
            "unaligned_words": list(st.unaligned_words) if st else [],
            "device": str(self.model.device),
        }
        return Event("speech.status", pair.text_stream, body)

    # ---- end and time -------------------------------------------------------------------------------------
    def close(self, stream: str, now_s: float) -> list[Event]:
        out: list[Event] = []
        if stream in self.pairs:
            p = self.pairs[stream]
            p.text_closed = True
            if p.aligner is not None:
                p.aligner.close_text()
                out += self._events(p, p.aligner.update())
        a = self.audio.get(stream)
        if a is not None and not a.closed:
            a.closed = True
            em = np.concatenate([a.emitter.push(a.resampler.finish()), a.emitter.finish()])
            out += self._frames(stream, a, em)
            for p in list(self.pairs.values()):
                if p.audio_stream == stream and p.aligner is not None and not p.finished:
                    words = p.aligner.finish()
                    p.finished = True
                    out += self._events(p, words)
                    if p.aligner.stats.forced_commits:
                        self.m_forced.labels(p.text_stream).inc(p.aligner.stats.forced_commits)
                    out.append(self._status(p, "finished"))
            del self.audio[stream]
        if stream in self.pairs and (self.pairs[stream].finished or self.pairs[stream].aligner is None):
            p = self.pairs.pop(stream)
            if not p.finished:
                out.append(self._status(p, "closed"))
        self.session_of.pop(stream, None)
        return out

    def tick(self, now_s: float) -> list[Event]:
        out = []
        for p in self.pairs.values():
            if p.finished or now_s - p.last_status_s < self.cfg.status_period_s:
                continue
            p.last_status_s = now_s
            out.append(self._status(p, "aligning" if p.aligner else "waiting_for_audio"))
        return out
