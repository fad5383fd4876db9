"""warpsync wire protocol, version 1: pure encode/decode, no sockets.

Every message is a list of ZeroMQ frames:

* ingest (device PUSH -> service PULL): ``[header, payload?]``
* events (service PUB -> subscriber SUB): ``[topic, header, payload?]``

``header`` is a msgpack map (string keys); ``payload`` is the raw little-endian array buffer (C order) or
UTF-8 text for ``text`` streams. Every field, with its type, unit and limit, is documented in
clients/protocol/PROTOCOL.md and pinned by the byte-exact vectors in clients/protocol/vectors/.

Decoding never trusts the peer: unpacking uses explicit size limits, every field is type- and range-checked,
and every failure raises `ProtocolError` with a stable ``reason`` code (see `REASONS`).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .errors import ProtocolError

VERSION = 1

MODALITIES = ("audio", "video", "sensor", "text")
#: wire dtype code -> numpy dtype (little-endian). ``utf8`` is the dtype of ``text`` streams.
DTYPES: dict[str, np.dtype] = {
    "u1": np.dtype("<u1"),
    "i2": np.dtype("<i2"),
    "i4": np.dtype("<i4"),
    "f4": np.dtype("<f4"),
    "f8": np.dtype("<f8"),
}
TEXT_DTYPE = "utf8"

#: ``\Z``, not ``$``: ``$`` would also accept a trailing newline ("cam1\n").
STREAM_ID_RE = re.compile(r"^[A-Za-z0-9_.:/\-]{1,128}\Z")


@dataclass(frozen=True)
class Limits:
    """Hard limits applied while decoding. The service takes them from config (`ingest.limits`)."""

    max_header_bytes: int = 16 * 1024
    """Largest msgpack header accepted, bytes."""
    max_payload_bytes: int = 64 * 1024 * 1024
    """Largest payload frame accepted, bytes (ZMQ_MAXMSGSIZE is set to this plus the header limit)."""
    max_sample_values: int = 1 << 22
    """Largest per-sample shape product (values in one sample: channels or feature size)."""
    max_samples_per_chunk: int = 1 << 22
    """Largest ``n`` in one chunk."""
    max_rate_hz: float = 1e6
    """Largest nominal rate, Hz."""
    max_text_chars: int = 8192
    """Longest text chunk, characters."""
    max_control_bytes: int = 1 << 20
    """Largest control reply a client accepts, bytes (a ``streams`` reply lists every stream)."""
    max_event_header_bytes: int = 1 << 20
    """Largest event header a subscriber accepts, bytes."""


DEFAULT_LIMITS = Limits()

#: Every reason code `decode_*` can raise, for metrics pre-registration and docs.
REASONS = (
    "not_msgpack",
    "frame_count",
    "header_too_large",
    "payload_too_large",
    "bad_version",
    "bad_type",
    "missing_field",
    "bad_field",
    "bad_stream_id",
    "bad_modality",
    "bad_dtype",
    "bad_shape",
    "bad_rate",
    "bad_timestamp",
    "bad_seq",
    "size_mismatch",
    "non_finite",
    "bad_text",
    # raised by the service's stream table, not by this module:
    "unknown_stream",
    "reopen_mismatch",
    "seq_backwards",
    "time_jump",
    "buffer_full",
    "too_many_streams",
    "stream_closed",
    "worker_mismatch",
    "internal",
    # control socket only:
    "unknown_command",
    "timeout",
)

#: Commands of the control socket (see PROTOCOL.md, "Control").
CONTROL_COMMANDS = ("ping", "status", "streams", "open", "close")


@dataclass(frozen=True)
class StreamMeta:
    """What a stream is. Sent once, in the ``open`` message."""

    stream: str
    modality: str
    rate_hz: float
    """Nominal sample (or frame) rate in Hz; 0 for irregular streams (text)."""
    shape: tuple[int, ...] = ()
    """Shape of one sample: ``(channels,)`` for audio, a feature shape for video, ``()`` for scalar sensors."""
    dtype: str = "f4"
    units: str = ""
    clock: str = ""
    """Device clock id; streams sharing a clock share one clock model. Defaults to the stream id."""
    session: str = ""
    """Session (rig) the stream belongs to; empty means the service's default session."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Free-form extra metadata (small: counted in the header limit)."""

    @property
    def clock_id(self) -> str:
        return self.clock or self.stream

    @property
    def sample_values(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def np_dtype(self) -> np.dtype | None:
        return DTYPES.get(self.dtype)

    def bytes_per_sample(self) -> int:
        dt = self.np_dtype
        return 0 if dt is None else dt.itemsize * self.sample_values


@dataclass(frozen=True)
class Chunk:
    """One chunk of samples. ``t_dev_s`` is the device time of its first sample, in seconds."""

    stream: str
    seq: int
    t_dev_s: float
    n: int
    payload: Any
    """A buffer (bytes, memoryview or zmq.Frame buffer) of exactly ``n * bytes_per_sample`` bytes, or text."""
    duration_s: float | None = None
    """Text chunks only: how long the caption spans, seconds (optional)."""

    def array(self, meta: StreamMeta) -> np.ndarray:
        """The payload as an ``(n, *shape)`` array (a view, no copy). Not for text streams."""
        dt = meta.np_dtype
        if dt is None:
            raise ProtocolError("bad_dtype", f"stream {meta.stream!r} has dtype {meta.dtype!r}, not an array")
        return np.frombuffer(self.payload, dtype=dt).reshape((self.n, *meta.shape))


@dataclass(frozen=True)
class Close:
    """End of stream: ``last_seq`` is the sequence number of the last chunk sent (-1 if none)."""

    stream: str
    last_seq: int


# ----------------------------------------------------------------------------------------------- encode


def _pack(obj: Mapping[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def open_header(meta: StreamMeta) -> dict[str, Any]:
    """The ``open`` header of a stream: what `encode_open` packs and `decode_open` reads back."""
    hdr: dict[str, Any] = {
        "v": VERSION,
        "type": "open",
        "stream": meta.stream,
        "modality": meta.modality,
        "rate_hz": float(meta.rate_hz),
        "shape": list(meta.shape),
        "dtype": meta.dtype,
        "units": meta.units,
        "clock": meta.clock,
        "session": meta.session,
    }
    if meta.meta:
        hdr["meta"] = dict(meta.meta)
    return hdr


def encode_open(meta: StreamMeta) -> list[bytes]:
    return [_pack(open_header(meta))]


def encode_chunk_header(stream: str, seq: int, t_dev_s: float, n: int, duration_s: float | None = None) -> bytes:
    hdr: dict[str, Any] = {
        "v": VERSION,
        "type": "chunk",
        "stream": stream,
        "seq": int(seq),
        "t": float(t_dev_s),
        "n": int(n),
    }
    if duration_s is not None:
        hdr["dur"] = float(duration_s)
    return _pack(hdr)


_F64 = struct.Struct(">Bd")  # msgpack float64: 0xcb + big-endian IEEE 754 binary64


class ChunkHeaderEncoder:
    """`encode_chunk_header` for one stream, faster: the constant part of the map (``v``, ``type``,
    ``stream``) is packed once. Produces exactly the same bytes (a msgpack map is the concatenation of its
    keys and values after the map marker)."""

    def __init__(self, stream: str) -> None:
        pk = msgpack.Packer(use_bin_type=True)
        self.stream = stream
        body = (
            pk.pack("v") + pk.pack(VERSION) + pk.pack("type") + pk.pack("chunk") + pk.pack("stream") + pk.pack(stream)
        )
        self._prefix = (b"\x86" + body + pk.pack("seq"), b"\x87" + body + pk.pack("seq"))
        self._t = pk.pack("t")
        self._n = pk.pack("n")
        self._dur = pk.pack("dur")
        self._int = pk.pack

    def __call__(self, seq: int, t_dev_s: float, n: int, duration_s: float | None = None) -> bytes:
        pack = self._int
        if duration_s is None:
            return b"".join((self._prefix[0], pack(int(seq)), self._t, _F64.pack(0xCB, t_dev_s), self._n, pack(int(n))))
        return b"".join(
            (
                self._prefix[1],
                pack(int(seq)),
                self._t,
                _F64.pack(0xCB, t_dev_s),
                self._n,
                pack(int(n)),
                self._dur,
                _F64.pack(0xCB, duration_s),
            )
        )


def encode_chunk(
    stream: str, seq: int, t_dev_s: float, samples: np.ndarray | str, duration_s: float | None = None
) -> list[Any]:
    """Frames for one chunk. An array is sent as its little-endian C-order buffer (no copy when it already is
    one); a ``str`` is a text chunk (n = 1)."""
    if isinstance(samples, str):
        return [encode_chunk_header(stream, seq, t_dev_s, 1, duration_s), samples.encode("utf-8")]
    arr = np.asarray(samples)
    if arr.dtype.byteorder == ">" or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    n = arr.shape[0] if arr.ndim else 1
    return [encode_chunk_header(stream, seq, t_dev_s, n, duration_s), memoryview(arr).cast("B")]


def encode_close(stream: str, last_seq: int) -> list[bytes]:
    return [_pack({"v": VERSION, "type": "close", "stream": stream, "seq": int(last_seq)})]


def dtype_code(dtype: Any) -> str | None:
    """The wire code (``"f4"``...) of a numpy dtype, or None if the protocol cannot carry it."""
    dt = np.dtype(dtype)
    code = dt.newbyteorder("<").str[1:] if dt.kind in "uif" else ""
    return code if code in DTYPES else None


def encode_event(event: str, body: Mapping[str, Any], payload: Any = None, stream: str = "") -> list[Any]:
    """Frames of one published event: ``[topic, header, payload?]``.

    The topic is ``event`` or ``event/stream`` (UTF-8), so that SUB prefix matching selects by event kind
    (``sync.``), by event (``sync.offset``) or by event and stream (``sync.offset/cam1``).

    A numpy ``payload`` is sent as its little-endian C-order buffer and described in the header by
    ``payload_dtype`` (a wire dtype code) and ``payload_shape``, so that any subscriber can rebuild it; any
    other payload (bytes-like) is sent as it is, undescribed.
    """
    topic = f"{event}/{stream}" if stream else event
    hdr = {"v": VERSION, "event": event, **body}
    if stream:
        hdr.setdefault("stream", stream)
    if isinstance(payload, np.ndarray):
        code = dtype_code(payload.dtype)
        if code is None:
            raise ProtocolError("bad_dtype", f"event payload dtype {payload.dtype} is not one of {', '.join(DTYPES)}")
        arr = np.ascontiguousarray(payload, dtype=DTYPES[code])
        hdr["payload_dtype"] = code
        hdr["payload_shape"] = list(arr.shape)
        payload = arr.tobytes() if arr.size == 0 else memoryview(arr).cast("B")
    frames: list[Any] = [topic.encode("utf-8"), _pack(hdr)]
    if payload is not None:
        frames.append(payload)
    return frames


# ----------------------------------------------------------------------------------------------- control
#
# A control request or reply is ONE frame (a msgpack map); the ROUTER envelope around it is the socket's
# business, not the protocol's. See PROTOCOL.md, "Control".


@dataclass(frozen=True)
class Request:
    """A decoded control request: ``cmd`` (one of `CONTROL_COMMANDS`), the echoed ``id`` and the full header."""

    cmd: str
    id: int | None
    header: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A decoded control reply. ``body`` is the whole map; on failure ``reason``/``message`` say why."""

    id: int | None
    ok: bool
    body: dict[str, Any]
    reason: str = ""
    message: str = ""


def encode_request(cmd: str, req_id: int | None = None, **fields: Any) -> bytes:
    """One control request frame: ``{v, cmd, id?, **fields}`` in that key order."""
    hdr: dict[str, Any] = {"v": VERSION, "cmd": cmd}
    if req_id is not None:
        hdr["id"] = int(req_id)
    hdr.update(fields)
    return _pack(hdr)


def encode_open_request(meta: StreamMeta, req_id: int | None = None) -> bytes:
    """The control ``open`` request: the fields of the ingest ``open`` header, in the same order."""
    fields = msgpack.unpackb(encode_open(meta)[0], raw=False)
    del fields["v"], fields["type"]
    return encode_request("open", req_id, **fields)


def encode_close_request(stream: str, last_seq: int, timeout_s: float = 5.0, req_id: int | None = None) -> bytes:
    return encode_request("close", req_id, stream=stream, seq=int(last_seq), timeout_s=float(timeout_s))


def encode_reply(req_id: int | None, body: Mapping[str, Any] | None = None) -> bytes:
    """A success reply: ``{v, ok: true, id, **body}`` (``id`` is nil when the request had none)."""
    return _pack({"v": VERSION, "ok": True, "id": req_id, **(body or {})})


def encode_error_reply(req_id: int | None, reason: str, message: str) -> bytes:
    """A failure reply: ``{v, ok: false, id, error: {reason, message}}``."""
    return _pack({"v": VERSION, "ok": False, "id": req_id, "error": {"reason": reason, "message": message}})


def peek_request_id(frame: Any) -> int | None:
    """The ``id`` of a request frame if it can be read at all, else None. Never raises: it is used to address
    the error reply to a request that failed to decode."""
    try:
        hdr = msgpack.unpackb(
            memoryview(frame),
            raw=False,
            max_str_len=1 << 16,
            max_bin_len=1 << 16,
            max_array_len=1024,
            max_map_len=256,
            max_ext_len=0,
        )
    except Exception:  # noqa: BLE001  never raises: any decode failure means no id
        return None
    rid = hdr.get("id") if isinstance(hdr, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) and -(2**63) <= rid < 2**64 else None


def decode_request(frame: Any, limits: Limits = DEFAULT_LIMITS) -> Request:
    """Validate the envelope of a control request (version, ``cmd``, ``id``). The command's own fields are
    checked by `decode_open` (for ``open``) and `decode_close_request` (for ``close``)."""
    hdr = _unpack_header(frame, limits)
    cmd = _field(hdr, "cmd", str)
    rid = _field(hdr, "id", int, None)
    if cmd not in CONTROL_COMMANDS:
        raise ProtocolError("unknown_command", f"command {cmd!r} is not one of {', '.join(CONTROL_COMMANDS)}")
    return Request(cmd, rid, hdr)


def decode_close_request(hdr: Mapping[str, Any], max_timeout_s: float = 300.0) -> tuple[Close, float]:
    """``(Close(stream, seq), timeout_s)`` of a control ``close`` request; ``timeout_s`` defaults to 5.0."""
    close = decode_close(hdr)
    timeout_s = float(_field(hdr, "timeout_s", (int, float), 5.0))
    if not math.isfinite(timeout_s) or not 0 <= timeout_s <= max_timeout_s:
        raise ProtocolError("bad_field", f"timeout_s must be a number of seconds in [0, {max_timeout_s}]")
    return close, timeout_s


def decode_reply(frame: Any, limits: Limits = DEFAULT_LIMITS) -> Reply:
    """Decode a control reply (client side). A malformed reply raises `ProtocolError`; a well-formed failure
    reply is returned with ``ok=False`` (the caller decides what to raise)."""
    hdr = _unpack_map(frame, limits.max_control_bytes, 1 << 16)
    _check_version(hdr)
    ok = hdr.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("missing_field", "control reply needs a boolean 'ok'")
    rid = hdr.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int)):
        raise ProtocolError("bad_field", "control reply 'id' must be an integer or nil")
    if ok:
        return Reply(rid, True, hdr)
    err = hdr.get("error")
    if not isinstance(err, dict) or not isinstance(err.get("reason"), str) or not isinstance(err.get("message"), str):
        raise ProtocolError("missing_field", "a failed control reply needs error: {reason: str, message: str}")
    return Reply(rid, False, hdr, err["reason"], err["message"])


# ----------------------------------------------------------------------------------------------- decode


def _unpack_map(frame: Any, max_bytes: int, max_container: int) -> dict[str, Any]:
    buf = memoryview(frame)
    if buf.nbytes > max_bytes:
        raise ProtocolError("header_too_large", f"header is {buf.nbytes} bytes, limit {max_bytes}")
    try:
        hdr = msgpack.unpackb(
            buf,
            raw=False,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_container,
            max_map_len=max_container // 4,
            max_ext_len=0,
        )
    except Exception as exc:  # noqa: BLE001  msgpack raises several unrelated types for malformed input
        raise ProtocolError("not_msgpack", f"header frame is not a msgpack map ({type(exc).__name__})") from None
    if not isinstance(hdr, dict):
        raise ProtocolError("not_msgpack", f"header must be a msgpack map, got {type(hdr).__name__}")
    return hdr


def _check_version(hdr: Mapping[str, Any]) -> None:
    v = hdr.get("v")
    if type(v) is not int or v != VERSION:  # neither True nor 1.0
        raise ProtocolError("bad_version", f"protocol version {v!r} is not supported; this service speaks v{VERSION}")


def _unpack_header(frame: Any, limits: Limits) -> dict[str, Any]:
    hdr = _unpack_map(frame, limits.max_header_bytes, 1024)
    _check_version(hdr)
    return hdr


def _field(hdr: Mapping[str, Any], name: str, types: type | tuple[type, ...], default: Any = ...) -> Any:
    if name not in hdr:
        if default is ...:
            raise ProtocolError("missing_field", f"header field {name!r} is required")
        return default
    val = hdr[name]
    # bool is an int subclass: never accept it for numeric fields
    if isinstance(val, bool) or not isinstance(val, types):
        want = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise ProtocolError("bad_field", f"header field {name!r} must be {want}, got {type(val).__name__}")
    return val


def _stream_id(hdr: Mapping[str, Any]) -> str:
    sid = _field(hdr, "stream", str)
    if not STREAM_ID_RE.match(sid):
        raise ProtocolError("bad_stream_id", "stream id must be 1-128 characters of [A-Za-z0-9_.:/-]")
    return sid


def decode_open(hdr: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> StreamMeta:
    sid = _stream_id(hdr)
    modality = _field(hdr, "modality", str)
    if modality not in MODALITIES:
        raise ProtocolError("bad_modality", f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    rate = float(_field(hdr, "rate_hz", (int, float)))
    if not math.isfinite(rate) or rate < 0 or rate > limits.max_rate_hz or (rate == 0 and modality != "text"):
        raise ProtocolError("bad_rate", f"rate_hz {rate} must be in (0, {limits.max_rate_hz}] (0 only for text)")
    dtype = _field(hdr, "dtype", str)
    if modality == "text":
        if dtype != TEXT_DTYPE:
            raise ProtocolError("bad_dtype", f"text streams have dtype {TEXT_DTYPE!r}, got {dtype!r}")
    elif dtype not in DTYPES:
        raise ProtocolError("bad_dtype", f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    shape_raw = _field(hdr, "shape", list)
    if len(shape_raw) > 4 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape_raw):
        raise ProtocolError("bad_shape", "shape must be a list of at most 4 positive integers")
    shape = tuple(int(s) for s in shape_raw)
    if modality == "text" and shape:
        raise ProtocolError("bad_shape", "text streams have shape []")
    values = 1
    for s in shape:
        values *= s
        if values > limits.max_sample_values:
            raise ProtocolError("bad_shape", f"one sample may hold at most {limits.max_sample_values} values")
    extra = _field(hdr, "meta", dict, {})
    return StreamMeta(
        stream=sid,
        modality=modality,
        rate_hz=rate,
        shape=shape,
        dtype=dtype,
        units=_field(hdr, "units", str, ""),
        clock=_field(hdr, "clock", str, ""),
        session=_field(hdr, "session", str, ""),
        meta=extra,
    )


def decode_chunk(hdr: Mapping[str, Any], payload: Any, meta: StreamMeta, limits: Limits = DEFAULT_LIMITS) -> Chunk:
    """Validate a chunk against its stream's metadata. ``payload`` is any buffer; it is not copied."""
    sid = _stream_id(hdr)
    seq = _field(hdr, "seq", int)
    if not 0 <= seq < 2**63:
        raise ProtocolError("bad_seq", f"seq {seq} must be in [0, 2^63)")
    t = float(_field(hdr, "t", (int, float)))
    if not math.isfinite(t):
        raise ProtocolError("bad_timestamp", "t (device time of the first sample, seconds) must be finite")
    n = _field(hdr, "n", int)
    if not 1 <= n <= limits.max_samples_per_chunk:
        raise ProtocolError("bad_shape", f"n {n} must be in [1, {limits.max_samples_per_chunk}]")
    dur = _field(hdr, "dur", (int, float), None)
    if dur is not None and (not math.isfinite(dur) or dur < 0):
        raise ProtocolError("bad_field", "dur must be a finite number of seconds >= 0")
    buf = memoryview(payload)
    if buf.nbytes > limits.max_payload_bytes:
        raise ProtocolError("payload_too_large", f"payload is {buf.nbytes} bytes, limit {limits.max_payload_bytes}")
    if meta.modality == "text":
        if n != 1:
            raise ProtocolError("bad_shape", "a text chunk carries one caption: n must be 1")
        try:
            text = bytes(buf).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad_text", "text payload is not valid UTF-8") from None
        if len(text) > limits.max_text_chars:
            raise ProtocolError("bad_text", f"text chunk longer than {limits.max_text_chars} characters")
        return Chunk(sid, seq, t, 1, text, None if dur is None else float(dur))
    want = n * meta.bytes_per_sample()
    if buf.nbytes != want:
        raise ProtocolError(
            "size_mismatch",
            f"payload is {buf.nbytes} bytes but n={n} x shape {list(meta.shape)} x {meta.dtype} needs {want}",
        )
    return Chunk(sid, seq, t, n, buf, None if dur is None else float(dur))


def decode_close(hdr: Mapping[str, Any]) -> Close:
    sid = _stream_id(hdr)
    seq = _field(hdr, "seq", int)
    if not -1 <= seq < 2**63:
        raise ProtocolError("bad_seq", f"seq {seq} must be in [-1, 2^63)")
    return Close(sid, seq)


def decode_ingest(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> tuple[str, dict[str, Any], Any]:
    """First step of decoding an ingest message: ``(type, header, payload_or_None)``.

    The caller then calls `decode_open`, `decode_chunk` (with the stream's metadata) or `decode_close`.
    """
    if not 1 <= len(frames) <= 2:
        raise ProtocolError("frame_count", f"ingest messages have 1 or 2 frames, got {len(frames)}")
    hdr = _unpack_header(frames[0], limits)
    kind = hdr.get("type")
    if kind not in ("open", "chunk", "close"):
        raise ProtocolError("bad_type", f"type {kind!r} is not one of open, chunk, close")
    want = 2 if kind == "chunk" else 1
    if len(frames) != want:
        raise ProtocolError("frame_count", f"a {kind} message has {want} frame(s), got {len(frames)}")
    return kind, hdr, frames[1] if want == 2 else None


def decode_event(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> tuple[str, dict[str, Any], Any]:
    """``(topic, header, payload_or_None)`` of a published event (see `event_payload` for the array)."""
    if not 2 <= len(frames) <= 3:
        raise ProtocolError("frame_count", f"events have 2 or 3 frames, got {len(frames)}")
    try:
        topic = bytes(memoryview(frames[0])).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("bad_field", "topic frame is not UTF-8") from None
    hdr = _unpack_map(frames[1], limits.max_event_header_bytes, 1 << 16)
    _check_version(hdr)
    if not isinstance(hdr.get("event"), str):
        raise ProtocolError("missing_field", "event header needs a string 'event'")
    return topic, hdr, frames[2] if len(frames) == 3 else None


def event_payload(hdr: Mapping[str, Any], payload: Any) -> np.ndarray | bytes | None:
    """The payload of a decoded event: an array (read-only view) when the header describes it with
    ``payload_dtype``/``payload_shape``, the raw bytes when it does not, None when there is none."""
    if payload is None:
        return None
    buf = memoryview(payload)
    if "payload_dtype" not in hdr and "payload_shape" not in hdr:
        return bytes(buf)
    code = _field(hdr, "payload_dtype", str)
    if code not in DTYPES:
        raise ProtocolError("bad_dtype", f"payload_dtype {code!r} is not one of {', '.join(DTYPES)}")
    shape_raw = _field(hdr, "payload_shape", list)
    if len(shape_raw) > 8 or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape_raw):
        raise ProtocolError("bad_shape", "payload_shape must be a list of at most 8 integers >= 0")
    count = 1
    for s in shape_raw:
        count *= s
    if count * DTYPES[code].itemsize != buf.nbytes:
        raise ProtocolError(
            "size_mismatch",
            f"payload is {buf.nbytes} bytes but shape {shape_raw} x {code} needs {count * DTYPES[code].itemsize}",
        )
    return np.frombuffer(buf, dtype=DTYPES[code]).reshape(shape_raw)
