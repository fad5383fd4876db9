#!/usr/bin/env python3
# ruff: noqa: EXE001  kept as a plain (non-executable) file: run it with `python`
"""Regenerate the byte-exact protocol vectors in this folder from the Python reference encoder.

    python clients/protocol/vectors/generate.py          # rewrite the JSON files
    python clients/protocol/vectors/generate.py --check  # exit 1 if a file differs from what would be written

Every value here is fixed (no randomness, no clock): running it twice gives the same files. The format of the
files is described in PROTOCOL.md, "Test vectors". Change a vector only together with a protocol version bump
or a documented, backward-compatible addition.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "python"))  # run from a checkout without installing the client

from warpsync_client import protocol as P
from warpsync_client.protocol import StreamMeta


def _hex(frame: Any) -> str:
    return bytes(memoryview(frame)).hex()


def _header(frame: bytes) -> dict[str, Any]:
    return msgpack.unpackb(frame, raw=False)


def _payload_desc(arr: np.ndarray) -> dict[str, Any]:
    return {"dtype": P.dtype_code(arr.dtype), "shape": list(arr.shape), "values": arr.tolist()}


# ----------------------------------------------------------------------------------------------- streams

STREAMS: dict[str, StreamMeta] = {
    "audio_i2_stereo": StreamMeta("mic1", "audio", 48000.0, (2,), "i2", "int16 full scale", "rig-a", "take1"),
    "audio_i4_mono": StreamMeta("mic2", "audio", 16000.0, (1,), "i4"),
    "sensor_f8_scalar": StreamMeta("thermo", "sensor", 1.0, (), "f8", "degC"),
    "sensor_f4_imu": StreamMeta("imu/left", "sensor", 200.0, (3,), "f4", "m/s^2", "imu-clk", "take1", {"axis": "xyz"}),
    "video_f4_features": StreamMeta("cam1.flow", "video", 29.97, (2, 3), "f4", "px", "cam1"),
    "video_u1_thumbnail": StreamMeta("cam2:thumb", "video", 30.0, (2, 2, 3), "u1"),
    "text_captions": StreamMeta("captions", "text", 0.0, (), "utf8"),
}

CHUNKS: list[tuple[str, str, int, float, Any, float | None]] = [
    # name, stream vector, seq, t_dev_s, samples, duration_s
    (
        "chunk_audio_i2_stereo",
        "audio_i2_stereo",
        0,
        1700000000.25,
        np.array([[0, -1], [32767, -32768], [1000, -1000]], np.int16),
        None,
    ),
    ("chunk_audio_i4_mono", "audio_i4_mono", 7, 12.5, np.array([[2147483647], [-2147483648]], np.int32), None),
    ("chunk_sensor_f8_scalar", "sensor_f8_scalar", 300, -3.0, np.array([21.5, -0.0, 1e-310, 6.02e23]), None),
    (
        "chunk_sensor_f4_imu",
        "sensor_f4_imu",
        65536,
        0.005,
        np.array([[0.0, -9.80665, 1.5], [0.25, -9.75, 1.0 / 3.0]], np.float32),
        None,
    ),
    (
        "chunk_video_f4_features",
        "video_f4_features",
        2**32,
        100.0333,
        np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 8,
        None,
    ),
    (
        "chunk_video_u1_thumbnail",
        "video_u1_thumbnail",
        1,
        0.0,
        np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3) * 21,
        None,
    ),
    ("chunk_text_caption", "text_captions", 3, 4.2, "Grüße, world!", 1.25),
    ("chunk_text_no_duration", "text_captions", 4, 6, "ok", None),
]


def ingest_vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, meta in STREAMS.items():
        frames = P.encode_open(meta)
        out.append(
            {
                "name": f"open_{name}",
                "kind": "ingest",
                "frames": [_hex(f) for f in frames],
                "header": _header(frames[0]),
                "payload": None,
            }
        )
    for name, stream, seq, t, samples, dur in CHUNKS:
        meta = STREAMS[stream]
        frames = P.encode_chunk(meta.stream, seq, t, samples, dur)
        payload = {"text": samples} if isinstance(samples, str) else _payload_desc(samples)
        out.append(
            {
                "name": name,
                "kind": "ingest",
                "stream": f"open_{stream}",
                "frames": [_hex(f) for f in frames],
                "header": _header(frames[0]),
                "payload": payload,
            }
        )
    for name, sid, seq in [("close_after_chunks", "mic1", 41), ("close_without_chunks", "thermo", -1)]:
        frames = P.encode_close(sid, seq)
        out.append(
            {
                "name": name,
                "kind": "ingest",
                "frames": [_hex(f) for f in frames],
                "header": _header(frames[0]),
                "payload": None,
            }
        )
    return out


# ----------------------------------------------------------------------------------------------- control


def control_vectors() -> list[dict[str, Any]]:
    reqs = [
        ("request_ping", P.encode_request("ping", 1)),
        ("request_ping_without_id", P.encode_request("ping")),
        ("request_status", P.encode_request("status", 2)),
        ("request_streams", P.encode_request("streams", 3)),
        ("request_open", P.encode_open_request(STREAMS["sensor_f4_imu"], 4)),
        ("request_close", P.encode_close_request("imu/left", 41, 5.0, 5)),
    ]
    stream_row = {
        "stream": "imu/left",
        "modality": "sensor",
        "rate_hz": 200.0,
        "shape": [3],
        "dtype": "f4",
        "session": "take1",
        "clock": "imu-clk",
        "worker": 0,
        "last_seq": 41,
        "chunks": 40,
        "samples": 400,
        "gaps": 1,
        "duplicates": 0,
        "reordered": 1,
        "rejected": 2,
        "state": "open",
        "rate_measured_hz": 199.87,
    }
    reps = [
        ("reply_ping", P.encode_reply(1, {"t_host_s": 1764291600.125})),
        ("reply_ping_without_id", P.encode_reply(None, {"t_host_s": 1764291600.5})),
        (
            "reply_status",
            P.encode_reply(
                2,
                {
                    "version": "0.1.0",
                    "uptime_s": 12.5,
                    "streams": 1,
                    "workers": [
                        {"id": 0, "alive": True, "restarts": 0, "messages": 1234, "endpoint": "tcp://127.0.0.1:5555"}
                    ],
                },
            ),
        ),
        ("reply_streams", P.encode_reply(3, {"streams": [stream_row]})),
        ("reply_open", P.encode_reply(4, {"endpoint": "tcp://127.0.0.1:5555", "resume_seq": -1})),
        ("reply_close", P.encode_reply(5, {"received": 40, "rejected": 2, "last_seq": 41})),
        (
            "reply_error_reopen_mismatch",
            P.encode_error_reply(
                4, "reopen_mismatch", "stream 'imu/left' is open with shape [3]; close it or use a new stream id"
            ),
        ),
        (
            "reply_error_timeout",
            P.encode_error_reply(5, "timeout", "stream 'imu/left' was processed through seq 39 of 41 after 5.0 s"),
        ),
        ("reply_error_not_msgpack", P.encode_error_reply(None, "not_msgpack", "header frame is not a msgpack map")),
    ]
    out = [
        {"name": n, "kind": "control_request", "frames": [_hex(f)], "header": _header(f), "payload": None}
        for n, f in reqs
    ]
    out += [
        {"name": n, "kind": "control_reply", "frames": [_hex(f)], "header": _header(f), "payload": None}
        for n, f in reps
    ]
    return out


# ----------------------------------------------------------------------------------------------- events


def event_vectors() -> list[dict[str, Any]]:
    meta = STREAMS["sensor_f4_imu"]
    evs = [
        (
            "event_stream_open",
            "stream.open",
            meta.stream,
            {
                "t_host_s": 1764291600.25,
                "modality": meta.modality,
                "rate_hz": meta.rate_hz,
                "shape": list(meta.shape),
                "dtype": meta.dtype,
                "units": meta.units,
                "clock": meta.clock_id,
                "session": meta.session,
                "meta": dict(meta.meta),
            },
            None,
        ),
        (
            "event_stream_status",
            "stream.status",
            meta.stream,
            {
                "t_host_s": 1764291601.25,
                "rate_hz": 200.0,
                "rate_measured_hz": 199.5,
                "chunks": 40,
                "samples": 400,
                "gaps": 1,
                "duplicates": 0,
                "reordered": 1,
                "rejected": 2,
                "dropped_samples": 0,
                "stalled": False,
                "closed": False,
                "buffer_fill": 0.0625,
                "last_seq": 41,
            },
            None,
        ),
        (
            "event_stream_rejected",
            "stream.rejected",
            meta.stream,
            {
                "t_host_s": 1764291601.5,
                "reason": "size_mismatch",
                "message": "payload is 20 bytes but n=2 x shape [3] x f4 needs 24",
                "count": 1,
                "total": 3,
            },
            None,
        ),
        (
            "event_stream_rejected_unknown_stream",
            "stream.rejected",
            "",
            {
                "t_host_s": 1764291601.75,
                "reason": "not_msgpack",
                "message": "header frame is not a msgpack map",
                "count": 5,
                "total": 5,
            },
            None,
        ),
        (
            "event_with_array_payload",
            "example.features",
            "cam1.flow",
            {"t_ref_s": 10.0, "confidence": 0.9},
            np.array([[1.0, -2.0, 0.5], [3.25, 0.0, -0.125]], np.float32),
        ),
    ]
    out = []
    for name, event, stream, body, payload in evs:
        frames = P.encode_event(event, body, payload, stream)
        out.append(
            {
                "name": name,
                "kind": "event",
                "frames": [_hex(f) for f in frames],
                "topic": bytes(frames[0]).decode(),
                "header": _header(frames[1]),
                "payload": None if payload is None else _payload_desc(payload),
            }
        )
    return out


# ----------------------------------------------------------------------------------------------- invalid


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def invalid_vectors() -> list[dict[str, Any]]:
    imu = STREAMS["sensor_f4_imu"]
    good_open = _header(P.encode_open(imu)[0])
    chunk_hdr = _header(P.encode_chunk_header(imu.stream, 0, 1.0, 2))
    good_payload = np.zeros((2, 3), np.float32).tobytes()

    def open_with(**kw: Any) -> list[bytes]:
        hdr = dict(good_open)
        for k, v in kw.items():
            if v is ...:
                del hdr[k]
            else:
                hdr[k] = v
        return [_pack(hdr)]

    def chunk_with(payload: bytes = good_payload, **kw: Any) -> list[bytes]:
        hdr = dict(chunk_hdr)
        for k, v in kw.items():
            if v is ...:
                del hdr[k]
            else:
                hdr[k] = v
        return [_pack(hdr), payload]

    text = STREAMS["text_captions"]
    text_hdr = _header(P.encode_chunk_header(text.stream, 0, 1.0, 1))
    special: dict[str, dict[str, Any]] = {  # per-vector overrides: the stream to decode against, custom limits
        "text_not_utf8": {"stream": "open_text_captions"},
        "text_two_captions": {"stream": "open_text_captions"},
        "text_too_long": {"stream": "open_text_captions"},
        "payload_too_large": {"limits": {"max_payload_bytes": 16}},
    }
    wire: list[tuple[str, str, list[bytes], str, str]] = [
        # name, kind, frames, expected reason, why
        ("not_msgpack", "ingest", [b"\xc1\x00\x01"], "not_msgpack", "0xc1 is never used in msgpack"),
        ("header_not_a_map", "ingest", [_pack([1, "open"])], "not_msgpack", "the header must be a map"),
        ("truncated_header", "ingest", [P.encode_open(imu)[0][:-3]], "not_msgpack", "map cut short"),
        ("no_frames", "ingest", [], "frame_count", "an ingest message has 1 or 2 frames"),
        ("three_frames", "ingest", chunk_with() + [b""], "frame_count", "an ingest message has 1 or 2 frames"),
        ("chunk_without_payload", "ingest", chunk_with()[:1], "frame_count", "a chunk has 2 frames"),
        ("open_with_payload", "ingest", open_with() + [b"x"], "frame_count", "an open has 1 frame"),
        (
            "header_too_large",
            "ingest",
            open_with(meta={"pad": "x" * 17000}),
            "header_too_large",
            "headers are limited to 16384 bytes",
        ),
        ("bad_version_2", "ingest", open_with(v=2), "bad_version", "only v=1 is spoken"),
        ("bad_version_missing", "ingest", open_with(v=...), "bad_version", "v is required"),
        ("bad_version_true", "ingest", open_with(v=True), "bad_version", "v must be the integer 1, not true"),
        ("bad_type", "ingest", open_with(type="hello"), "bad_type", "type is open, chunk or close"),
        ("open_missing_modality", "ingest", open_with(modality=...), "missing_field", "modality is required"),
        ("open_rate_is_string", "ingest", open_with(rate_hz="200"), "bad_field", "rate_hz must be a number"),
        ("open_rate_is_bool", "ingest", open_with(rate_hz=True), "bad_field", "booleans are not numbers"),
        ("open_units_not_string", "ingest", open_with(units=3), "bad_field", "units must be a string"),
        ("open_bad_stream_id", "ingest", open_with(stream="cam 1"), "bad_stream_id", "space not allowed"),
        ("open_stream_id_newline", "ingest", open_with(stream="cam1\n"), "bad_stream_id", "no trailing newline"),
        ("open_stream_id_too_long", "ingest", open_with(stream="a" * 129), "bad_stream_id", "at most 128 characters"),
        ("open_bad_modality", "ingest", open_with(modality="smell"), "bad_modality", "audio|video|sensor|text"),
        ("open_bad_dtype", "ingest", open_with(dtype="f2"), "bad_dtype", "u1|i2|i4|f4|f8"),
        (
            "open_text_with_f4",
            "ingest",
            [_pack({**_header(P.encode_open(STREAMS["text_captions"])[0]), "dtype": "f4"})],
            "bad_dtype",
            "text streams have dtype utf8",
        ),
        ("open_negative_shape", "ingest", open_with(shape=[-3]), "bad_shape", "dimensions are >= 1"),
        ("open_zero_shape", "ingest", open_with(shape=[0]), "bad_shape", "dimensions are >= 1"),
        ("open_five_dims", "ingest", open_with(shape=[1, 1, 1, 1, 1]), "bad_shape", "at most 4 dimensions"),
        ("open_huge_shape", "ingest", open_with(shape=[65536, 65536]), "bad_shape", "at most 2^22 values per sample"),
        ("open_zero_rate", "ingest", open_with(rate_hz=0.0), "bad_rate", "rate 0 only for text"),
        ("open_negative_rate", "ingest", open_with(rate_hz=-1.0), "bad_rate", "rate must be > 0"),
        ("open_rate_too_high", "ingest", open_with(rate_hz=2e6), "bad_rate", "at most 1e6 Hz"),
        ("open_rate_nan", "ingest", open_with(rate_hz=float("nan")), "bad_rate", "rate must be finite"),
        ("chunk_negative_seq", "ingest", chunk_with(seq=-1), "bad_seq", "seq is in [0, 2^63)"),
        ("chunk_seq_2_63", "ingest", chunk_with(seq=2**63), "bad_seq", "seq is in [0, 2^63)"),
        ("chunk_seq_float", "ingest", chunk_with(seq=1.0), "bad_field", "seq is an integer"),
        ("chunk_t_inf", "ingest", chunk_with(t=float("inf")), "bad_timestamp", "t must be finite"),
        ("chunk_missing_t", "ingest", chunk_with(t=...), "missing_field", "t is required"),
        ("chunk_n_zero", "ingest", chunk_with(n=0), "bad_shape", "n >= 1"),
        ("chunk_n_huge", "ingest", chunk_with(n=2**40), "bad_shape", "n <= 2^22"),
        ("chunk_negative_duration", "ingest", chunk_with(dur=-1.0), "bad_field", "dur >= 0"),
        (
            "chunk_size_mismatch",
            "ingest",
            chunk_with(payload=good_payload[:-4]),
            "size_mismatch",
            "2 samples x [3] x f4 = 24 bytes, got 20",
        ),
        ("text_not_utf8", "ingest", [_pack(text_hdr), b"caf\xe9"], "bad_text", "text payloads are UTF-8"),
        (
            "text_two_captions",
            "ingest",
            [_pack({**text_hdr, "n": 2}), b"ab"],
            "bad_shape",
            "a text chunk carries one caption: n = 1",
        ),
        ("text_too_long", "ingest", [_pack(text_hdr), b"x" * 8193], "bad_text", "at most 8192 characters"),
        (
            "payload_too_large",
            "ingest",
            chunk_with(),
            "payload_too_large",
            "decoded with limits max_payload_bytes = 16 (the 24-byte payload is over it)",
        ),
        (
            "close_seq_below_minus_one",
            "ingest",
            [_pack({"v": 1, "type": "close", "stream": "mic1", "seq": -2})],
            "bad_seq",
            "close seq is in [-1, 2^63)",
        ),
        (
            "request_unknown_command",
            "control_request",
            [P.encode_request("reboot", 9)],
            "unknown_command",
            "ping|status|streams|open|close",
        ),
        (
            "request_cmd_not_string",
            "control_request",
            [_pack({"v": 1, "cmd": 1, "id": 9})],
            "bad_field",
            "cmd is a string",
        ),
        ("request_missing_cmd", "control_request", [_pack({"v": 1, "id": 9})], "missing_field", "cmd is required"),
        (
            "request_id_not_int",
            "control_request",
            [_pack({"v": 1, "cmd": "ping", "id": "9"})],
            "bad_field",
            "id is an integer",
        ),
        ("request_bad_version", "control_request", [_pack({"v": 0, "cmd": "ping", "id": 9})], "bad_version", "v=1"),
        (
            "request_close_negative_timeout",
            "control_request",
            [P.encode_close_request("mic1", 3, -1.0, 9)],
            "bad_field",
            "timeout_s in [0, 300]",
        ),
        (
            "request_close_missing_seq",
            "control_request",
            [_pack({"v": 1, "cmd": "close", "id": 9, "stream": "mic1"})],
            "missing_field",
            "seq is required",
        ),
        (
            "request_open_bad_modality",
            "control_request",
            [_pack({**_header(P.encode_open_request(imu, 9)), "modality": "smell"})],
            "bad_modality",
            "as for ingest open",
        ),
        ("event_one_frame", "event", [b"stream.status/x"], "frame_count", "events have 2 or 3 frames"),
        ("event_not_msgpack", "event", [b"stream.status/x", b"\xc1"], "not_msgpack", "header is msgpack"),
        ("event_missing_name", "event", [b"stream.status/x", _pack({"v": 1})], "missing_field", "event is required"),
        (
            "event_payload_size_mismatch",
            "event",
            [b"x/s", _pack({"v": 1, "event": "x", "payload_dtype": "f4", "payload_shape": [3]}), b"\x00" * 8],
            "size_mismatch",
            "3 x f4 = 12 bytes, got 8",
        ),
        (
            "event_payload_bad_dtype",
            "event",
            [b"x/s", _pack({"v": 1, "event": "x", "payload_dtype": "c8", "payload_shape": [1]}), b"\x00" * 8],
            "bad_dtype",
            "payload_dtype is a wire dtype code",
        ),
        ("reply_without_ok", "control_reply", [_pack({"v": 1, "id": 1})], "missing_field", "ok is required"),
        (
            "reply_error_without_reason",
            "control_reply",
            [_pack({"v": 1, "ok": False, "id": 1, "error": {}})],
            "missing_field",
            "error needs reason and message",
        ),
    ]
    out = [
        {
            "name": n,
            "kind": k,
            "stream": "open_sensor_f4_imu" if k == "ingest" else None,
            "frames": [_hex(f) for f in fr],
            "reason": r,
            "why": why,
            **special.get(n, {}),
        }
        for n, k, fr, r, why in wire
    ]

    # Valid on the wire, refused by the service's stream table (reasons raised by the service, not the decoder):
    nan_chunk = P.encode_chunk(imu.stream, 0, 1.0, np.array([[np.nan, 0, 0]], np.float32))
    first = P.encode_chunk(imu.stream, 5, 1.0, np.zeros((1, 3), np.float32))
    back = P.encode_chunk(imu.stream, 4, 1.005, np.zeros((1, 3), np.float32))
    stateful = [
        (
            "unknown_stream",
            [P.encode_chunk("never-opened", 0, 0.0, np.zeros(1, np.float32))],
            "unknown_stream",
            "a chunk for a stream that was never opened",
        ),
        (
            "reopen_mismatch",
            [P.encode_open(imu), P.encode_open(StreamMeta(imu.stream, "sensor", 100.0, (3,), "f4"))],
            "reopen_mismatch",
            "the same stream id opened again with a different rate",
        ),
        (
            "seq_backwards",
            [P.encode_open(imu), first, back],
            "seq_backwards",
            "seq 4 after seq 5 (the service counts it as reordered or rejects it, per its policy)",
        ),
        (
            "non_finite",
            [P.encode_open(imu), nan_chunk],
            "non_finite",
            "a NaN sample, with the service's nan_policy = reject (the default)",
        ),
        (
            "stream_closed",
            [P.encode_open(imu), P.encode_close(imu.stream, -1), first],
            "stream_closed",
            "a chunk after the stream's end-of-stream marker (open it again to continue)",
        ),
        (
            "time_jump",
            [P.encode_open(imu), first, P.encode_chunk(imu.stream, 6, -5.0, np.zeros((1, 3), np.float32))],
            "time_jump",
            "device time 6 s before the end of the previous chunk (ingest.max_time_jump_s = 1.0 by default)",
        ),
    ]
    out += [
        {
            "name": n,
            "kind": "ingest_sequence",
            "messages": [[_hex(f) for f in m] for m in msgs],
            "reason": r,
            "why": why,
        }
        for n, msgs, r, why in stateful
    ]
    return out


FILES = {
    "ingest.json": ingest_vectors,
    "control.json": control_vectors,
    "events.json": event_vectors,
    "invalid.json": invalid_vectors,
}


def render(builder: Any) -> str:
    doc = {"protocol_version": P.VERSION, "generator": "clients/protocol/vectors/generate.py", "vectors": builder()}
    return json.dumps(doc, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    stale = []
    for name, builder in FILES.items():
        text = render(builder)
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale vectors: {', '.join(stale)}; run {Path(__file__).name} to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
