"""Bad input over a real socket: each message is rejected with its reason counted, the worker stays alive
(no restart), and a good stream on the same worker keeps flowing afterwards."""

from __future__ import annotations

import dataclasses
import threading

import msgpack
import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry
from service_harness import RunningService, ipc_cfg, recv_events, wait_for

from warpsync.server import Service
from warpsync_client import protocol as P

pytestmark = pytest.mark.timeout(120)

MAX_MSG = 1 << 20


def pack(d):
    return msgpack.packb(d, use_bin_type=True)


def chunk_hdr(**kw):
    d = {"v": 1, "type": "chunk", "stream": "good", "seq": 0, "t": 0.0, "n": 4}
    d.update(kw)
    return d


F4x4 = np.zeros((4, 2), np.float32).tobytes()


@pytest.fixture(scope="module", params=["process", "inline"])
def svc(tmp_path_factory, request):
    """The service with each kind of ingest worker (`ingest.worker_mode`)."""
    ctx = zmq.Context()
    cfg = ipc_cfg(tmp_path_factory.mktemp("bad"), worker_mode=request.param)
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, max_message_bytes=MAX_MSG))
    service = Service(cfg, CollectorRegistry())
    th = threading.Thread(target=service.run, daemon=True)
    th.start()
    assert service.ready.wait(60)
    rs = RunningService(service, th, ctx)
    meta = P.StreamMeta("good", "audio", 1000.0, (2,), "f4")
    assert rs.open(meta)["ok"]
    rs.good_seq = 0  # type: ignore[attr-defined]
    rs.good_t = 0.0  # type: ignore[attr-defined]
    yield rs
    rs.close()
    service.request_stop()
    th.join(30)
    assert not th.is_alive()
    leaked = [s for s in list(getattr(ctx, "_sockets", [])) if not s.closed]
    ctx.destroy(linger=0)
    assert not leaked, f"{len(leaked)} socket(s) left open"


def send_good(rs, push):
    """One valid chunk of the good stream; returns once the service has processed it."""
    seq = rs.good_seq
    push.send_multipart(P.encode_chunk("good", seq, rs.good_t, np.ones((4, 2), np.float32)))
    rs.good_seq += 1
    rs.good_t += 4 / 1000.0
    wait_for(lambda: rs.service.streams.get("good").processed_seq >= seq, 10, "good chunk")


def open_frames(**kw):
    d = {"v": 1, "type": "open", "stream": "s", "modality": "audio", "rate_hz": 100.0, "shape": [2], "dtype": "f4"}
    d.update(kw)
    return [pack(d)]


