"""The whole pipeline in-process over real sockets: control open -> PUSH chunks -> buffers/stages -> events,
the end-of-stream acknowledgement, metrics over a real HTTP scrape, and worker restarts."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import numpy as np
import pytest
import zmq
from service_harness import ipc_cfg, recv_events, wait_for
from zmq.utils.monitor import recv_monitor_message

from warpsync_client import protocol as P

pytestmark = pytest.mark.timeout(120)


def _meta(sid="mic1", rate=1000.0, shape=(2,), dtype="f4", modality="audio", **kw):
    return P.StreamMeta(sid, modality, rate, shape, dtype, **kw)


@pytest.mark.parametrize("mode", ["process", "inline"])
def test_open_push_close_is_lossless_and_buffer_reads_by_time(start_service, tmp_path, rng, mode):
    rs = start_service(ipc_cfg(tmp_path, worker_mode=mode))
    sub = rs.sub(b"stream.")
    meta = _meta()
    rep = rs.open(meta)
    assert rep["ok"] and rep["resume_seq"] == -1 and rep["endpoint"] == rs.endpoints.ingest[0]
    _topic, hdr = recv_events(sub, lambda t, h: t == "stream.open/mic1")
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


def _acc_closed_at_4_and_reopened(rs):
    """Stream ``acc``: chunks 0-4 pushed, closed (acknowledged), re-opened to resume at seq 4. Returns the
    PUSH socket, its connection monitor (`_reconnected`) and the chunk sent."""
    assert rs.open(_meta("acc", 100.0, (3,)))["ok"]
    push = rs.push()
    mon = push.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
    x = np.ones((10, 3), np.float32)
    for seq in range(5):
        push.send_multipart(P.encode_chunk("acc", seq, seq * 0.1, x))
    assert rs.request("close", stream="acc", seq=4)["ok"]
    assert rs.open(_meta("acc", 100.0, (3,)))["resume_seq"] == 4
    return push, mon, x


def _restarted_and_resumed(rs, push, mon, x, first: int, received: int) -> None:
    """After worker 0 was made to die: it comes back (counted) and resumes ``acc`` at seq 4: a resent seq 4 is
    rejected as old, seqs `first`..9 are accepted, and the close acknowledges `received` chunks in all."""
    wait_for(lambda: rs.request("status")["workers"][0]["restarts"] == 1, 30, "restart")
    wait_for(lambda: rs.request("status")["workers"][0]["alive"], 30, "worker back")
    _reconnected(push, mon)
    push.send_multipart(P.encode_chunk("acc", 4, 0.4, x))
    for seq in range(first, 10):
        push.send_multipart(P.encode_chunk("acc", seq, seq * 0.1, x))
    ack = rs.request("close", stream="acc", seq=9)
    assert ack["ok"] and ack["received"] == received and ack["rejected"] == 1
    assert rs.metric("warpsync_worker_restarts_total", worker="0") == 1
    assert rs.metric("warpsync_worker_up", worker="0") == 1


def _reconnected(push, mon, timeout_s: float = 30.0) -> None:
    """Wait until `push` has lost its peer (the worker that died) and connected to the new one, then stop
    monitoring it. A chunk sent before the PUSH socket has seen the old peer go is queued on that peer's pipe
    and lost with it (as a real client's would be): waiting for the service's status alone left that to the
    scheduler, and the test failed under load."""
    lost = False
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not mon.poll(int(left * 1000)):
                raise TimeoutError("the PUSH socket did not reconnect to the restarted worker")
            event = recv_monitor_message(mon)["event"]
            lost = lost or event == zmq.EVENT_DISCONNECTED
            if lost and event == zmq.EVENT_CONNECTED:
                return
    finally:
        push.disable_monitor()
        mon.close(linger=0)


def test_killed_worker_is_restarted_counted_and_streams_resume(start_service, tmp_path):
    rs = start_service(ipc_cfg(tmp_path, worker_mode="process"))
    push, mon, x = _acc_closed_at_4_and_reopened(rs)
    slot = rs.service._pool.slots[0]
    old_pid = slot.process.pid
    os.kill(old_pid, signal.SIGKILL)
    # the restarted worker got the stream back with its sequence position: seq 5 continues, seq 4 is old
    _restarted_and_resumed(rs, push, mon, x, first=5, received=10)
    assert slot.process.pid != old_pid
    push.close()


def test_an_inline_worker_that_fails_is_restarted_counted_and_streams_resume(start_service, tmp_path, monkeypatch):
    """An inline worker raising out of `Worker.collect` (a bug; injected here, once) is treated as a dead
    worker process: restarted on the same address, counted, its streams given back at their sequence number;
    the service itself goes on."""
    from warpsync.ingest import worker as W

    real = W.Worker.collect
    armed = {"fail": False}

    def collect(self):
        if armed["fail"]:
            armed["fail"] = False
            raise RuntimeError("injected worker failure")
        return real(self)

    monkeypatch.setattr(W.Worker, "collect", collect)
    rs = start_service(ipc_cfg(tmp_path, worker_mode="inline"))
    push, mon, x = _acc_closed_at_4_and_reopened(rs)
    slot = rs.service._pool.slots[0]
    old = slot.worker
    armed["fail"] = True
    push.send_multipart(P.encode_chunk("acc", 5, 0.5, x))
    # seq 5 woke the worker that failed: a failed worker is not called again, so it was lost with its socket
    # (as a dead process's queue is); nothing else is: 0-4 and 6-9
    _restarted_and_resumed(rs, push, mon, x, first=6, received=9)
    assert slot.worker is not old
    push.close()


def test_two_workers_each_own_their_streams(start_service, tmp_path):
    rs = start_service(ipc_cfg(tmp_path, workers=2))
    assert len(set(rs.endpoints.ingest)) == 2
    owners = {}
    for i in range(8):
        sid = f"s{i}"
        rep = rs.open(_meta(sid, 100.0, (1,)))
        assert rep["ok"]
        owners[sid] = rep["endpoint"]
    assert set(owners.values()) == set(rs.endpoints.ingest)  # both workers used
    pushes = {ep: rs.push(ep) for ep in rs.endpoints.ingest}
    for sid, ep in owners.items():
        for seq in range(3):
            pushes[ep].send_multipart(P.encode_chunk(sid, seq, seq * 0.1, np.zeros((10, 1), np.float32)))
    for sid in owners:
        assert rs.request("close", stream=sid, seq=2)["received"] == 3
    st = rs.request("status")
    assert sum(w["messages"] for w in st["workers"]) == 24 and all(w["messages"] > 0 for w in st["workers"])
    # a PUSH-only open of a stream at the other worker is refused (affinity), not split across workers
    sid, ep = next(iter(owners.items()))
    other = next(e for e in rs.endpoints.ingest if e != ep)
    before = rs.metric("warpsync_ingest_rejected_total", reason="worker_mismatch")
    pushes[other].send_multipart(P.encode_open(_meta(sid, 100.0, (1,))))
    wait_for(
        lambda: rs.metric("warpsync_ingest_rejected_total", reason="worker_mismatch") == before + 1, 10, "mismatch"
    )
    for p in pushes.values():
        p.close()


class _Reader:
    """A stage reading its streams' buffers at a fixed number of samples per tick (a slow consumer)."""

    name = "reader"

    def __init__(self, per_tick: int | None) -> None:
        self.per_tick = per_tick
        self.got: dict[str, list] = {}

    def bind_buffers(self, lookup):
        self.lookup = lookup

    def open(self, meta, now_s):
        self.lookup(meta.stream).add_reader(self.name)
        self.got[meta.stream] = []
        return []

    def samples(self, meta, chunk):
        return []

    def tick(self, now_s):
        if self.per_tick:
            for sid in self.got:
                self.got[sid].append(self.lookup(sid).consume(self.name, self.per_tick).data)
        return []

    def close(self, stream, now_s):
        return []


def test_block_policy_backpressure_is_lossless_with_a_slow_reader(start_service, tmp_path, rng):
    reader = _Reader(per_tick=400)
    cfg = ipc_cfg(tmp_path, buffer_s=1.0, rcvhwm=10)  # 1000 samples of buffer at 1 kHz
    rs = start_service(cfg, stages=[reader])
    assert rs.open(_meta("m", 1000.0, (1,)))["ok"]
    push = rs.push(sndhwm=10)
    sent = []
    for seq in range(200):  # 20 000 samples: 20 buffers' worth, far more than fits
        x = rng.standard_normal((100, 1)).astype(np.float32)
        push.send_multipart(P.encode_chunk("m", seq, seq * 0.1, x))
        sent.append(x)
    ack = rs.request("close", stream="m", seq=199, wait_s=60, timeout_s=50.0)
    assert ack["ok"] and ack["received"] == 200 and ack["rejected"] == 0
    buf = rs.service.buffer("m")
    wait_for(lambda: buf.unread() == 0, 30, "reader catches up")
    got = np.concatenate(reader.got["m"])
    np.testing.assert_array_equal(got, np.concatenate(sent))  # every sample, once, in order
    assert buf.dropped_samples == 0
    assert rs.metric("warpsync_buffer_blocked_seconds_total") > 0
    push.close()


def test_drop_oldest_is_opt_in_and_counted(start_service, tmp_path):
    reader = _Reader(per_tick=None)  # never reads: everything beyond the buffer is dropped
    rs = start_service(ipc_cfg(tmp_path, buffer_s=0.5, full_policy="drop_oldest"), stages=[reader])
    assert rs.open(_meta("d", 1000.0, (1,)))["ok"]
    push = rs.push()
    for seq in range(20):
        push.send_multipart(P.encode_chunk("d", seq, seq * 0.1, np.zeros((100, 1), np.float32)))
    ack = rs.request("close", stream="d", seq=19)
    assert ack["received"] == 20
    assert rs.metric("warpsync_buffer_dropped_samples_total", stream="d") == 2000 - 500
    push.close()


def test_max_streams_bounds_the_table_and_tells_the_sender(start_service, tmp_path):
    rs = start_service(ipc_cfg(tmp_path, max_streams=2))
    assert rs.open(_meta("a", 100.0, (1,)))["ok"] and rs.open(_meta("b", 100.0, (1,)))["ok"]
    rep = rs.open(_meta("c", 100.0, (1,)))
    assert rep["ok"] is False and rep["error"]["reason"] == "too_many_streams"
    push = rs.push()
    push.send_multipart(P.encode_open(_meta("d", 100.0, (1,))))  # over PUSH: refused and counted
    wait_for(lambda: rs.metric("warpsync_ingest_rejected_total", reason="too_many_streams") >= 2, 10, "count")
    assert rs.request("close", stream="a", seq=-1)["ok"]  # a closed stream makes room
    assert rs.open(_meta("c", 100.0, (1,)))["ok"]
    assert {s["stream"] for s in rs.request("streams")["streams"]} == {"b", "c"}
    push.close()


def test_text_stream_captions_reach_the_text_buffer_and_stages(start_service, tmp_path):
    seen = []

    class Spy:
        name = "spy"

        def open(self, meta, now_s):
            return []

        def samples(self, meta, chunk):
            seen.append((chunk.seq, chunk.t_dev_s, chunk.data, chunk.duration_s))
            return []

        def tick(self, now_s):
            return []

        def close(self, stream, now_s):
            return []

    rs = start_service(ipc_cfg(tmp_path), stages=[Spy()])
    assert rs.open(P.StreamMeta("cap", "text", 0.0, (), "utf8"))["ok"]
    push = rs.push()
    push.send_multipart(P.encode_chunk("cap", 0, 1.0, "hello wörld", duration_s=0.8))
    push.send_multipart(P.encode_chunk("cap", 1, 2.5, "second"))
    push.send_multipart([P.encode_chunk_header("cap", 2, 3.0, 1), b"\xff\xfe not utf-8"])
    ack = rs.request("close", stream="cap", seq=2)
    assert ack["received"] == 2 and ack["rejected"] == 1
    assert seen == [(0, 1.0, "hello wörld", 0.8), (1, 2.5, "second", None)]
    assert [c[3] for c in rs.service.buffer("cap").read_time(0.0, 10.0)] == ["hello wörld", "second"]
    assert rs.metric("warpsync_ingest_rejected_total", reason="bad_text") == 1
    push.close()


@pytest.mark.parametrize("mode", ["process", "inline"])
def test_large_payloads_through_the_shared_memory_arena_and_its_fallback(start_service, tmp_path, rng, mode):
    """64 KiB+ payloads go through a worker process's arena (1 MiB here, so 320 KiB ones and those arriving
    while it is full fall back to socket frames), or, from an inline worker, are kept as the frames they
    arrived in: every byte arrives, in order, under a reading stage."""
    reader = _Reader(per_tick=10_000)
    cfg = ipc_cfg(tmp_path, buffer_s=3.0, shm_arena_bytes=1 << 20, worker_mode=mode)
    rs = start_service(cfg, stages=[reader])
    assert rs.open(_meta("cam", 10.0, (16384,)))["ok"]  # one sample = 64 KiB
    push = rs.push()
    sent, t = [], 0.0
    for seq in range(60):
        n = int(rng.integers(1, 6))
        x = rng.standard_normal((n, 16384)).astype(np.float32)
        push.send_multipart(P.encode_chunk("cam", seq, t, x))
        sent.append(x)
        t += n / 10.0
    ack = rs.request("close", stream="cam", seq=59, wait_s=60, timeout_s=50.0)
    assert ack["ok"] and ack["received"] == 60 and ack["rejected"] == 0
    buf = rs.service.buffer("cam")
    wait_for(lambda: buf.unread() == 0, 30, "reader catches up")
    np.testing.assert_array_equal(np.concatenate(reader.got["cam"]), np.concatenate(sent))
    slot = rs.service._pool.slots[0]
    if mode == "process":
        assert slot.released > 0  # the arena was used (and released back to the worker)
    else:
        assert slot.released == 0 and buf._kept  # no arena: the buffer holds the received frames
        assert all(not x.flags.writeable for x in buf._kept.values())
    push.close()


@pytest.mark.parametrize("mode", ["process", "inline"])
@pytest.mark.parametrize("nan_policy", ["reject", "zero", "keep"])
def test_large_non_finite_payloads_in_the_arena_follow_the_nan_policy(start_service, tmp_path, rng, nan_policy, mode):
    """A worker process copies a large payload into its arena and checks it in the same pass (an inline worker
    checks it where it lies): a rejected one gives its arena space back, a zero-filled one is stored fixed,
    a kept one as sent; every outcome is counted."""
    cfg = ipc_cfg(tmp_path, buffer_s=100.0, shm_arena_bytes=4 << 20, nan_policy=nan_policy, worker_mode=mode)
    rs = start_service(cfg)
    assert rs.open(_meta("big", 10.0, (16384,), dtype="f8"))["ok"]  # one sample = 128 KiB
    push = rs.push()
    sent, bad = [], []
    for seq in range(40):
        x = rng.standard_normal((2, 16384))
        if seq % 5 == 2:
            x[1, int(rng.integers(16384))] = [np.nan, np.inf, -np.inf][seq % 3]
            bad.append(seq)
        push.send_multipart(P.encode_chunk("big", seq, seq * 0.2, x))
        sent.append(x)
    ack = rs.request("close", stream="big", seq=39, wait_s=60, timeout_s=50.0)
    assert ack["ok"]
    kept = [x for s, x in enumerate(sent) if nan_policy != "reject" or s not in bad]
    assert ack["received"] == len(kept) and ack["rejected"] == (len(bad) if nan_policy == "reject" else 0)
    stored = rs.service.buffer("big").read_index(0, 10**9).data
    if nan_policy == "zero":
        kept = [np.where(np.isfinite(x), x, 0.0) for x in kept]
    np.testing.assert_array_equal(stored, np.concatenate(kept))
    rs.service.metrics.flush()
    if nan_policy == "reject":
        assert rs.metric("warpsync_ingest_rejected_total", reason="non_finite") == len(bad)
    else:
        assert rs.metric("warpsync_ingest_nonfinite_chunks_total", stream="big") == len(bad)
    assert (rs.service._pool.slots[0].released > 0) is (mode == "process")  # through the arena
    push.close()
