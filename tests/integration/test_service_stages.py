"""Which stages the service calls per chunk: a stage with ``wants_samples = False`` only sees open, tick and
close (the per-chunk hot path skips it); the others see every chunk, in order, over real sockets."""

from __future__ import annotations

import numpy as np
import pytest
from service_harness import ipc_cfg, recv_events

from warpsync_client import protocol as P

pytestmark = pytest.mark.timeout(120)


class _Recorder:
    def __init__(self, name, wants):
        self.name = name
        self.calls = []
        if wants is not None:
            self.wants_samples = wants

    def open(self, meta, now_s):
        self.calls.append(("open", meta.stream))
        return []

    def samples(self, meta, chunk):
        self.calls.append(("samples", chunk.seq))
        return []

    def tick(self, now_s):
        return []

    def close(self, stream, now_s):
        self.calls.append(("close", stream))
        return []


def test_stages_that_do_not_want_samples_are_skipped_per_chunk(start_service, tmp_path):
    quiet, default, explicit = _Recorder("quiet", False), _Recorder("default", None), _Recorder("explicit", True)
    rs = start_service(ipc_cfg(tmp_path), stages=[quiet, default, explicit])
    assert rs.open(P.StreamMeta("mic", "audio", 1000.0, (1,), "f4"))["ok"]
    push = rs.push()
    for seq in range(5):
        push.send_multipart(P.encode_chunk("mic", seq, 1.0 + seq * 0.01, np.zeros((10, 1), np.float32)))
    ack = rs.request("close", stream="mic", seq=4, timeout_s=10.0)
    assert ack["received"] == 5
    assert quiet.calls == [("open", "mic"), ("close", "mic")]
    want = [("open", "mic")] + [("samples", s) for s in range(5)] + [("close", "mic")]
    assert default.calls == want and explicit.calls == want
    push.close()


def test_only_stages_without_samples_still_publish_status(start_service, tmp_path):
    # the default status stage takes no chunks; the service still stores them and reports them
    import dataclasses

    from warpsync.config import Config

    cfg = ipc_cfg(tmp_path)
    cfg = dataclasses.replace(
        cfg,
        engine=dataclasses.replace(cfg.engine, enabled=False),
        speech=dataclasses.replace(cfg.speech, enabled=False),
    )
    assert isinstance(cfg, Config)
    rs = start_service(cfg)
    assert not rs.service._samples_wanted()
    sub = rs.sub(b"stream.status")
    assert rs.open(P.StreamMeta("mic", "audio", 1000.0, (1,), "f4"))["ok"]
    push = rs.push()
    for seq in range(3):
        push.send_multipart(P.encode_chunk("mic", seq, 1.0 + seq * 0.01, np.ones((10, 1), np.float32)))
    ack = rs.request("close", stream="mic", seq=2, timeout_s=10.0)
    assert ack["received"] == 3
    _, hdr = recv_events(sub, lambda t, h: h.get("closed"))
    assert hdr["chunks"] == 3 and hdr["samples"] == 30
    w = rs.service.buffer("mic").read_time(0.0, 10.0)
    np.testing.assert_array_equal(w.data, np.ones((30, 1), np.float32))  # stored without any stage asking
    push.close()
