"""Per-stream validation state of one ingest worker (pure: no sockets).

A worker owns a set of streams; every chunk of a stream passes through the same worker in order, so the
checks that need history live here:

* ``open``: a new stream is registered (at most ``max_streams`` known at once; the oldest closed stream is
  forgotten to make room); re-opening with the same metadata resumes it, with different metadata is
  rejected (``reopen_mismatch``);
* chunks: decoded and validated against the stream's metadata (`warpsync_client.protocol.decode_chunk`),
  then sequence numbers (gaps counted, duplicates and reordered chunks rejected as ``seq_backwards`` since
  the buffers are append-only in time), device times (a jump backwards beyond ``max_time_jump_s`` is
  rejected as ``time_jump``, one forwards without a sequence gap is kept and flagged) and NaN/Inf
  (``nan_policy``).

Every failure raises `ProtocolError` with a stable reason; `Rejection.kind` refines ``seq_backwards``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from warpsync_client import protocol as P
from warpsync_client.protocol import DEFAULT_LIMITS, REASONS, Chunk, Limits, StreamMeta, decode_chunk

from ..errors import ProtocolError
from .finite import any_nonfinite

#: reasons the service adds to the protocol's own (`warpsync_client.protocol.REASONS`)
SERVICE_REASONS = ("too_many_streams", "stream_closed", "worker_mismatch", "worker_restart", "internal")
ALL_REASONS = tuple(REASONS) + tuple(r for r in SERVICE_REASONS if r not in REASONS)

SEQ_WINDOW = 1024  # how far back duplicates are told apart from reordered chunks
_SEQ_MASK = (1 << SEQ_WINDOW) - 1


class SeqBackwards(ProtocolError):
    """A chunk whose seq is not after the last one; `kind` is ``duplicate`` or ``reordered``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__("seq_backwards", message)
        self.kind = kind


@dataclass
class StreamState:
    meta: StreamMeta
    open: bool = True
    last_seq: int = -1
    seen_mask: int = 0
    """Bit i set: seq ``last_seq - i`` was accepted (for i < SEQ_WINDOW)."""
    next_t_s: float | None = None
    """Expected device time of the next chunk's first sample (end of the previous chunk)."""
    bytes_per_sample: int = 0
    np_dtype: np.dtype | None = None

    def __post_init__(self) -> None:
        self.bytes_per_sample = self.meta.bytes_per_sample()
        self.np_dtype = self.meta.np_dtype


class Accepted(NamedTuple):
    """An accepted chunk (a NamedTuple: created per message on the hot path, where a frozen dataclass costs
    several times more)."""

    stream: str
    seq: int
    t_dev_s: float
    n: int
    payload: Any
    """The payload to forward: the received buffer (text: the decoded str), or a zero-filled copy under
    ``nan_policy = zero`` (then `modified` is true)."""
    duration_s: float | None
    gap: int
    """Sequence numbers skipped just before this chunk."""
    time_jump: bool
    """Device time jumped forwards by more than ``max_time_jump_s`` with no sequence gap."""
    nonfinite: bool
    """The chunk had NaN/Inf samples (kept or zero-filled per policy)."""
    modified: bool = False


def meta_equal(a: StreamMeta, b: StreamMeta) -> bool:
    return (
        a.stream == b.stream
        and a.modality == b.modality
        and a.rate_hz == b.rate_hz
        and tuple(a.shape) == tuple(b.shape)
        and a.dtype == b.dtype
        and a.units == b.units
        and a.clock == b.clock
        and a.session == b.session
        and dict(a.meta) == dict(b.meta)
    )


def meta_to_wire(meta: StreamMeta) -> dict[str, Any]:
    """The open-header fields of `meta` (what `decode_open` takes), to pass a stream between processes."""
    return P.open_header(meta)


