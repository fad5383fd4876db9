"""`Publisher`: one stream from a device to the service.

    with Publisher("mic1", modality="audio", rate_hz=48000, channels=2, dtype="i2") as pub:
        pub.send(block, t_dev_s=t)      # (n, 2) int16 array; the client numbers the chunks
    # leaving the block sends the end-of-stream marker and waits for the service's acknowledgement

Lifecycle: the constructor opens the stream on the control socket (which answers with the ingest endpoint and
the last seq the service holds for this stream id, so a reconnecting publisher continues the numbering) and
connects a PUSH socket to that endpoint. `send` pushes one chunk; it blocks at most ``send_timeout_s`` when the
service's queues are full and then raises `BackpressureError` (the chunk is not sent and its seq not used: you
may retry it). `close` pushes the end-of-stream marker and waits for the control ``close`` acknowledgement, so
no queued chunk is lost when the socket closes (libzmq issue 4660).

Zero copy: an array of at least ``copy_threshold_bytes`` is handed to ZeroMQ without copying; ZeroMQ keeps a
reference to it until the bytes are on the wire. Do not modify such an array in place until `wait_sent` has
returned (or pass a copy): what is sent is what the buffer holds when ZeroMQ writes it.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np
import zmq

from .control import DEFAULT_CONTROL_ENDPOINT, CloseAck, Control, Opened
from .errors import BackpressureError, ProtocolError, ServiceTimeout
from .protocol import (
    DEFAULT_LIMITS,
    DTYPES,
    TEXT_DTYPE,
    ChunkHeaderEncoder,
    Limits,
    StreamMeta,
    decode_open,
    dtype_code,
    encode_close,
    encode_open,
)

log = logging.getLogger(__name__)

_SNDMORE = int(zmq.SNDMORE)


class Publisher:
    """Publishes one stream. Pass a `StreamMeta`, or the stream id and its metadata as keywords:

    ``modality`` audio|video|sensor|text; ``rate_hz`` nominal rate (0 only for text); ``channels`` (shorthand
    for ``shape=(channels,)``) or ``shape`` of one sample; ``dtype`` u1|i2|i4|f4|f8 (default f4; utf8 for text);
    ``units``; ``clock`` device clock id (default: the stream id); ``session``; ``meta`` free-form map.

    Sockets: ``control`` is the service's control endpoint; ``context`` the process's `zmq.Context` (owned and
    terminated by `close` when None). ``timeout_s`` bounds each control request, ``send_timeout_s`` each `send`
    under backpressure; ``sndhwm`` is the PUSH socket's queue length in messages.
    """

    def __init__(
        self,
        stream: str | StreamMeta,
        *,
        modality: str = "sensor",
        rate_hz: float = 0.0,
        channels: int | None = None,
        shape: tuple[int, ...] = (),
        dtype: str | None = None,
        units: str = "",
        clock: str = "",
        session: str = "",
        meta: Mapping[str, Any] | None = None,
        control: str = DEFAULT_CONTROL_ENDPOINT,
        context: zmq.Context | None = None,
        timeout_s: float = 5.0,
        send_timeout_s: float = 5.0,
        sndhwm: int = 1000,
        copy_threshold_bytes: int = 64 * 1024,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if isinstance(stream, StreamMeta):
            smeta = stream
        else:
            if channels is not None:
                if shape:
                    raise ValueError("give either channels or shape, not both")
                shape = (int(channels),)
            smeta = StreamMeta(
                stream=stream,
                modality=modality,
                rate_hz=float(rate_hz),
                shape=tuple(shape),
                dtype=dtype or (TEXT_DTYPE if modality == "text" else "f4"),
                units=units,
                clock=clock,
                session=session,
                meta=dict(meta or {}),
            )
        # Validate locally with the service's own decoder: a bad stream id, rate or shape fails here, clearly.
        self.meta = decode_open(msgpack.unpackb(encode_open(smeta)[0], raw=False), limits)
        if not (math.isfinite(send_timeout_s) and send_timeout_s > 0):
            raise ValueError(f"send_timeout_s must be a positive number of seconds, got {send_timeout_s!r}")
        self.limits = limits
        self._np_dtype = self.meta.np_dtype
        self._ndim = len(self.meta.shape) + 1
        self._header = ChunkHeaderEncoder(self.meta.stream)
        self.send_timeout_s = float(send_timeout_s)
        self.copy_threshold_bytes = int(copy_threshold_bytes)
        self._own_ctx = context is None
        self._ctx = zmq.Context() if context is None else context
        self._push: zmq.Socket | None = None
        self._trackers: collections.deque[zmq.MessageTracker] = collections.deque()
        self._ack: CloseAck | None = None
        self.chunks_sent = 0
        self.samples_sent = 0
        self._control: Control | None = None
        try:
            self._control = Control(control, context=self._ctx, timeout_s=timeout_s, limits=limits)
            opened: Opened = self._control.open(self.meta)
            self.endpoint = opened.endpoint
            self.resume_seq = opened.resume_seq
            self._seq = opened.resume_seq + 1
            self._push = self._ctx.socket(zmq.PUSH)
            self._push.setsockopt(zmq.LINGER, 0)
            self._push.setsockopt(zmq.SNDHWM, int(sndhwm))
            self._push.setsockopt(zmq.SNDTIMEO, max(1, round(self.send_timeout_s * 1000)))
            self._push.connect(self.endpoint)
        except BaseException:
            self._teardown()
            raise
        log.debug("stream %s open: pushing to %s from seq %d", self.meta.stream, self.endpoint, self._seq)

    # ------------------------------------------------------------------------------------------ state

    @property
    def stream(self) -> str:
        return self.meta.stream

    @property
    def seq(self) -> int:
        """The seq the next chunk will carry."""
        return self._seq

    @property
    def last_seq(self) -> int:
        """The seq of the last chunk sent (``resume_seq`` when none was sent by this publisher)."""
        return self._seq - 1

    @property
    def closed(self) -> bool:
        return self._push is None

    # ------------------------------------------------------------------------------------------ sending

    def _as_chunk(self, samples: Any) -> np.ndarray:
        """``samples`` as a C-contiguous little-endian ``(n, *shape)`` array of the stream's dtype (the slow
        path of `send`: checks shape, converts dtype where that is safe)."""
        meta = self.meta
        arr = np.asarray(samples)
        if arr.ndim == len(meta.shape):  # a single sample
            arr = arr.reshape((1, *arr.shape))
        if arr.ndim != len(meta.shape) + 1 or tuple(arr.shape[1:]) != meta.shape:
            raise ProtocolError(
                "bad_shape",
                f"samples have shape {arr.shape} but stream {meta.stream!r} was opened with sample shape "
                f"{meta.shape}: send an array of shape (n, {', '.join(map(str, meta.shape))})",
            )
        want = DTYPES[meta.dtype]
        code = dtype_code(arr.dtype)
        if not (
            code == meta.dtype
            or (want.kind == "f" and arr.dtype.kind in "uif")
            or (arr.dtype.kind in "uib" and np.can_cast(arr.dtype, want, "safe"))
        ):
            raise ProtocolError(
                "bad_dtype",
                f"samples are {arr.dtype} but stream {meta.stream!r} carries {meta.dtype} ({want}); convert them "
                f"explicitly (checking the range), e.g. samples.astype(np.{want.name})",
            )
        return np.ascontiguousarray(arr, dtype=want)

    def send(self, samples: Any, t_dev_s: float, duration_s: float | None = None) -> int | None:
        """Send one chunk: ``samples`` is an ``(n, *shape)`` array (or one sample of ``shape``), or a ``str``
        for a text stream; ``t_dev_s`` the device time of its first sample, s; ``duration_s`` (text only)
        how long the caption spans, s. Returns the chunk's seq, or None for an empty chunk (nothing is sent).

        Raises `BackpressureError` when the service does not take the chunk within ``send_timeout_s``; the
        chunk was not sent and its seq is not used, so the call may be retried."""
        if self._push is None:
            raise ProtocolError("unknown_stream", f"stream {self.meta.stream!r} is closed; open a new Publisher")
        if (
            isinstance(t_dev_s, bool)
            or not isinstance(t_dev_s, (int, float, np.floating, np.integer))
            or not math.isfinite(t_dev_s)
        ):
            raise ProtocolError("bad_timestamp", f"t_dev_s must be a finite number of seconds, got {t_dev_s!r}")
        if duration_s is not None and (not math.isfinite(duration_s) or duration_s < 0):
            raise ProtocolError("bad_field", f"duration_s must be a finite number of seconds >= 0, got {duration_s!r}")
        if self.meta.modality == "text":
            if not isinstance(samples, str):
                raise ProtocolError("bad_text", f"stream {self.meta.stream!r} is a text stream: send a str")
            if not samples:
                return None
            if len(samples) > self.limits.max_text_chars:
                raise ProtocolError(
                    "bad_text", f"text chunk longer than {self.limits.max_text_chars} characters; split it"
                )
            payload = samples.encode("utf-8")
            n, nbytes = 1, len(payload)
        else:
            if duration_s is not None:
                raise ProtocolError("bad_field", "duration_s is for text chunks only")
            arr = samples
            if not (  # fast path: already exactly what goes on the wire
                type(arr) is np.ndarray
                and arr.dtype == self._np_dtype
                and arr.shape[1:] == self.meta.shape
                and arr.ndim == self._ndim
                and arr.flags.c_contiguous
            ):
                arr = self._as_chunk(samples)
            n, nbytes = arr.shape[0], arr.nbytes
            if n == 0:
                return None
            if n > self.limits.max_samples_per_chunk or nbytes > self.limits.max_payload_bytes:
                raise ProtocolError(
                    "payload_too_large",
                    f"chunk of {n} samples / {nbytes} bytes exceeds the limits ({self.limits.max_samples_per_chunk} "
                    f"samples, {self.limits.max_payload_bytes} bytes): send it in smaller chunks",
                )
            payload = arr
        seq = self._seq
        header = self._header(seq, float(t_dev_s), n, None if duration_s is None else float(duration_s))
        self._push_frames(header, payload, nbytes, seq)
        self._seq += 1
        self.chunks_sent += 1
        self.samples_sent += n
        return seq

    def _push_frames(self, header: bytes, payload: Any, nbytes: int, seq: int | None) -> None:
        push = self._push
        assert push is not None
        try:
            if payload is None:
                push.send(header)
            elif nbytes >= self.copy_threshold_bytes:
                push.send(header, _SNDMORE)  # may raise Again: then nothing was queued
                tracker = push.send(payload, copy=False, track=True)  # after SNDMORE: never blocks
                while self._trackers and self._trackers[0].done:
                    self._trackers.popleft()
                self._trackers.append(tracker)
            else:
                push.send(header, _SNDMORE)
                push.send(payload)
        except zmq.Again:
            what = "the end-of-stream marker" if seq is None else f"chunk seq {seq}"
            raise BackpressureError(
                f"the service did not take {what} of stream {self.meta.stream!r} within {self.send_timeout_s:g} s: "
                f"its ingest queue at {self.endpoint} is full (the service is slower than this stream, or not "
                f"running). The chunk was not sent; retry it, slow down, or raise send_timeout_s."
            ) from None

    def reopen(self, timeout_s: float | None = None) -> int:
        """Open the stream again on the control socket, e.g. after the service restarted or after a
        `BackpressureError` while the service was down: the PUSH socket is moved if the service names another
        endpoint, and numbering continues after the larger of this publisher's last seq and the service's
        ``resume_seq``. Chunks still queued for the old endpoint are dropped. Returns the next seq."""
        if self._push is None or self._control is None:
            raise ProtocolError("unknown_stream", f"stream {self.meta.stream!r} is closed; open a new Publisher")
        opened = self._control.open(self.meta, timeout_s)
        if opened.endpoint != self.endpoint:
            push = self._ctx.socket(zmq.PUSH)
            for opt in (zmq.LINGER, zmq.SNDHWM, zmq.SNDTIMEO):
                push.setsockopt(opt, self._push.getsockopt(opt))
            try:
                push.connect(opened.endpoint)
            except zmq.ZMQError:
                push.close(linger=0)
                raise
            self._push.close(linger=0)
            self._push = push
            self._trackers.clear()
            self.endpoint = opened.endpoint
        self.resume_seq = opened.resume_seq
        self._seq = max(self._seq, opened.resume_seq + 1)
        log.info("stream %s reopened: pushing to %s from seq %d", self.meta.stream, self.endpoint, self._seq)
        return self._seq

    def wait_sent(self, timeout_s: float | None = None) -> bool:
        """Wait until every zero-copy chunk sent so far has left its buffer (ZeroMQ released it); True if so
        within ``timeout_s`` (None: no limit). After this, arrays passed to `send` may be modified."""
        while self._trackers:
            try:
                self._trackers[0].wait(timeout_s if timeout_s is None else max(timeout_s, 0.001))
            except zmq.NotDone:
                return False
            self._trackers.popleft()
        return True

    # ------------------------------------------------------------------------------------------ closing

    def close(self, timeout_s: float = 5.0) -> CloseAck:
        """End the stream: push the end-of-stream marker, then wait for the service's acknowledgement that it
        processed every chunk through `last_seq`. Raises `ServiceTimeout` if it does not come within
        ``timeout_s`` (the sockets are closed either way). Idempotent: a second call returns the same ack."""
        if self._ack is not None:
            return self._ack
        if self._push is None:
            raise ServiceTimeout(f"stream {self.meta.stream!r} was aborted or its close failed; nothing to acknowledge")
        try:
            self._push.setsockopt(zmq.SNDTIMEO, max(1, round(timeout_s * 1000)))
            self._push_frames(encode_close(self.meta.stream, self.last_seq)[0], None, 0, None)
            self._ack = self._control.close(self.meta.stream, self.last_seq, timeout_s)
        except BackpressureError as exc:
            raise ServiceTimeout(f"could not send the end-of-stream marker: {exc}") from None
        finally:
            self._teardown()
        return self._ack

    def abort(self) -> None:
        """Close the sockets now, without an end-of-stream marker: chunks still queued may be lost."""
        self._teardown()

    def _teardown(self) -> None:
        self._trackers.clear()
        if self._push is not None:
            self._push.close(linger=0)
            self._push = None
        control = getattr(self, "_control", None)
        if control is not None:
            control.disconnect()
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> Publisher:  # noqa: PYI034  Publisher is not meant to be subclassed
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
