"""The whole pipeline in-process over real sockets: control open -> PUSH chunks -> buffers/stages -> events,
the end-of-stream acknowledgement, metrics over a real HTTP scrape, and worker restarts."""

from __future__ import annotations

import os
import signal
import urllib.request

import numpy as np
import pytest
from warpsync_client import protocol as P

from service_harness import ipc_cfg, recv_events, wait_for

pytestmark = pytest.mark.timeout(120)


def _meta(sid="mic1", rate=1000.0, shape=(2,), dtype="f4", modality="audio", **kw):
    return P.StreamMeta(sid, modality, rate, shape, dtype, **kw)


def test_open_push_close_is_lossless_and_buffer_reads_by_time(start_service, tmp_path, rng):
    rs = start_service(ipc_cfg(tmp_path))
    sub = rs.sub(b"stream.")
    meta = _meta()
    rep = rs.open(meta)
    assert rep["ok"] and rep["resume_seq"] == -1 and rep["endpoint"] == rs.endpoints.ingest[0]
    topic, hdr = recv_events(sub, lambda t, h: t == "stream.open/mic1")
    assert hdr["rate_hz"] == 1000.0 and hdr["shape"] == [2]
    push = rs.push(rep["endpoint"])
    t = 10.0
    sent = []
    for seq in range(50):
        n = int(rng.integers(1, 40))
        x = rng.standard_normal((n, 2)).astype(np.float32)
        push.send_multipart(P.encode_chunk("mic1", seq, t, x))
        sent.append((t, x))
        t += n / 1000.0
    ack = rs.request("close", stream="mic1", seq=49, timeout_s=10.0)
    assert ack["ok"], ack
    assert ack["received"] == 50 and ack["rejected"] == 0
    buf = rs.service.buffer("mic1")
    allx = np.concatenate([x for _, x in sent])
    win = buf.read_index(0, buf.head)
    np.testing.assert_array_equal(win.data, allx)
    # a time-range read on the stream's own axis: [t0, t1) of chunk 10 exactly
    t0, x10 = sent[10]
    t1 = sent[11][0]
    w = buf.read_time(t0, t1)
    np.testing.assert_array_equal(w.data, x10)
    np.testing.assert_allclose(w.t_dev_s, t0 + np.arange(len(x10)) / 1000.0)
    _, st = recv_events(sub, lambda t, h: t == "stream.status/mic1" and h["closed"])
    assert st["chunks"] == 50 and st["samples"] == len(allx) and st["gaps"] == 0
    assert rs.metric("warpsync_ingest_messages_total", stream="mic1") == 50
    assert rs.metric("warpsync_ingest_bytes_total", stream="mic1") == allx.nbytes
    # re-open with the same metadata resumes the numbering
    rep2 = rs.open(meta)
    assert rep2["ok"] and rep2["resume_seq"] == 49
    push.close()
    sub.close()


def test_streams_status_ping_and_a_real_metrics_scrape(start_service, tmp_path):
    rs = start_service(ipc_cfg(tmp_path))
    assert rs.open(_meta("imu1", 200.0, (3,)))["ok"]
    push = rs.push()
    push.send_multipart(P.encode_chunk("imu1", 0, 1.0, np.ones((20, 3), np.float32)))
    push.send_multipart(P.encode_chunk("imu1", 3, 1.1, np.ones((20, 3), np.float32)))  # gap of 2
    assert rs.request("close", stream="imu1", seq=3)["ok"]
    ping = rs.request("ping")
    assert ping["ok"] and isinstance(ping["t_host_s"], float)
    status = rs.request("status")
    assert status["ok"] and status["streams"] == 1 and status["workers"][0]["alive"]
    assert status["workers"][0]["messages"] == 2
    streams = rs.request("streams")["streams"]
    (s,) = streams
    assert s["stream"] == "imu1" and s["chunks"] == 2 and s["gaps"] == 2 and s["last_seq"] == 3
    assert s["state"] == "closed" and s["worker"] == 0
    rs.flush()
    body = urllib.request.urlopen(rs.endpoints.metrics, timeout=10).read().decode()
    assert 'warpsync_ingest_messages_total{stream="imu1"} 2.0' in body
    assert 'warpsync_ingest_gaps_total{stream="imu1"} 2.0' in body
    assert 'warpsync_worker_up{worker="0"} 1.0' in body
    assert "warpsync_ingest_to_publish_latency_seconds_count" in body
    assert 'warpsync_ingest_rejected_total{reason="not_msgpack"} 0.0' in body
    push.close()
