"""The worker's batch builder: small chunks accepted provisionally with one NaN/Inf check per run (and an
exact redo when the run holds one) must forward exactly what one-message-at-a-time validation forwards."""

from __future__ import annotations

from types import SimpleNamespace

import msgpack
import numpy as np
import pytest
import zmq

from warpsync.ingest.streams import StreamTable
from warpsync.ingest.worker import REC_CHUNK, PayloadArena, Worker, _Batch
from warpsync_client import protocol as P

METAS = [
    P.StreamMeta("a", "audio", 1000.0, (), "f4"),
    P.StreamMeta("b", "sensor", 200.0, (3,), "i2"),
    P.StreamMeta("c", "sensor", 100.0, (2,), "f8"),
    P.StreamMeta("txt", "text", 0.0, (), "utf8"),
]


class _Frame(bytes):
    """What the worker reads of a received zmq frame: its buffer (``memoryview(frame)``, ``frame.buffer``)
    and a bytes copy (``frame.bytes``)."""

    @property
    def buffer(self) -> memoryview:
        return memoryview(self)

    @property
    def bytes(self) -> bytes:
        return bytes(self)


def _worker(nan_policy: str) -> SimpleNamespace:
    w = SimpleNamespace(
        table=StreamTable(max_streams=8, nan_policy=nan_policy, max_time_jump_s=1.0),
        limits=P.DEFAULT_LIMITS,
        arena=None,
        spec=SimpleNamespace(index=0),
    )
    w._open = lambda *a: Worker._open(w, *a)
    return w


def _messages(rng, count: int) -> list[list[_Frame]]:
    """A mix of chunks (some with NaN/Inf, duplicates, gaps, time going back), opens, closes and garbage."""
    seq = {m.stream: 0 for m in METAS}
    t = {m.stream: 0.0 for m in METAS}
    out = [[_Frame(f) for f in P.encode_open(m)] for m in METAS]
    for _ in range(count):
        u = rng.random()
        m = METAS[int(rng.integers(len(METAS)))]
        sid = m.stream
        if u < 0.02:
            out.append([_Frame(b"\xc1not msgpack")])
            continue
        if u < 0.04:
            out.append([_Frame(f) for f in P.encode_close(sid, seq[sid] - 1)])
            continue
        if u < 0.06:
            out.append([_Frame(f) for f in P.encode_open(m)])  # re-open (resumes)
            continue
        if m.modality == "text":
            out.append([_Frame(f) for f in P.encode_chunk(sid, seq[sid], t[sid], f"caption {seq[sid]}")])
            seq[sid] += 1
            t[sid] += 0.5
            continue
        n = int(rng.integers(1, 40))
        x = (rng.standard_normal((n, *m.shape)) * 10).astype(m.dtype)
        if m.dtype.startswith("f") and rng.random() < 0.08:
            x.reshape(-1)[rng.integers(x.size)] = rng.choice([np.nan, np.inf, -np.inf])
        s = seq[sid]
        v = rng.random()
        if v < 0.05:
            s = max(0, s - 1 - int(rng.integers(3)))  # duplicate / reordered
        elif v < 0.1:
            s += int(rng.integers(1, 4))  # gap
        tt = t[sid] - 5.0 if rng.random() < 0.03 else t[sid]  # time going backwards: rejected
        out.append([_Frame(P.encode_chunk_header(sid, s, tt, n)), _Frame(x.tobytes())])
        if s >= seq[sid]:
            seq[sid] = s + 1
            t[sid] = tt + n / m.rate_hz
    for i in range(12):  # two frames, the header not msgpack / the wrong version / not a chunk
        sid = METAS[i % 3].stream
        bad = [b"\xc1", msgpack.packb({"v": 2, "type": "chunk", "stream": sid}), P.encode_close(sid, 0)[0]][i % 3]
        out.insert(int(rng.integers(len(METAS), len(out))), [_Frame(bad), _Frame(b"\0" * 8)])
    return out


def _forwarded(b: _Batch) -> tuple[list, bytes, list]:
    joined = b.joined if b.joined is not None else b"".join(bytes(x) for x in b.small)
    recs = msgpack.unpackb(msgpack.packb(b.records, use_bin_type=True), raw=False)
    for r in recs:  # arrival times are per message and identical in both runs; keep them
        if r[0] == REC_CHUNK:
            assert r[10] == len(bytes(joined[r[12] : r[12] + r[10]])) or r[11] != 1
    return recs, joined, [bytes(x.buffer if hasattr(x, "buffer") else x) for x in b.big]


