"""build_stages: which stages the service runs, and that every stream.status carries the full body."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry
from warpsync_client.protocol import StreamMeta

from warpsync.config import Config
from warpsync.stage import Event
from warpsync.stages import FullStatus, SpeechOnDemand, StatusStage, build_stages


def _ingest_status(stream, now_s):
    return {"chunks": 7, "closed": False, "settled": "ingest-value"}


def test_default_stages_are_status_engine_speech():
    stages = build_stages(Config(), CollectorRegistry(), _ingest_status)
    assert [s.name for s in stages] == ["status", "engine", "speech"]
    assert isinstance(stages[0], StatusStage) and isinstance(stages[1], FullStatus)
    assert isinstance(stages[2], SpeechOnDemand)


def test_speech_stage_is_built_by_the_first_text_stream_and_sees_open_audio():
    cfg = Config()
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, enabled=False))
    (speech,) = build_stages(cfg, CollectorRegistry(), None)
    speech.open(StreamMeta("mic", "audio", 16000.0, (1,)), 0.0)
    speech.open(StreamMeta("gone", "audio", 16000.0, (1,)), 0.0)
    speech.close("gone", 0.5)
    assert speech.stage is None  # no transcript yet: torch and the model are not loaded
    speech.open(StreamMeta("cap", "text", 0.0, (), "utf8"), 1.0)
    assert speech.stage is not None
    assert set(speech.stage.audio) == {"mic"}  # the open audio stream was replayed, the closed one not


def test_engine_disabled_and_no_status_source():
    cfg = Config()
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, enabled=False))
    assert [s.name for s in build_stages(cfg, CollectorRegistry(), _ingest_status)] == ["status", "speech"]
    assert [s.name for s in build_stages(Config(), CollectorRegistry(), None)] == ["engine", "speech"]


class _FakeEngine:
    name = "engine"

    def __init__(self):
        self.calls = []

    def open(self, meta, now_s):
        return [Event("stream.status", meta.stream, {"settled": True}), Event("sync.offset", meta.stream, {"x": 1})]

    def samples(self, meta, chunk):
        return []

    def close(self, stream, now_s):
        return []

    def tick(self, now_s):
        return [Event("stream.status", "a", {"jumped": True})]

    def bind_buffers(self, lookup):
        self.calls.append(lookup)


def test_full_status_merges_ingest_body_under_the_stage_fields():
    eng = _FakeEngine()
    wrapped = FullStatus(eng, _ingest_status)
    evs = wrapped.open(StreamMeta("a", "sensor", 100.0), 1.0)
    assert evs[0].body == {"chunks": 7, "closed": False, "settled": True}  # the stage's value wins
    assert evs[1] == Event("sync.offset", "a", {"x": 1})  # other events untouched
    assert wrapped.tick(2.0)[0].body == {"chunks": 7, "closed": False, "settled": "ingest-value", "jumped": True}
    wrapped.bind_buffers("lookup")
    assert eng.calls == ["lookup"]
