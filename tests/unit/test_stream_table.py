"""The worker-side StreamTable: sequence, time, NaN and reopen checks, and its bounds (pure, no sockets)."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.errors import ProtocolError
from warpsync.ingest.streams import SeqBackwards, StreamTable, has_nonfinite, meta_equal
from warpsync_client import protocol as P

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


@pytest.mark.parametrize("code", ["f2", "f4", "f8"])
@pytest.mark.parametrize("n_bytes", [65536 - 8, 65536, 1 << 20])
def test_has_nonfinite_agrees_with_numpy_on_both_sides_of_the_large_size(rng, code, n_bytes):
    x = (rng.standard_normal(n_bytes // np.dtype(code).itemsize) * 10).astype(code)
    assert has_nonfinite(x) is False
    for bad in (np.nan, -np.inf):
        y = x.copy()
        y[rng.integers(len(y))] = bad
        assert has_nonfinite(y) is True
        strided = y[::2]  # not contiguous: the sum path
        assert has_nonfinite(strided) is (not np.isfinite(strided).all())


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


def _state(tb, sid="mic"):
    st = tb.get(sid)
    return (st.last_seq, st.seen_mask, st.next_t_s) if st is not None else None


def test_chunk_fast_agrees_with_the_general_path(rng):
    """`chunk_fast` (the worker's hot path) either declines with nothing changed, or does exactly what
    `chunk_unchecked` does; it accepts every plain chunk. Random headers: valid, mistyped, out of range,
    extra fields, sequence and time going both ways, wrong sizes, unknown and closed streams."""
    fast, ref = table(max_time_jump_s=0.5), table(max_time_jump_s=0.5)
    ref_kw = {"v": 1, "type": "chunk"}
    seq, t = 0, 0.0
    accepted = declined = 0
    for i in range(3000):
        u = rng.random()
        n = int(rng.integers(1, 8))
        h = {**ref_kw, "stream": "mic", "seq": seq, "t": t, "n": n}
        nbytes = n * 8
        if u < 0.05:
            h["seq"] = seq - int(rng.integers(1, 4))  # duplicate / reordered
        elif u < 0.1:
            h["seq"] = seq + int(rng.integers(1, 5))  # gap
            if rng.random() < 0.5:
                h["t"] = t + float(rng.uniform(0.6, 2.0))  # ... with time forwards: not a jump (chunks missing)
        elif u < 0.13:
            h["t"] = t - float(rng.uniform(0.1, 2.0))  # backwards: rejected beyond 0.5 s
        elif u < 0.16:
            h["t"] = t + float(rng.uniform(0.1, 2.0))  # forwards: flagged beyond 0.5 s without a gap
        elif u < 0.18:
            nbytes += 8 * int(rng.choice([-1, 1]))  # size mismatch
        elif u < 0.2:
            h["dur"] = 0.1
        elif u < 0.22:
            h["extra"] = [1, 2]
        elif u < 0.24:
            odd = [True, "1", None, 1.5, 7, [0], -1, 2**63]
            h[str(rng.choice(["seq", "t", "n", "stream"]))] = odd[int(rng.integers(len(odd)))]
        elif u < 0.26:
            del h[str(rng.choice(["seq", "t", "n", "stream"]))]
        elif u < 0.27:
            h["stream"] = "nobody"
        elif u < 0.28:
            h["t"] = float(rng.choice([np.nan, np.inf]))
        elif u < 0.29:
            h["n"] = 0
        pl = bytes(max(nbytes, 0))
        before = _state(fast)
        got = fast.chunk_fast(dict(h), len(pl))
        try:
            want = ref.chunk_unchecked(dict(h), pl)
        except (ProtocolError, TypeError, ValueError):
            want = None
        if got is None:
            declined += 1
            assert _state(fast) == before  # nothing changed ...
            if want is not None:  # ... and the general path, taken next, does what it did
                fast.chunk_unchecked(dict(h), pl)
        else:
            accepted += 1
            assert want is not None, h
            st, sid, s, tt, nn, gap, jump = got
            assert (sid, s, tt, nn, gap, jump) == (want[1], want[2], want[3], want[4], want[7], want[8])
            assert st is fast.get("mic")
            assert len(h) == 6, "only the six fields of a plain chunk header take the fast path"
        assert _state(fast) == _state(ref)
        if want is not None:
            seq, t = want[2] + 1, want[3] + want[4] / META.rate_hz
    assert accepted > 2000 and declined > 200
    fast.close("mic")
    assert fast.chunk_fast({**ref_kw, "stream": "mic", "seq": seq, "t": t, "n": 1}, 8) is None  # closed