@pytest.mark.parametrize("nan_policy", ["reject", "zero", "keep"])
def test_batched_checks_forward_exactly_what_per_message_validation_does(rng, nan_policy):
    msgs = _messages(rng, 600)
    # reference: every message validated on its own, NaN/Inf checked per chunk
    ref_w = _worker(nan_policy)
    ref = _Batch(ref_w, [])
    for i, frames in enumerate(msgs):
        ref.message(frames, False, float(i), False)
    want = _forwarded(ref)
    # batched: the same messages with segments ended at random points (as batch ends do)
    w = _worker(nan_policy)
    got_records: list = []
    got_joined = b""
    got_big: list = []
    i = 0
    while i < len(msgs):
        k = int(rng.integers(1, 80))
        b = _Batch(w, [])
        w.table.begin_segment()
        for j in range(i, min(i + k, len(msgs))):
            b.message(msgs[j], False, float(j), True)
        b.flush()
        w.table.end_segment()
        recs, joined, big = _forwarded(b)
        for r in recs:  # re-base joined-frame offsets onto one concatenation
            if r[0] == REC_CHUNK and r[11] == 1:
                r[12] += len(got_joined)
        got_records += recs
        got_joined += joined
        got_big += big
        i += k
    assert got_records == want[0]
    assert got_joined == want[1]
    assert got_big == want[2]
    kinds = {r[0] for r in got_records}
    assert any(r[0] == REC_CHUNK and r[1] == "txt" for r in got_records)
    assert REC_CHUNK in kinds and any(r[0] == 4 and r[2] == "non_finite" for r in got_records) == (
        nan_policy == "reject"
    )
    reasons = {r[2] for r in got_records if r[0] == 4}
    assert {"not_msgpack", "bad_version", "frame_count", "seq_backwards", "time_jump"} <= reasons
    if nan_policy != "reject":
        assert any(r[0] == REC_CHUNK and r[9] for r in got_records)  # non-finite chunks kept, flagged
    for m in METAS:  # the stream states end equal too
        a, b_ = ref_w.table.get(m.stream), w.table.get(m.stream)
        assert (a.last_seq, a.seen_mask, a.next_t_s, a.open) == (b_.last_seq, b_.seen_mask, b_.next_t_s, b_.open)


def test_a_finite_run_is_checked_once_over_the_joined_frame(rng, monkeypatch):
    import warpsync.ingest.worker as W

    calls = []
    real = W.has_nonfinite
    monkeypatch.setattr(W, "has_nonfinite", lambda arr: calls.append(arr.size) or real(arr))
    w = _worker("reject")
    b = _Batch(w, [])
    w.table.begin_segment()
    b.message([_Frame(f) for f in P.encode_open(METAS[0])], False, 0.0, True)
    for s in range(50):
        x = rng.standard_normal(16).astype("f4")
        b.message([_Frame(P.encode_chunk_header("a", s, s * 0.016, 16)), _Frame(x.tobytes())], False, 1.0, True)
    b.flush()
    w.table.end_segment()
    assert calls == [50 * 16]
    assert b.joined is not None and len(b.joined) == 50 * 16 * 4
    assert sum(1 for r in b.records if r[0] == REC_CHUNK) == 50


def test_records_of_commands_read_at_a_batch_start_survive_a_rollback(rng, zctx):
    """Commands read at the start of a batch (with an arena: releases, and opens from the control socket)
    append records before the first segment; a NaN/Inf in that segment rolls it back, and must not take
    those records with it. A real worker over inproc sockets."""
    from multiprocessing import shared_memory

    from warpsync.ingest.worker import CMD_OPEN, REC_OPEN, WorkerSpec

    shm = shared_memory.SharedMemory(create=True, size=PayloadArena.shm_bytes(1 << 20))
    up = zctx.socket(zmq.PULL)
    down = zctx.socket(zmq.PUSH)
    push = zctx.socket(zmq.PUSH)
    w = None
    try:
        up.bind("inproc://t-up")
        down.bind("inproc://t-down")
        spec = WorkerSpec(
            0,
            "inproc://t-in",
            "inproc://t-up",
            "inproc://t-down",
            1000,
            1 << 24,
            8,
            "reject",
            1.0,
            512,
            arena=shm.name,
            arena_bytes=1 << 20,
        )
        w = Worker(spec, zctx)
        w.bind()
        up.recv()  # hello
        push.connect("inproc://t-in")
        down.send(msgpack.packb([CMD_OPEN, P.open_header(METAS[0]), 7, None]))  # a control open, answered
        x = rng.standard_normal(16).astype("f4")
        bad = x.copy()
        bad[3] = np.nan
        for s, data in enumerate([x, bad, x]):
            push.send_multipart(P.encode_chunk("a", s, s * 0.016, data))
        assert down.poll(1000) == 0 and w.down.poll(1000) and w.pull.poll(1000)
        assert w._batch() == 3
        records = msgpack.unpackb(up.recv_multipart()[0], raw=False)
        assert any(r[0] == REC_OPEN and r[3] == 7 for r in records), records  # the open's answer is there
        assert [r[2] for r in records if r[0] == REC_CHUNK] == [0, 2]  # the bad chunk alone rejected
    finally:
        if w is not None:
            w.close()
        for s in (up, down, push):
            s.close(linger=0)
        shm.close()
        shm.unlink()
