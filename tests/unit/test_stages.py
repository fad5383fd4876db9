"""build_stages: which stages the service runs, and that every stream.status carries the full body."""

from __future__ import annotations

import dataclasses

import numpy as np
from prometheus_client import CollectorRegistry

from warpsync.config import Config
from warpsync.stage import Event
from warpsync.stages import FullStatus, SpeechOnDemand, StatusStage, build_stages
from warpsync_client.protocol import StreamMeta


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
    assert speech.wait_loaded(120)  # built in the background
    speech.tick(2.0)  # the service loop installs it
    assert speech.stage is not None
    assert set(speech.stage.audio) == {"mic"}  # the open audio stream was replayed, the closed one not


class _Recorder:
    """A stand-in speech stage that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def open(self, meta, now_s):
        self.calls.append(("open", meta.stream))
        return [Event("speech.status", meta.stream, {"opened": True})]

    def samples(self, meta, chunk):
        self.calls.append(("samples", chunk.stream, chunk.data if isinstance(chunk.data, str) else chunk.data.copy()))
        return []

    def close(self, stream, now_s):
        self.calls.append(("close", stream))
        return []

    def tick(self, now_s):
        return []


def _on_demand(build):
    from warpsync.stage import Samples

    cfg = Config()
    sp = SpeechOnDemand(cfg, CollectorRegistry(), build=build)

    def chunk(stream, data, seq=0):
        return Samples(stream, seq, 0.0, 0.0, data)

    return sp, chunk


def test_speech_stage_loads_in_the_background_and_replays_queued_chunks_in_order():
    import threading

    gate = threading.Event()
    rec = _Recorder()

    def build():
        gate.wait(10)
        return rec

    sp, chunk = _on_demand(build)
    mic = StreamMeta("mic", "audio", 16000.0, (1,))
    cap = StreamMeta("cap", "text", 0.0, (), "utf8")
    imu = StreamMeta("imu", "sensor", 100.0, (3,))
    for m in (mic, imu):
        sp.open(m, 0.0)
    sp.samples(mic, chunk("mic", np.zeros((4, 1), np.float32)))  # before any text: not aligned, not queued
    assert sp.open(cap, 1.0) == [] and sp.loading and sp.stage is None  # returns at once
    buf = np.arange(4, dtype=np.float32).reshape(4, 1)
    sp.samples(mic, chunk("mic", buf, 1))
    buf[:] = -1  # the caller's buffer is reused: the queue kept a copy
    sp.samples(cap, chunk("cap", "hello there"))
    sp.samples(imu, chunk("imu", np.zeros((2, 3), np.float32)))  # not the speech stage's business
    sp.close("mic", 1.5)
    assert sp.tick(2.0) == []  # still loading
    gate.set()
    assert sp.wait_loaded(10)
    events = sp.tick(3.0)
    assert sp.stage is rec and [e.name for e in events] == ["speech.status"] * 3
    kinds = [(c[0], c[1]) for c in rec.calls]
    assert kinds == [
        ("open", "mic"),
        ("open", "imu"),
        ("open", "cap"),
        ("samples", "mic"),
        ("samples", "cap"),
        ("close", "mic"),
    ]
    np.testing.assert_array_equal(rec.calls[3][2][:, 0], [0, 1, 2, 3])
    assert rec.calls[4][2] == "hello there"
    sp.samples(cap, chunk("cap", "again"))  # now straight through
    assert rec.calls[-1][:2] == ("samples", "cap")


def test_queued_calls_are_replayed_a_budget_at_a_time_in_order(monkeypatch):
    """A backlog is replayed over several service calls, not in one (it held the demo's loop for 63 ms): calls
    arriving meanwhile join the queue behind it, and the stage's tick waits until the queue is empty."""
    import threading
    import time

    gate = threading.Event()

    class Slow(_Recorder):
        ticks = 0

        def samples(self, meta, chunk):
            time.sleep(0.002)
            return super().samples(meta, chunk)

        def tick(self, now_s):
            self.ticks += 1
            return []

    rec = Slow()
    sp, chunk = _on_demand(lambda: gate.wait(10) and rec)
    monkeypatch.setattr(SpeechOnDemand, "REPLAY_BUDGET_S", 0.005)
    mic = StreamMeta("mic", "audio", 16000.0, (1,))
    cam = StreamMeta("cam", "video", 30.0, (2, 2))
    sp.open(mic, 0.0)
    sp.open(StreamMeta("cap", "text", 0.0, (), "utf8"), 0.0)
    for i in range(40):
        sp.samples(mic, chunk("mic", np.full((4, 1), i, np.float32), i))
    gate.set()
    assert sp.wait_loaded(10)
    sp.tick(1.0)
    replayed = sum(1 for c in rec.calls if c[0] == "samples")
    assert 2 <= replayed < 10 and rec.ticks == 0  # a budget's worth, not the backlog
    sp.samples(mic, chunk("mic", np.full((4, 1), 40, np.float32), 40))  # joins the queue behind the backlog
    sp.samples(cam, chunk("cam", np.zeros((1, 2, 2), np.float32)))  # not speech: straight through
    sp.close("mic", 2.0)
    for _ in range(40):
        sp.tick(2.0)
    got = [int(c[2][0, 0]) for c in rec.calls if c[0] == "samples" and c[1] == "mic"]
    assert got == list(range(41))
    assert [c[:2] for c in rec.calls][-1] == ("close", "mic") and rec.ticks > 0
    assert not sp._pending and sp._pending_bytes == 0
    sp.samples(mic, chunk("mic", np.zeros((4, 1), np.float32), 41))  # then straight through
    assert rec.calls[-1][:2] == ("samples", "mic")


def test_preload_builds_the_speech_stage_at_construction():
    cfg = Config()
    cfg = dataclasses.replace(cfg, speech=dataclasses.replace(cfg.speech, preload=True))
    rec = _Recorder()
    sp = SpeechOnDemand(cfg, CollectorRegistry(), build=lambda: rec)
    assert sp.stage is rec and not sp.loading  # before any stream
    sp.open(StreamMeta("mic", "audio", 16000.0, (1,)), 0.0)
    assert rec.calls == [("open", "mic")]
    bad = SpeechOnDemand(cfg, CollectorRegistry(), build=lambda: 1 / 0)
    assert bad.failed and bad.stage is None and bad.open(StreamMeta("cap", "text", 0.0, (), "utf8"), 0.0) == []


def test_speech_stage_queue_is_bounded_and_drops_are_counted(monkeypatch):
    import threading

    gate = threading.Event()
    sp, chunk = _on_demand(lambda: gate.wait(10) and _Recorder())
    monkeypatch.setattr(SpeechOnDemand, "MAX_PENDING_BYTES", 100)
    mic = StreamMeta("mic", "audio", 16000.0, (1,))
    sp.open(mic, 0.0)
    sp.open(StreamMeta("cap", "text", 0.0, (), "utf8"), 0.0)
    for i in range(5):
        sp.samples(mic, chunk("mic", np.zeros((10, 1), np.float32), i))  # 40 bytes each
    assert sp.dropped_while_loading == 3
    assert sp._registry.get_sample_value("warpsync_speech_dropped_while_loading_total") == 3
    gate.set()
    sp.wait_loaded(10)
    sp.tick(1.0)
    assert sum(1 for c in sp.stage.calls if c[0] == "samples") == 2


def test_speech_stage_build_failure_turns_speech_off_and_nothing_else(caplog):
    def build():
        raise RuntimeError("no model here")

    sp, chunk = _on_demand(build)
    mic = StreamMeta("mic", "audio", 16000.0, (1,))
    sp.open(mic, 0.0)
    sp.open(StreamMeta("cap", "text", 0.0, (), "utf8"), 0.0)
    sp.wait_loaded(10)
    with caplog.at_level("ERROR"):
        assert sp.tick(1.0) == []
    assert sp.failed and sp.stage is None and "no model here" in caplog.text
    assert sp.samples(mic, chunk("mic", np.zeros((4, 1), np.float32))) == []
    assert sp.open(StreamMeta("cap2", "text", 0.0, (), "utf8"), 2.0) == []
    assert sp.close("mic", 3.0) == [] and sp.tick(4.0) == []


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


def test_every_stage_takes_read_only_chunks(rng):
    """Inline ingest hands large chunks to the stages as the read-only frames they arrived in: no stage may
    write to its input. Large audio, video frames and sensor blocks, each read-only, through every default
    stage (a transcript too, so the speech stage reads the audio): nothing raises, nothing changes."""
    from warpsync.stage import Samples

    stages = build_stages(Config(), CollectorRegistry(), _ingest_status)
    streams = [
        (StreamMeta("mic", "audio", 48000.0, (1,), "f4", session="s"), lambda: rng.normal(0, 0.1, (262144, 1))),
        (StreamMeta("cam", "video", 30.0, (120, 160), "f4", session="s"), lambda: rng.random((4, 120, 160))),
        (StreamMeta("imu", "sensor", 1000.0, (6,), "f4", session="s"), lambda: rng.normal(0, 1, (20000, 6))),
    ]
    for meta, _ in streams:
        for st in stages:
            st.open(meta, 0.0)
    text = StreamMeta("cap", "text", 0.0, (), "utf8", session="s")
    for st in stages:
        st.open(text, 0.0)
    speech = stages[2]
    assert speech.wait_loaded(120)
    speech.tick(0.0)  # installs the loaded speech stage: it now reads the audio
    assert speech.stage is not None
    t = {m.stream: 0.0 for m, _ in streams}
    for k in range(3):
        for meta, make in streams:
            x = make().astype(np.float32)
            x.flags.writeable = False
            before = x.copy()
            for st in stages:
                st.samples(meta, Samples(meta.stream, k, t[meta.stream], 100.0 + k, x))
            np.testing.assert_array_equal(x, before)
            t[meta.stream] += len(x) / meta.rate_hz
        for st in stages:
            st.samples(text, Samples("cap", k, float(k), 100.0 + k, "hello there", 1.0))
            st.tick(100.0 + k)