CASES = {
    "not_msgpack": ([b"\xc1\xc1 not msgpack"], "not_msgpack"),
    "msgpack_not_a_map": ([pack([1, 2, 3])], "not_msgpack"),
    "wrong_frame_count": ([pack(chunk_hdr()), F4x4, b"extra"], "frame_count"),
    "chunk_without_payload": ([pack(chunk_hdr())], "frame_count"),
    "five_frames": ([pack(chunk_hdr()), F4x4, b"a", b"b", b"c"], "frame_count"),
    "unknown_version": ([pack(chunk_hdr(v=2)), F4x4], "bad_version"),
    "unknown_type": ([pack({"v": 1, "type": "hello"})], "bad_type"),
    "missing_field": ([pack({k: v for k, v in chunk_hdr().items() if k != "t"}), F4x4], "missing_field"),
    "mistyped_field": ([pack(chunk_hdr(seq="3")), F4x4], "bad_field"),
    "unknown_stream": ([pack(chunk_hdr(stream="nope")), F4x4], "unknown_stream"),
    "payload_size_mismatch": ([pack(chunk_hdr()), F4x4[:-4]], "size_mismatch"),
    "unsupported_dtype": (open_frames(stream="f2s", dtype="f2"), "bad_dtype"),
    "huge_declared_shape": (open_frames(stream="huge", shape=[1 << 20, 1 << 20]), "bad_shape"),
    "huge_n": ([pack(chunk_hdr(n=1 << 40)), F4x4], "bad_shape"),
    "header_too_large": ([pack(chunk_hdr(pad="x" * 20000)), F4x4], "header_too_large"),
    "payload_over_limit": ([pack(chunk_hdr(n=MAX_MSG // 8 + 1)), bytes(MAX_MSG + 8)], "payload_too_large"),
    "bad_stream_id": (open_frames(stream="no spaces allowed"), "bad_stream_id"),
    "bad_rate": (open_frames(stream="r", rate_hz=-5.0), "bad_rate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_message_is_rejected_counted_and_worker_survives(svc, case):
    frames, reason = CASES[case]
    push = svc.push()
    sub = svc.sub(b"stream.rejected")
    try:
        before = svc.metric("warpsync_ingest_rejected_total", reason=reason)
        push.send_multipart(frames)
        send_good(svc, push)  # same connection, same worker: processed after the bad one
        wait_for(lambda: svc.metric("warpsync_ingest_rejected_total", reason=reason) == before + 1, 10, reason)
        _, ev = recv_events(sub, lambda t, h: h["reason"] == reason)
        assert ev["count"] >= 1 and ev["message"]
        st = svc.request("status")
        assert st["workers"][0]["alive"] and st["workers"][0]["restarts"] == 0
    finally:
        push.close()
        sub.close()


def _chunk(seq, t, x=None):
    return P.encode_chunk("good", seq, t, np.ones((4, 2), np.float32) if x is None else x)


def test_nan_and_inf_rejected_under_default_policy(svc):
    push = svc.push()
    try:
        before = svc.metric("warpsync_ingest_rejected_total", reason="non_finite")
        x = np.ones((4, 2), np.float32)
        x[1, 1] = np.nan
        push.send_multipart(_chunk(svc.good_seq, svc.good_t, x))
        x[1, 1] = np.inf
        push.send_multipart(_chunk(svc.good_seq + 1, svc.good_t, x))
        svc.good_seq += 2
        send_good(svc, push)
        assert svc.metric("warpsync_ingest_rejected_total", reason="non_finite") == before + 2
    finally:
        push.close()


def test_seq_backwards_duplicate_and_reordered(svc):
    push = svc.push()
    try:
        send_good(svc, push)
        last = svc.good_seq - 1
        before = svc.metric("warpsync_ingest_rejected_total", reason="seq_backwards")
        dup0 = svc.service.streams.get("good").duplicates
        push.send_multipart(_chunk(last, svc.good_t))  # duplicate of the last accepted
        svc.good_seq += 1  # leave a hole at `last + 1` ...
        send_good(svc, push)
        push.send_multipart(_chunk(last + 1, svc.good_t))  # ... and fill it late: reordered
        send_good(svc, push)
        e = svc.service.streams.get("good")
        assert e.duplicates == dup0 + 1 and e.reordered >= 1 and e.gaps >= 1
        assert svc.metric("warpsync_ingest_rejected_total", reason="seq_backwards") == before + 2
        assert svc.metric("warpsync_ingest_duplicates_total", stream="good") >= 1
    finally:
        push.close()


def test_timestamp_jumps(svc):
    push = svc.push()
    try:
        send_good(svc, push)
        before = svc.metric("warpsync_ingest_rejected_total", reason="time_jump")
        push.send_multipart(_chunk(svc.good_seq, svc.good_t - 5.0))  # 5 s backwards: rejected (seq unused)
        svc.good_t += 3.0  # 3 s forwards with no seq gap: kept, counted as a jump
        jumps0 = svc.metric("warpsync_ingest_time_jumps_total", stream="good")
        send_good(svc, push)
        assert svc.metric("warpsync_ingest_rejected_total", reason="time_jump") == before + 1
        assert svc.metric("warpsync_ingest_time_jumps_total", stream="good") == jumps0 + 1
    finally:
        push.close()


def test_reopen_with_different_metadata_is_rejected_and_told(svc):
    push = svc.push()
    try:
        before = svc.metric("warpsync_ingest_rejected_total", reason="reopen_mismatch")
        push.send_multipart(open_frames(stream="good", rate_hz=44100.0))  # over PUSH: counted
        send_good(svc, push)
        assert svc.metric("warpsync_ingest_rejected_total", reason="reopen_mismatch") == before + 1
        # over control: told
        rep = svc.open(P.StreamMeta("good", "audio", 8000.0, (2,), "f4"))
        assert rep["ok"] is False and rep["error"]["reason"] == "reopen_mismatch"
        assert "different metadata" in rep["error"]["message"]
        # and control tells the sender about bad metadata too
        rep = svc.open(P.StreamMeta("x", "audio", 8000.0, (2,), "f2"))
        assert rep["ok"] is False and rep["error"]["reason"] == "bad_dtype"
        send_good(svc, push)  # the good stream is untouched
    finally:
        push.close()


def test_message_beyond_zmq_maxmsgsize_drops_the_peer_not_the_worker(svc):
    big = svc.push()
    try:
        big.send_multipart([pack(chunk_hdr()), bytes(4 * MAX_MSG)])  # libzmq cuts this connection
        push = svc.push()
        try:
            send_good(svc, push)
            assert svc.request("status")["workers"][0]["restarts"] == 0
        finally:
            push.close()
    finally:
        big.close()


def test_malformed_control_requests_get_error_replies(svc):
    ctl = svc.control
    ctl.send(b"\xc1 junk")
    rep = svc.reply(None)
    assert rep["ok"] is False and rep["error"]["reason"] == "not_msgpack"
    ctl.send(pack({"v": 7, "cmd": "ping", "id": 5}))
    rep = svc.reply(5)
    assert rep["error"]["reason"] == "bad_version"
    ctl.send(pack({"v": 1, "id": 6}))
    assert svc.reply(6)["error"]["reason"] == "missing_field"
    ctl.send(pack({"v": 1, "cmd": "reboot", "id": 7}))
    assert svc.reply(7)["error"]["reason"] == "unknown_command"
    ctl.send(pack({"v": 1, "cmd": "close", "id": 8, "stream": "nope", "seq": 0}))
    assert svc.reply(8)["error"]["reason"] == "unknown_stream"
    ctl.send_multipart([b"a", b"b"])
    assert svc.reply(None)["error"]["reason"] == "frame_count"
    assert svc.request("ping")["ok"]


def test_control_via_req_envelope(svc):
    req = svc.ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    try:
        req.connect(svc.endpoints.control)
        req.send(P.encode_request("ping", 42))
        assert req.poll(10000)
        rep = P.decode_reply(req.recv())
        assert rep.ok and rep.id == 42 and "t_host_s" in rep.body
    finally:
        req.close()


def test_close_times_out_when_chunks_never_arrive(svc):
    rep = svc.request("close", stream="good", seq=svc.good_seq + 100, timeout_s=0.3)
    assert rep["ok"] is False and rep["error"]["reason"] == "timeout"
