"""The speech stage (pure processor behind the service) and the `warpsync speech align` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from prometheus_client import CollectorRegistry

from warpsync.cli import main
from warpsync.speech import align
from warpsync.speech.config import SpeechConfig
from warpsync.speech.model import AcousticModel
from warpsync.speech.stage import SpeechStage
from warpsync.stage import Samples
from warpsync_client.protocol import StreamMeta

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
TEXT0 = "Please hold while we connect your call to the next available agent."


@pytest.fixture(scope="module")
def model() -> AcousticModel:
    return AcousticModel.load(None, "cpu")


def _feed(stage, rng, audio_meta, text_meta, x, text, t0=50.0):
    events = []
    pos, words, k, seq = 0, text.split(), 0, 0
    now = 1000.0
    while pos < len(x) or k < len(words):
        if k < len(words) and rng.random() < 0.3:
            n = int(rng.integers(1, 4))
            events += stage.samples(text_meta, Samples(text_meta.stream, seq, t0, now, " ".join(words[k : k + n])))
            k += n
        elif pos < len(x):
            n = int(rng.choice([0, 1, 160, 800, 1600, 3333]))
            chunk = x[pos : pos + n]
            events += stage.samples(
                audio_meta, Samples(audio_meta.stream, seq, t0 + pos / audio_meta.rate_hz, now, chunk)
            )
            pos += n
        seq += 1
        now += 0.05
        events += stage.tick(now)
    events += stage.close(text_meta.stream, now)
    events += stage.close(audio_meta.stream, now)
    return events


def test_stage_words_equal_offline_alignment(model, rng):
    reg = CollectorRegistry()
    stage = SpeechStage(SpeechConfig(), reg, model=model)
    am = StreamMeta("mic", "audio", 16000.0, (1,), "f4", session="s1")
    tm = StreamMeta("captions", "text", 0.0, (), "str", session="s1")
    stage.open(tm, 0.0)  # text first: binds to the audio stream when it opens
    stage.open(am, 0.0)
    x = sf.read(DATA / "espeak_0.wav", dtype="float32")[0]
    text = TEXT0 + " " + TEXT0  # twice the text, once the audio: the rest must be reported, not crash
    x2 = np.concatenate([x, x])
    events = _feed(stage, rng, am, tm, x2[:, None], text)
    words = [e for e in events if e.name == "speech.word"]
    status = [e for e in events if e.name == "speech.status"]
    assert [e.body["index"] for e in words] == list(range(len(text.split())))
    off = align.align_words(
        model.emissions(x2), model.vocab.words(text), model.hop_s, offset_s=50.0, calibration=model.calibration
    )
    got = np.array([(e.body["start_s"], e.body["end_s"]) for e in words])
    want = np.array([(w.start_s, w.end_s) for w in off])
    assert np.mean(np.abs(got - want) < 1e-6) >= 0.99
    for e in words:
        assert e.stream == "captions" and e.body["audio_stream"] == "mic" and e.body["method"] == "speech"
        assert 0.0 <= e.body["confidence"] <= 1.0
    assert status and status[-1].body["state"] == "finished"
    assert status[-1].body["words_aligned"] == len(words)
    assert reg.get_sample_value("warpsync_speech_words_total", {"stream": "captions"}) == len(words)
    assert reg.get_sample_value("warpsync_speech_commit_lag_seconds_count") == len(words)


def test_stage_resamples_and_mixes_down(model, rng):
    stage = SpeechStage(SpeechConfig(), CollectorRegistry(), model=model)
    x = sf.read(DATA / "espeak_1.wav", dtype="float32")[0]
    from scipy.signal import resample_poly

    x22 = resample_poly(x, 441, 320).astype(np.float32)
    stereo = np.stack([x22, 0.5 * x22], axis=1)
    am = StreamMeta("room", "audio", 22050.0, (2,), "f4")
    tm = StreamMeta("subs", "text", 0.0, (), "str", meta={"audio": "room"})
    stage.open(am, 0.0)
    stage.open(tm, 0.0)
    text = json.loads((DATA / "manifest.json").read_text())[1]["text"]
    events = _feed(stage, rng, am, tm, stereo, text, t0=0.0)
    words = [e for e in events if e.name == "speech.word"]
    assert len(words) == len(text.split())
    truth = json.loads((DATA / "manifest.json").read_text())[1]["word_start_s"]
    err = [abs(e.body["start_s"] - t) for e, t in zip(words, truth) if t is not None]
    assert np.median(err) < 0.05


def test_stage_ignores_unpaired_streams_and_disabled(model):
    stage = SpeechStage(SpeechConfig(enabled=False), CollectorRegistry(), model=model)
    am = StreamMeta("mic", "audio", 16000.0, (1,), "f4")
    assert stage.open(am, 0.0) == []
    assert stage.samples(am, Samples("mic", 0, 0.0, 0.0, np.zeros((160, 1), np.float32))) == []
    stage = SpeechStage(SpeechConfig(), CollectorRegistry(), model=model)
    stage.open(am, 0.0)
    out = stage.samples(am, Samples("mic", 0, 0.0, 0.0, np.zeros((16000, 1), np.float32)))
    assert out == []  # audio without any text stream: nothing to align
    assert stage.close("mic", 1.0) == []


def test_unpaired_audio_costs_no_model_time_and_a_late_pair_starts_the_axis(model, rng, monkeypatch):
    stage = SpeechStage(SpeechConfig(), CollectorRegistry(), model=model)
    calls = []
    am = StreamMeta("mic", "audio", 16000.0, (1,), "f4", session="s")
    other = StreamMeta("room", "audio", 16000.0, (1,), "f4", session="elsewhere")
    stage.open(am, 0.0)
    stage.open(other, 0.0)
    x = sf.read(DATA / "espeak_0.wav", dtype="float32")[0][:, None]
    for a in stage.audio.values():
        monkeypatch.setattr(a.emitter, "push", lambda y, _p=a.emitter.push: calls.append(len(y)) or _p(y))
    # 2 s of audio before any transcript: not run through the model
    stage.samples(am, Samples("mic", 0, 10.0, 0.0, np.zeros((32000, 1), np.float32)))
    assert calls == [] and stage.audio["mic"].t0_s is None
    tm = StreamMeta("captions", "text", 0.0, (), "str", session="s")
    stage.open(tm, 1.0)
    events = stage.samples(tm, Samples("captions", 0, 12.0, 1.0, TEXT0))
    events += stage.samples(am, Samples("mic", 1, 12.0, 1.0, x))
    stage.samples(other, Samples("room", 0, 12.0, 1.0, x))  # another session's audio: still not run
    assert len(calls) == 1
    events += stage.close("captions", 2.0) + stage.close("mic", 2.0)
    words = [e for e in events if e.name == "speech.word"]
    assert len(words) == len(TEXT0.split())
    off = align.align_words(
        model.emissions(x[:, 0]), model.vocab.words(TEXT0), model.hop_s, offset_s=12.0, calibration=model.calibration
    )
    np.testing.assert_allclose([e.body["start_s"] for e in words], [w.start_s for w in off], atol=1e-6)


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "textgrid"])
def test_cli_align_formats(tmp_path, capsys, fmt):
    txt = tmp_path / "t.txt"
    txt.write_text(TEXT0)
    assert main(["speech", "align", str(DATA / "espeak_0.wav"), str(txt), f"--{fmt}", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    n = len(TEXT0.split())
    if fmt == "json":
        words = json.loads(out)
        assert [w["word"] for w in words] == TEXT0.split()
        assert all(w["end_s"] > w["start_s"] for w in words)
    elif fmt == "srt":
        assert out.count(" --> ") == n and "00:00:0" in out
    elif fmt == "vtt":
        assert out.startswith("WEBVTT") and out.count(" --> ") == n
    else:
        assert 'class = "IntervalTier"' in out and out.count('text = "') >= n


def test_cli_align_errors(tmp_path, capsys):
    txt = tmp_path / "t.txt"
    txt.write_text("word " * 2000)
    assert main(["speech", "align", str(DATA / "espeak_0.wav"), str(txt), "--device", "cpu"]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["speech", "align", str(tmp_path / "none.wav"), str(txt), "--device", "cpu"]) == 2
    assert "cannot read audio" in capsys.readouterr().err


_WARM_UP = r"""
import dataclasses, json, sys
import soundfile as sf
from numba.core.registry import CPUDispatcher
from prometheus_client import CollectorRegistry
from warpsync.config import Config
from warpsync.speech import kernels
from warpsync.stage import Samples
from warpsync.stages import SpeechOnDemand
from warpsync_client.protocol import StreamMeta