def has_nonfinite(arr: np.ndarray) -> bool:
    """True when a float array holds NaN or Inf. A finite sum proves every value finite (NaN and Inf
    propagate); only when the sum is not finite (NaN/Inf, or a sum of large finite values that overflowed)
    is every value checked. The sum runs in the array's own dtype (no cast: cheapest for small chunks); in
    the rare overflow case numpy may warn once ("overflow encountered in reduce"): harmless here, and not
    silenced because `warnings.catch_warnings` would cost more than the check itself."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return False
    if arr.nbytes >= LARGE_CHECK_BYTES and arr.flags.c_contiguous:
        return any_nonfinite(arr, arr.dtype.str)  # the bit test: one pass, no overflow case, GIL released
    s = _add_reduce(arr)
    if _isfinite(s):
        return False
    return not bool(np.isfinite(arr).all())


LARGE_CHECK_BYTES = 64 * 1024
"""From this size `has_nonfinite` tests bit patterns (`finite.any_nonfinite`, about 20 µs per MiB here,
half the sum's time, and it releases the GIL for the threads it shares the process with)."""
_add_reduce = np.add.reduce
_isfinite = math.isfinite


class StreamTable:
    """The streams one worker validates chunks for."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        max_streams: int = 1024,
        nan_policy: Literal["reject", "zero", "keep"] = "reject",
        max_time_jump_s: float = 1.0,
    ) -> None:
        self.limits = limits
        self.max_streams = int(max_streams)
        self.nan_policy = nan_policy
        self.max_time_jump_s = float(max_time_jump_s)
        self._streams: OrderedDict[str, StreamState] = OrderedDict()
        self._undo: dict[str, tuple] | None = None

    def __contains__(self, stream: str) -> bool:
        return stream in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def get(self, stream: str) -> StreamState | None:
        return self._streams.get(stream)

    def open(self, meta: StreamMeta, resume_seq: int | None = None) -> StreamState:
        """Register or re-open `meta`. `resume_seq` (from the service, after a worker restart) restores the
        sequence position. Raises ``reopen_mismatch`` or ``too_many_streams``."""
        st = self._streams.get(meta.stream)
        if st is not None:
            if not meta_equal(st.meta, meta):
                raise ProtocolError(
                    "reopen_mismatch",
                    f"stream {meta.stream!r} is already open with different metadata "
                    f"({_meta_diff(st.meta, meta)}); use a new stream id or the same metadata",
                )
            st.open = True
            self._streams.move_to_end(meta.stream)
        else:
            if len(self._streams) >= self.max_streams and not self._forget_one_closed():
                raise ProtocolError(
                    "too_many_streams",
                    f"{self.max_streams} streams are open (ingest.max_streams); close some before opening more",
                )
            st = StreamState(meta)
            self._streams[meta.stream] = st
        if resume_seq is not None and resume_seq > st.last_seq:
            st.last_seq = resume_seq
            st.seen_mask = 1
        return st

    def _forget_one_closed(self) -> bool:
        for sid, st in self._streams.items():
            if not st.open:
                del self._streams[sid]
                return True
        return False

    def forget(self, stream: str) -> None:
        self._streams.pop(stream, None)

    def close(self, stream: str) -> StreamState:
        st = self._streams.get(stream)
        if st is None:
            raise ProtocolError("unknown_stream", f"stream {stream!r} was never opened; send an open first")
        st.open = False
        return st

    # ----------------------------------------------------------------------------------- segments
    def begin_segment(self) -> None:
        """Start remembering the sequence/time state of every stream a chunk advances, so that `rollback`
        can undo them. The worker checks the finiteness of a run of small chunks at once, after accepting
        them provisionally (`chunk_unchecked`); if the run holds a NaN/Inf it rolls back and redoes the run
        one chunk at a time (`chunk`), which gives exactly the per-chunk outcome. Opens, closes and forgets
        must not happen inside a segment (they are not undone): end the segment first."""
        self._undo = {}

    def end_segment(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        """Restore every stream advanced since `begin_segment` (the segment stays open, now empty)."""
        if self._undo:
            for st, last_seq, seen_mask, next_t_s in self._undo.values():
                st.last_seq, st.seen_mask, st.next_t_s = last_seq, seen_mask, next_t_s
        self._undo = {} if self._undo is not None else None

    # -------------------------------------------------------------------------------------- chunks
    def validate(self, hdr: Mapping[str, Any], payload: Any) -> tuple:
        """Every check of a chunk except NaN/Inf, without changing any state. Returns
        ``(state, stream, seq, t_dev_s, n, data, duration_s, gap, time_jump)``; raises `ProtocolError`."""
        sid = hdr.get("stream")
        st = self._streams.get(sid) if isinstance(sid, str) else None
        if st is None:
            if isinstance(sid, str):
                raise ProtocolError("unknown_stream", f"stream {sid!r} was never opened; send an open first")
            raise ProtocolError(
                "missing_field" if sid is None else "bad_field", "header field 'stream' must be a string"
            )
        if not st.open:
            raise ProtocolError("stream_closed", f"stream {sid!r} was closed; open it again to send more")
        meta = st.meta
        ch: Chunk = decode_chunk(hdr, payload, meta, self.limits)
        seq, t, n, data, dur = ch.seq, ch.t_dev_s, ch.n, ch.payload, ch.duration_s
        gap = 0
        if seq <= st.last_seq:
            back = st.last_seq - seq
            seen = back < SEQ_WINDOW and (st.seen_mask >> back) & 1
            kind = "duplicate" if seen else "reordered"
            raise SeqBackwards(
                kind, f"stream {sid!r}: seq {seq} is not after the last accepted seq {st.last_seq} ({kind})"
            )
        if st.last_seq >= 0:
            gap = seq - st.last_seq - 1
        jump = False
        if st.next_t_s is not None:
            dt = t - st.next_t_s
            if dt < -self.max_time_jump_s:
                raise ProtocolError(
                    "time_jump",
                    f"stream {sid!r}: chunk seq {seq} starts at t={t:.6f} s, {-dt:.3f} s before the end of the "
                    f"previous chunk (limit ingest.max_time_jump_s = {self.max_time_jump_s} s); device times must "
                    "not go backwards",
                )
            jump = gap == 0 and meta.rate_hz > 0 and dt > self.max_time_jump_s
        return st, sid, seq, t, n, data, dur, gap, jump

    def commit(self, st: StreamState, seq: int, t: float, n: int) -> None:
        """Advance a stream past an accepted chunk (after `validate`)."""
        undo = self._undo
        if undo is not None and st.meta.stream not in undo:
            undo[st.meta.stream] = (st, st.last_seq, st.seen_mask, st.next_t_s)
        step = seq - st.last_seq if st.last_seq >= 0 else SEQ_WINDOW
        st.seen_mask = ((st.seen_mask << step) | 1) & _SEQ_MASK if step < SEQ_WINDOW else 1
        st.last_seq = seq
        rate = st.meta.rate_hz
        st.next_t_s = t + n / rate if rate > 0 else t

    def non_finite_error(self, sid: str, seq: int) -> ProtocolError:
        return ProtocolError(
            "non_finite", f"stream {sid!r}: chunk seq {seq} holds NaN/Inf samples (ingest.nan_policy = reject)"
        )

    def chunk_fast(self, hdr: dict, nbytes: int) -> tuple | None:
        """`chunk_unchecked` for the plain case, in one function (the per-message hot path of a worker): an
        array chunk of an open stream whose fields are well formed, whose payload has the declared size, in
        sequence order and with no backwards time jump. Returns ``(state, stream, seq, t_dev_s, n, gap,
        time_jump)`` with the stream advanced, or ``None`` with nothing changed for anything else, valid or
        not: the caller then takes `chunk_unchecked` / `chunk`, which give the exact outcome and reason.
        The checks are `decode_chunk`'s and `validate`'s; tests pin the two paths to the same result."""
        sid = hdr.get("stream")
        if type(sid) is not str:
            return None
        st = self._streams.get(sid)
        if st is None or not st.open or st.np_dtype is None or len(hdr) != 6:
            return None  # six fields: v, type (checked by the caller), stream, seq, t, n; nothing else
        seq = hdr.get("seq")
        t = hdr.get("t")
        n = hdr.get("n")
        last = st.last_seq
        if (
            type(seq) is not int
            or type(n) is not int
            or type(t) is not float
            or not last < seq < 9223372036854775808
            or not 1 <= n <= self.limits.max_samples_per_chunk
            or t - t != 0.0
            or nbytes != n * st.bytes_per_sample
            or nbytes > self.limits.max_payload_bytes
        ):
            return None
        jump = False
        next_t = st.next_t_s
        if next_t is not None:
            dt = t - next_t
            if dt < -self.max_time_jump_s:
                return None
            jump = last == seq - 1 and dt > self.max_time_jump_s and st.meta.rate_hz > 0
        self.commit(st, seq, t, n)
        return st, sid, seq, t, n, seq - last - 1 if last >= 0 else 0, jump

    def chunk_unchecked(self, hdr: Mapping[str, Any], payload: Any) -> tuple:
        """`validate` and `commit` without the NaN/Inf check, for a caller that checks finiteness itself
        before the result is final (inside a segment, see `begin_segment`). Same return as `validate`."""
        v = self.validate(hdr, payload)
        self.commit(v[0], v[2], v[3], v[4])
        return v

    def chunk(self, hdr: Mapping[str, Any], payload: Any) -> Accepted:
        """Validate one chunk and advance its stream's state. Raises `ProtocolError` (state unchanged)."""
        st, sid, seq, t, n, data, dur, gap, jump = self.validate(hdr, payload)
        out_payload = data
        nonfinite = False
        modified = False
        if st.np_dtype is not None:
            arr = np.frombuffer(data, dtype=st.np_dtype)
            if has_nonfinite(arr):
                nonfinite = True
                if self.nan_policy == "reject":
                    raise self.non_finite_error(sid, seq)
                if self.nan_policy == "zero":
                    fixed = np.where(np.isfinite(arr), arr, 0).astype(arr.dtype)
                    out_payload = memoryview(fixed).cast("B")
                    modified = True
        self.commit(st, seq, t, n)
        return Accepted(sid, seq, t, n, out_payload, dur, gap, jump, nonfinite, modified)


def _meta_diff(a: StreamMeta, b: StreamMeta) -> str:
    diffs = []
    for name in ("modality", "rate_hz", "shape", "dtype", "units", "clock", "session", "meta"):
        va, vb = getattr(a, name), getattr(b, name)
        if name == "meta":
            va, vb = dict(va), dict(vb)
        if name == "shape":
            va, vb = tuple(va), tuple(vb)
        if va != vb:
            diffs.append(f"{name} {va!r} != {vb!r}")
    return ", ".join(diffs) or "no difference"
