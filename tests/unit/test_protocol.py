"""Wire protocol v1: round trips over random dtypes and shapes, and decoders that raise nothing but
`ProtocolError` on any input (the vectors in test_vectors.py pin the exact bytes)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warpsync_client import ProtocolError
from warpsync_client import protocol as P

DTYPE_CODES = sorted(P.DTYPES)


@given(
    code=st.sampled_from(DTYPE_CODES),
    shape=st.lists(st.integers(1, 4), max_size=3),
    n=st.integers(1, 9),
    big_endian=st.booleans(),
    strided=st.booleans(),
    seq=st.integers(0, 2**63 - 1),
    t=st.floats(allow_nan=False, allow_infinity=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunk_round_trip(code, shape, n, big_endian, strided, seq, t, seed):
    rng = np.random.default_rng(seed)
    dt = P.DTYPES[code]
    values = (rng.standard_normal((n * 2, *shape)) * 100).astype(dt)
    arr = values[::2] if strided else values[:n]  # a non-contiguous view must be sent by value
    if big_endian:
        arr = arr.astype(dt.newbyteorder(">"))
    meta = P.StreamMeta("s", "sensor", 10.0, tuple(shape), code)
    frames = P.encode_chunk("s", seq, t, arr)
    kind, hdr, payload = P.decode_ingest([bytes(memoryview(f)) for f in frames])
    chunk = P.decode_chunk(hdr, payload, meta)
    assert (kind, chunk.seq, chunk.t_dev_s, chunk.n) == ("chunk", seq, t, n)
    got = chunk.array(meta)
    assert got.dtype == dt and got.shape == (n, *shape)
    np.testing.assert_array_equal(got, arr)


def _all_decoders(frames: list[bytes]) -> None:
    meta = P.StreamMeta("s", "sensor", 10.0, (2,), "f4")
    for fn in (
        lambda: P.decode_ingest(frames),
        lambda: P.decode_event(frames),
        lambda: P.decode_request(frames[0]),
        lambda: P.decode_reply(frames[0]),
    ):
        try:
            fn()
        except ProtocolError as exc:
            assert exc.reason in P.REASONS
    try:
        kind, hdr, payload = P.decode_ingest(frames)
        if kind == "open":
            P.decode_open(hdr)
        elif kind == "chunk":
            P.decode_chunk(hdr, payload, meta)
        else:
            P.decode_close(hdr)
    except ProtocolError as exc:
        assert exc.reason in P.REASONS
    assert P.peek_request_id(frames[0]) is None or isinstance(P.peek_request_id(frames[0]), int)


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=3))
def test_random_bytes_only_raise_protocol_errors(frames):
    _all_decoders(frames)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8), st.binary(max_size=8)
)
_values = st.recursive(
    _scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8
)
_keys = st.sampled_from(
    [
        "v",
        "type",
        "stream",
        "modality",
        "rate_hz",
        "shape",
        "dtype",
        "seq",
        "t",
        "n",
        "dur",
        "cmd",
        "id",
        "ok",
        "error",
        "event",
        "timeout_s",
        "meta",
        "units",
    ]
)


@given(st.dictionaries(_keys, _values, max_size=10), st.binary(max_size=16))
def test_random_headers_only_raise_protocol_errors(hdr, payload):
    hdr = {"v": 1, **hdr} if hdr.get("v") is None else hdr
    _all_decoders([msgpack.packb(hdr, use_bin_type=True), payload])


def test_unpack_limits_hold_against_lying_lengths_and_nesting():
    # a str32 header that claims 4 GiB, and an array nested 10000 deep: refused, never allocated or recursed
    with pytest.raises(ProtocolError) as err:
        P.decode_ingest([b"\x81\xa1v\xdb\xff\xff\xff\xff"])
    assert err.value.reason == "not_msgpack"
    with pytest.raises(ProtocolError) as err:
        P.decode_ingest([b"\x81\xa1v" + b"\x91" * 10000 + b"\x01"])
    assert err.value.reason == "not_msgpack"
    with pytest.raises(ProtocolError) as err:  # a map with more entries than the limit
        P.decode_ingest([msgpack.packb({f"k{i}": i for i in range(300)} | {"v": 1})])
    assert err.value.reason == "not_msgpack"


def test_stream_ids():
    ok = ["a", "cam1", "rig-a/cam_1.flow:v2", "x" * 128]
    bad = ["", "x" * 129, "cam 1", "cam1\n", "caméra", "a\x00"]
    for sid in ok:
        assert P.decode_close({"v": 1, "stream": sid, "seq": 0}).stream == sid
    for sid in bad:
        with pytest.raises(ProtocolError) as err:
            P.decode_close({"v": 1, "stream": sid, "seq": 0})
        assert err.value.reason == "bad_stream_id"


def test_event_payload_convention():
    arr = np.arange(6, dtype=">i4").reshape(2, 3)  # big-endian input goes out little-endian
    topic, hdr, raw = P.decode_event([bytes(memoryview(f)) for f in P.encode_event("x.y", {"a": 1}, arr, "s1")])
    assert topic == "x.y/s1" and hdr["payload_dtype"] == "i4" and hdr["payload_shape"] == [2, 3]
    np.testing.assert_array_equal(P.event_payload(hdr, raw), arr)
    assert P.event_payload({"v": 1, "event": "x"}, b"\x01\x02") == b"\x01\x02"  # undescribed: raw bytes
    assert P.event_payload({"v": 1, "event": "x"}, None) is None
    with pytest.raises(ProtocolError) as err:
        P.encode_event("x", {}, np.zeros(2, np.complex64))
    assert err.value.reason == "bad_dtype"
    with pytest.raises(ProtocolError) as err:
        P.event_payload({"payload_dtype": "f4", "payload_shape": [True]}, b"\x00" * 4)
    assert err.value.reason == "bad_shape"


def test_event_headers_may_be_larger_than_ingest_headers():
    body = {"words": [{"w": f"word{i}", "t0_s": i * 0.1, "t1_s": i * 0.1 + 0.05} for i in range(2000)]}
    frames = P.encode_event("speech.words", body, stream="mic1")
    assert len(frames[1]) > P.DEFAULT_LIMITS.max_header_bytes
    _, hdr, _ = P.decode_event(frames)
    assert len(hdr["words"]) == 2000


def test_control_requests_and_replies():
    frame = P.encode_request("ping", 7)
    assert P.peek_request_id(frame) == 7 and P.peek_request_id(b"\xc1") is None
    req = P.decode_request(frame)
    assert (req.cmd, req.id) == ("ping", 7)
    assert P.decode_request(P.encode_request("status")).id is None
    close, timeout_s = P.decode_close_request(P.decode_request(P.encode_close_request("s", 3)).header)
    assert (close.last_seq, timeout_s) == (3, 5.0)
    rows = [{"stream": f"s{i}", "chunks": i, "rate_measured_hz": 1.5} for i in range(1024)]
    rep = P.decode_reply(P.encode_reply(9, {"streams": rows}))  # 1024 streams: larger than an ingest header
    assert rep.ok and rep.id == 9 and len(rep.body["streams"]) == 1024
    err = P.decode_reply(P.encode_error_reply(None, "timeout", "slow"))
    assert (err.ok, err.id, err.reason, err.message) == (False, None, "timeout", "slow")
    with pytest.raises(ProtocolError) as exc:
        P.decode_reply(msgpack.packb({"v": 1, "ok": True, "id": "7"}))
    assert exc.value.reason == "bad_field"


def test_open_request_carries_the_open_header_fields():
    meta = P.StreamMeta("cam1", "video", 30.0, (4, 4), "u1", "", "clk", "rig", {"lens": "wide"})
    req = P.decode_request(P.encode_open_request(meta, 1))
    assert P.decode_open(req.header) == meta
    ingest = msgpack.unpackb(P.encode_open(meta)[0])
    assert [k for k in req.header if k not in ("cmd", "id")] == [k for k in ingest if k != "type"]


@given(
    stream=st.from_regex(P.STREAM_ID_RE),
    seq=st.integers(0, 2**63 - 1),
    t=st.floats(allow_nan=False, allow_infinity=False),
    n=st.integers(1, 2**22),
    dur=st.none() | st.floats(0, 1e9),
)
def test_fast_chunk_header_encoder_gives_the_same_bytes(stream, seq, t, n, dur):
    assert P.ChunkHeaderEncoder(stream)(seq, t, n, dur) == P.encode_chunk_header(stream, seq, t, n, dur)
