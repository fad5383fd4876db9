"""The byte-exact vectors in clients/protocol/vectors/: our encoder reproduces every valid message's bytes from
its fields, our decoder yields the fields, and every invalid message fails with its stated reason."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from warpsync_client import ProtocolError
from warpsync_client import protocol as P

VECTORS = Path(__file__).resolve().parents[2] / "clients" / "protocol" / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    doc = json.loads((VECTORS / name).read_text())
    assert doc["protocol_version"] == P.VERSION
    return doc["vectors"]


INGEST = _load("ingest.json")
CONTROL = _load("control.json")
EVENTS = _load("events.json")
INVALID = _load("invalid.json")
OPENS = {v["name"]: P.decode_open(v["header"]) for v in INGEST if v["name"].startswith("open_")}


def _frames(v: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(h) for h in v["frames"]]


def _same(a: Any, b: Any) -> bool:
    """Equal *and* of the same JSON type: 1 and 1.0 differ (msgpack int vs float64)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _array(desc: dict[str, Any]) -> np.ndarray:
    return np.array(desc["values"], dtype=P.DTYPES[desc["dtype"]]).reshape(desc["shape"])


def test_vector_files_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("warpsync_vectors_generate", VECTORS / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.main(["--check"]) == 0, "vectors are stale: run clients/protocol/vectors/generate.py"


def test_every_dtype_modality_and_message_kind_is_covered():
    dtypes = {m.dtype for m in OPENS.values()}
    assert dtypes == set(P.DTYPES) | {P.TEXT_DTYPE}
    assert {m.modality for m in OPENS.values()} == set(P.MODALITIES)
    assert any(len(m.shape) >= 2 for m in OPENS.values() if m.modality == "video")
    types = {v["header"]["type"] for v in INGEST}
    assert types == {"open", "chunk", "close"}
    assert {v["header"]["cmd"] for v in CONTROL if v["kind"] == "control_request"} == set(P.CONTROL_COMMANDS)
    assert {v["header"]["event"] for v in EVENTS} >= {"stream.open", "stream.status", "stream.rejected"}
    raised = {v["reason"] for v in INVALID}
    # not expressible as a message or short sequence: a full buffer, 1024 open streams, a worker topology,
    # a service bug, a slow service
    untestable = {"buffer_full", "too_many_streams", "worker_mismatch", "internal", "timeout"}
    decoder_reasons = set(P.REASONS) - untestable
    assert decoder_reasons <= raised, f"reasons without an invalid vector: {decoder_reasons - raised}"


@pytest.mark.parametrize("v", INGEST, ids=lambda v: v["name"])
def test_ingest_vector(v):
    frames = _frames(v)
    kind, hdr, payload = P.decode_ingest(frames)
    assert _same(hdr, v["header"])
    if kind == "open":
        meta = P.decode_open(hdr)
        again = P.encode_open(meta)
    elif kind == "close":
        close = P.decode_close(hdr)
        again = P.encode_close(close.stream, close.last_seq)
    else:
        meta = OPENS[v["stream"]]
        chunk = P.decode_chunk(hdr, payload, meta)
        if meta.modality == "text":
            assert chunk.payload == v["payload"]["text"]
            samples = chunk.payload
        else:
            samples = chunk.array(meta)
            want = _array(v["payload"])
            assert samples.dtype == want.dtype
            np.testing.assert_array_equal(samples, want)
            samples = want  # re-encode from the documented values, not from the decoded view
        again = P.encode_chunk(chunk.stream, chunk.seq, chunk.t_dev_s, samples, chunk.duration_s)
    assert [bytes(memoryview(f)) for f in again] == frames


@pytest.mark.parametrize("v", CONTROL, ids=lambda v: v["name"])
def test_control_vector(v):
    (frame,) = _frames(v)
    if v["kind"] == "control_request":
        req = P.decode_request(frame)
        assert _same(req.header, v["header"]) and req.id == v["header"].get("id")
        if req.cmd == "open":
            again = P.encode_open_request(P.decode_open(req.header), req.id)
        elif req.cmd == "close":
            close, timeout_s = P.decode_close_request(req.header)
            again = P.encode_close_request(close.stream, close.last_seq, timeout_s, req.id)
        else:
            rest = {k: x for k, x in req.header.items() if k not in ("v", "cmd", "id")}
            again = P.encode_request(req.cmd, req.id, **rest)
    else:
        rep = P.decode_reply(frame)
        assert _same(rep.body, v["header"])
        if rep.ok:
            again = P.encode_reply(rep.id, {k: x for k, x in rep.body.items() if k not in ("v", "ok", "id")})
        else:
            assert rep.reason in P.REASONS and rep.message
            again = P.encode_error_reply(rep.id, rep.reason, rep.message)
    assert again == frame


@pytest.mark.parametrize("v", EVENTS, ids=lambda v: v["name"])
def test_event_vector(v):
    frames = _frames(v)
    topic, hdr, raw = P.decode_event(frames)
    assert topic == v["topic"] and _same(hdr, v["header"])
    payload = P.event_payload(hdr, raw)
    if v["payload"] is None:
        assert payload is None
    else:
        want = _array(v["payload"])
        assert payload.dtype == want.dtype
        np.testing.assert_array_equal(payload, want)
        payload = want
    stream = topic.partition("/")[2]
    body = {k: x for k, x in hdr.items() if k not in ("v", "event", "stream", "payload_dtype", "payload_shape")}
    again = P.encode_event(hdr["event"], body, payload, stream)
    assert [bytes(memoryview(f)) for f in again] == frames


def _decode_fully(kind: str, frames: list[bytes], stream: str | None, limits: P.Limits) -> None:
    if kind == "ingest":
        k, hdr, payload = P.decode_ingest(frames, limits)
        if k == "open":
            P.decode_open(hdr, limits)
        elif k == "close":
            P.decode_close(hdr)
        else:
            P.decode_chunk(hdr, payload, OPENS[stream], limits)
    elif kind == "control_request":
        req = P.decode_request(frames[0])
        if req.cmd == "open":
            P.decode_open(req.header)
        elif req.cmd == "close":
            P.decode_close_request(req.header)
    elif kind == "control_reply":
        P.decode_reply(frames[0])
    else:
        _, hdr, raw = P.decode_event(frames)
        P.event_payload(hdr, raw)


@pytest.mark.parametrize("v", [v for v in INVALID if v["kind"] != "ingest_sequence"], ids=lambda v: v["name"])
def test_invalid_vector_fails_with_its_reason(v):
    with pytest.raises(ProtocolError) as err:
        _decode_fully(v["kind"], _frames(v), v.get("stream"), P.Limits(**v.get("limits", {})))
    assert err.value.reason == v["reason"]
    assert err.value.reason in P.REASONS


@pytest.mark.parametrize("v", [v for v in INVALID if v["kind"] == "ingest_sequence"], ids=lambda v: v["name"])
def test_stateful_invalid_vectors_are_valid_on_the_wire(v):
    """These are refused by the service's stream table, not the decoder: every message decodes by itself."""
    opened: dict[str, P.StreamMeta] = {}
    for msg in v["messages"]:
        kind, hdr, payload = P.decode_ingest([bytes.fromhex(h) for h in msg])
        if kind == "open":
            meta = P.decode_open(hdr)
            opened.setdefault(meta.stream, meta)
        elif kind == "close":
            P.decode_close(hdr)
        elif hdr["stream"] in opened:
            P.decode_chunk(hdr, payload, opened[hdr["stream"]])
    assert v["reason"] in P.REASONS


def test_close_message_worked_by_hand():
    """{"v": 1, "type": "close", "stream": "a", "seq": 3}, assembled byte by byte from the msgpack spec."""
    by_hand = bytes(
        [0x84]  # fixmap, 4 entries
        + [0xA1, 0x76, 0x01]  # "v": positive fixint 1
        + [0xA4, *b"type", 0xA5, *b"close"]
        + [0xA6, *b"stream", 0xA1, *b"a"]
        + [0xA3, *b"seq", 0x03]
    )
    assert P.encode_close("a", 3) == [by_hand]
    assert P.encode_close("a", -1)[0][-1:] == b"\xff"  # negative fixint -1


def test_chunk_header_worked_by_hand():
    """t is always float64 (0xcb + 8 big-endian bytes), even when integral; n uses the smallest int."""
    hdr = P.encode_chunk_header("a", 300, 2.0, 1)
    assert hdr == bytes(
        [0x86, 0xA1, *b"v", 0x01, 0xA4, *b"type", 0xA5, *b"chunk", 0xA6, *b"stream", 0xA1, *b"a"]
        + [0xA3, *b"seq", 0xCD, 0x01, 0x2C]  # uint16 300
        + [0xA1, *b"t", 0xCB, 0x40, 0, 0, 0, 0, 0, 0, 0]  # float64 2.0
        + [0xA1, *b"n", 0x01]
    )
    assert msgpack.unpackb(hdr)["t"] == 2.0


def _canonical(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """A from-scratch msgpack reader that accepts only the canonical encoding of PROTOCOL.md section 2:
    smallest integer forms, float64 only, str (never bin), no ext. Returns (value, next position)."""
    b = buf[pos]
    pos += 1

    def take(n: int) -> bytes:
        nonlocal pos
        out = buf[pos : pos + n]
        assert len(out) == n, "truncated"
        pos += n
        return out

    def uint(n: int) -> int:
        return int.from_bytes(take(n), "big")

    def container(count: int, is_map: bool) -> Any:
        nonlocal pos
        if is_map:
            out = {}
            for _ in range(count):
                k, pos = _canonical(buf, pos)
                assert isinstance(k, str), "map keys are str"
                out[k], pos = _canonical(buf, pos)
            return out
        items = []
        for _ in range(count):
            v, pos = _canonical(buf, pos)
            items.append(v)
        return items

    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8F:
        return container(b & 0x0F, True), pos
    if 0x90 <= b <= 0x9F:
        return container(b & 0x0F, False), pos
    if 0xA0 <= b <= 0xBF:
        return take(b & 0x1F).decode("utf-8"), pos
    if b == 0xC0:
        return None, pos
    if b in (0xC2, 0xC3):
        return b == 0xC3, pos
    if b == 0xCB:
        return struct.unpack(">d", take(8))[0], pos
    if b in (0xCC, 0xCD, 0xCE, 0xCF):
        n = 1 << (b - 0xCC)
        v = uint(n)
        assert v > (0x7F if n == 1 else (1 << (4 * n)) - 1), f"uint{8 * n} {v} has a smaller form"
        return v, pos
    if b in (0xD0, 0xD1, 0xD2, 0xD3):
        n = 1 << (b - 0xD0)
        v = int.from_bytes(take(n), "big", signed=True)
        assert v < 0, "non-negative integers use the uint forms"
        assert v < (-32 if n == 1 else -(1 << (8 * (n // 2) - 1))), f"int{8 * n} {v} has a smaller form"
        return v, pos
    if b in (0xD9, 0xDA, 0xDB):
        n = 1 << (b - 0xD9)
        length = uint(n)
        assert length > (31 if n == 1 else (1 << (4 * n)) - 1), f"str{8 * n} of {length} bytes has a smaller form"
        return take(length).decode("utf-8"), pos
    if b in (0xDC, 0xDE):
        count = uint(2)
        assert count > 15, "fixarray/fixmap would do"
        return container(count, b == 0xDE), pos
    raise AssertionError(f"non-canonical or unsupported marker 0x{b:02x} (bin, ext, float32, 32-bit containers)")


@pytest.mark.parametrize("v", INGEST + CONTROL + EVENTS, ids=lambda v: v["name"])
def test_vector_headers_are_canonical_msgpack(v):
    frame = bytes.fromhex(v["frames"][1 if v["kind"] == "event" else 0])
    value, end = _canonical(frame)
    assert end == len(frame)
    assert _same(value, v["header"])


@pytest.mark.parametrize(
    "frame",
    [
        b"\x81\xa1v\xcc\x01",  # 1 as uint8
        b"\x81\xa1v\xd0\xff",  # -1 as int8
        b"\x81\xa1v\xd0\x05",  # a positive int in a signed form
        b"\x81\xa1t\xca\x3f\x80\x00\x00",  # float32
        b"\x81\xa1s\xc4\x01a",  # bin
        b"\x81\xa1s\xd9\x01a",  # a short str as str8
        b"\x81\x01\x01",  # an int key
    ],
)
def test_canonical_reader_rejects_non_canonical_forms(frame):
    with pytest.raises(AssertionError):
        _canonical(frame)
    assert msgpack.unpackb(frame, strict_map_key=False) is not None  # all valid msgpack nonetheless
