"""The demo's speaking source through the real service: the talker's audio and captions over real sockets,
`speech.word` for every caption word, in order, inside the utterance that spoke it."""

from __future__ import annotations

import threading

import pytest
from service_harness import ipc_cfg, wait_for

from warpsync.sim.talker import load_utterances, publish_talker
from warpsync_client import Subscriber

pytestmark = pytest.mark.timeout(180)


def test_talker_words_are_aligned_live(start_service, zctx, tmp_path):
    utts, rate = load_utterances()
    rs = start_service(ipc_cfg(tmp_path))
    sub = Subscriber(rs.endpoints.publish, topics=("speech.",), context=zctx)
    wait_for(lambda: rs.service.subscribe_notices() > 0, 5.0, "subscription")
    sent = publish_talker(
        rs.endpoints.control, threading.Event(), zctx, realtime=False, loops=1, utterances=(utts, rate)
    )
    assert sent["talker"] > 0 and sent["captions"] > 0
    want = " ".join(u.text for u in utts).split()
    got = []
    while len(got) < len(want):
        ev = sub.recv(timeout_s=20.0)
        assert ev is not None, f"only {len(got)} of {len(want)} words arrived"
        if ev.event == "speech.word":
            got.append(ev.header)
    sub.close()
    assert [w["word"] for w in got] == want
    assert [w["index"] for w in got] == list(range(len(want)))
    # each word inside its utterance on the talker's device clock (1000 s + scene time; 1.5 s pauses)
    t, i = 1000.0, 0
    for u in utts:
        t += 1.5
        end = t + len(u.audio) / rate
        for _ in u.text.split():
            assert t - 0.05 <= got[i]["start_s"] < got[i]["end_s"] <= end + 0.05, (got[i], t, end)
            i += 1
        t = end
