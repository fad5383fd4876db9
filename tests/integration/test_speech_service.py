"""Speech sync through the real service: a recorded utterance on an audio stream and its transcript on a text
stream, over real sockets with the client library; `speech.word` events come out on the PUB socket and match
the offline alignment of the same audio and text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from service_harness import ipc_cfg, wait_for

from warpsync.speech import align
from warpsync_client import Publisher, Subscriber

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"

pytestmark = pytest.mark.timeout(180)


def test_words_published_live_match_offline_alignment(start_service, zctx, tmp_path):
    entry = json.loads((DATA / "manifest.json").read_text())[0]
    x, rate = sf.read(DATA / entry["audio"], dtype="float32")
    text = entry["text"]
    rs = start_service(ipc_cfg(tmp_path))
    assert rs.service.stages[-1].name == "speech" and rs.service.stages[-1].stage is None  # not loaded yet
    sub = Subscriber(rs.endpoints.publish, topics=("speech.",), context=zctx)
    wait_for(lambda: rs.service.subscribe_notices() > 0, 5.0, "subscription")
    t0 = 100.0
    words = text.split()
    with (
        Publisher("cap", modality="text", session="s", control=rs.endpoints.control, context=zctx) as cap,
        Publisher(
            "mic",
            modality="audio",
            rate_hz=float(rate),
            channels=1,
            dtype="f4",
            session="s",
            control=rs.endpoints.control,
            context=zctx,
        ) as mic,
    ):
        # the transcript arrives in pieces while the audio streams in 50 ms chunks
        step = int(0.05 * rate)
        for i, pos in enumerate(range(0, len(x), step)):
            mic.send(x[pos : pos + step].reshape(-1, 1), t0 + pos / rate)
            if i % 10 == 0 and words:
                cap.send(" ".join(words[:3]), t0 + pos / rate)
                words = words[3:]
        if words:
            cap.send(" ".join(words), t0 + len(x) / rate)
    got = []
    while True:
        ev = sub.recv(timeout_s=10.0)
        if ev is None:
            break
        if ev.event == "speech.word":
            got.append(ev.header)
        if len(got) == len(text.split()):
            break
    sub.close()
    assert [w["word"] for w in got] == text.split()
    assert [w["index"] for w in got] == list(range(len(got)))
    model = rs.service.stages[-1].stage.model
    off = align.align_words(
        model.emissions(x), model.vocab.words(text), model.hop_s, offset_s=t0, calibration=model.calibration
    )
    got_spans = np.array([(w["start_s"], w["end_s"]) for w in got])
    want = np.array([(w.start_s, w.end_s) for w in off])
    assert np.mean(np.abs(got_spans - want) < 1e-6) >= 0.99  # live over sockets == offline
    truth = np.array(entry["word_start_s"]) + t0
    # accuracy is measured in bench_speech.py; here: the words landed where they were said
    assert np.median(np.abs(got_spans[:, 0] - truth)) < 0.1, (got_spans[:, 0], truth)