def compiled():
    return {n: sorted(map(str, f.signatures)) for n, f in vars(kernels).items() if isinstance(f, CPUDispatcher)}

before = compiled()
cfg = Config()
sp = SpeechOnDemand(dataclasses.replace(cfg, speech=dataclasses.replace(cfg.speech, preload=True)), CollectorRegistry())
warm = compiled()
stage = sp.stage
am = StreamMeta("mic", "audio", 16000.0, (1,), "f4", session="s")
tm = StreamMeta("cap", "text", 0.0, (), "str", session="s")
stage.open(tm, 0.0)
stage.open(am, 0.0)
x = sf.read(sys.argv[1], dtype="float32")[0][:, None]
events = stage.samples(tm, Samples("cap", 0, 0.0, 0.0, sys.argv[2]))
for k, i in enumerate(range(0, len(x), 1600)):
    events += stage.samples(am, Samples("mic", k + 1, i / 16000, 0.0, x[i : i + 1600]))
events += stage.close("cap", 1.0) + stage.close("mic", 1.0)
words = sum(e.name == "speech.word" for e in events)
print(json.dumps({"before": before, "warm": warm, "after": compiled(), "words": words}))
"""


def test_a_preloaded_stage_has_compiled_every_kernel_its_first_words_use():
    """`SpeechStage.warm_up` (run by the service's build of the stage) compiles the aligner's kernels with the
    types real alignment uses: in a fresh process, aligning a recording after it compiles nothing more (a
    compile on the first words held a fresh machine's service loop for 4.8 s)."""
    import subprocess
    import sys

    run = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        [sys.executable, "-c", _WARM_UP, str(DATA / "espeak_0.wav"), TEXT0],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert not any(got["before"].values())  # nothing compiled before the stage was built
    for name in ("_viterbi_block", "_traceback_block", "_survivor_merge", "_forward_block", "_backward_block"):
        assert got["warm"][name], f"{name} was not compiled by the warm-up"
    assert got["after"] == got["warm"]  # real alignment needed no new compile
    assert got["words"] == len(TEXT0.split())
