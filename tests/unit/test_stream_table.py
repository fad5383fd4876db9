"""The worker-side StreamTable: sequence, time, NaN and reopen checks, and its bounds (pure, no sockets)."""

from __future__ import annotations

import numpy as np
import pytest
from warpsync_client import protocol as P

from warpsync.errors import ProtocolError
from warpsync.ingest.streams import SeqBackwards, StreamTable, has_nonfinite, meta_equal

META = P.StreamMeta("mic", "audio", 100.0, (2,), "f4")


def hdr(seq, t, n=4, sid="mic"):
    return {"v": 1, "type": "chunk", "stream": sid, "seq": seq, "t": t, "n": n}


def payload(n=4, fill=1.0):
    return np.full((n, 2), fill, np.float32).tobytes()


def table(**kw):
    tb = StreamTable(**kw)
    tb.open(META)
    return tb


def reason(fn):
    with pytest.raises(ProtocolError) as ei:
        fn()
    return ei.value.reason


def test_gaps_are_counted_and_kept():
    tb = table()
    assert tb.chunk(hdr(0, 0.0), payload()).gap == 0
    acc = tb.chunk(hdr(3, 0.04), payload())
    assert acc.gap == 2 and not acc.time_jump


def test_duplicate_and_reordered_are_told_apart():
    tb = table()
    for s in (0, 1, 3):
        tb.chunk(hdr(s, s * 0.04), payload())
    with pytest.raises(SeqBackwards) as ei:
        tb.chunk(hdr(3, 0.2), payload())
    assert ei.value.kind == "duplicate" and ei.value.reason == "seq_backwards"
    with pytest.raises(SeqBackwards) as ei:
        tb.chunk(hdr(2, 0.2), payload())
    assert ei.value.kind == "reordered"
    assert tb.get("mic").last_seq == 3  # state unchanged by rejections


def test_time_backwards_rejected_forwards_flagged():
    tb = table(max_time_jump_s=1.0)
    tb.chunk(hdr(0, 10.0), payload())  # ends at 10.04
    assert reason(lambda: tb.chunk(hdr(1, 8.0), payload())) == "time_jump"
    assert not tb.chunk(hdr(1, 10.5), payload()).time_jump  # 0.46 s late: jitter, not a jump
    assert tb.chunk(hdr(2, 20.0), payload()).time_jump
    assert not tb.chunk(hdr(5, 40.0), payload()).time_jump  # after a seq gap the time gap is explained


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_policies(bad):
    x = np.ones((4, 2), np.float32)
    x[2, 0] = bad
    assert reason(lambda: table(nan_policy="reject").chunk(hdr(0, 0.0), x.tobytes())) == "non_finite"
    acc = table(nan_policy="zero").chunk(hdr(0, 0.0), x.tobytes())
    fixed = np.frombuffer(acc.payload, np.float32).reshape(4, 2)
    assert acc.nonfinite and acc.modified and fixed[2, 0] == 0 and np.isfinite(fixed).all()
    acc = table(nan_policy="keep").chunk(hdr(0, 0.0), x.tobytes())
    assert acc.nonfinite and not acc.modified and bytes(acc.payload) == x.tobytes()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_has_nonfinite_handles_overflowing_finite_sums():
    big = np.full(1000, np.finfo(np.float32).max, np.float32)  # sum overflows, values are finite
    assert not has_nonfinite(big)
    big[-1] = np.nan
    assert has_nonfinite(big)
    assert not has_nonfinite(np.array([1, 2], np.int16))


def test_reopen_same_resumes_different_rejected():
    tb = table()
    tb.chunk(hdr(0, 0.0), payload())
    tb.close("mic")
    assert reason(lambda: tb.chunk(hdr(1, 0.04), payload())) == "stream_closed"
    assert tb.open(META).last_seq == 0
    other = P.StreamMeta("mic", "audio", 200.0, (2,), "f4")
    assert not meta_equal(META, other)
    with pytest.raises(ProtocolError, match="rate_hz 100.0 != 200.0") as ei:
        tb.open(other)
    assert ei.value.reason == "reopen_mismatch"


def test_max_streams_forgets_closed_ones_first():
    tb = StreamTable(max_streams=2)
    tb.open(P.StreamMeta("a", "sensor", 10.0))
    tb.open(P.StreamMeta("b", "sensor", 10.0))
    assert reason(lambda: tb.open(P.StreamMeta("c", "sensor", 10.0))) == "too_many_streams"
    tb.close("a")
    tb.open(P.StreamMeta("c", "sensor", 10.0))
    assert "a" not in tb and len(tb) == 2


def test_unknown_stream_and_payload_checks():
    tb = table()
    assert reason(lambda: tb.chunk(hdr(0, 0.0, sid="zz"), payload())) == "unknown_stream"
    assert reason(lambda: tb.chunk(hdr(0, 0.0), payload()[:-1])) == "size_mismatch"
    assert reason(lambda: tb.chunk({"v": 1, "type": "chunk", "seq": 0}, payload())) == "missing_field"


def test_resume_seq_from_the_service_after_a_restart():
    tb = StreamTable()
    tb.open(META, resume_seq=41)
    assert reason(lambda: tb.chunk(hdr(41, 0.0), payload())) == "seq_backwards"
    assert tb.chunk(hdr(42, 0.0), payload()).gap == 0
