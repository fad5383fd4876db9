"""Copy a payload and check it for NaN/Inf in one pass (the ingest worker's large-payload path).

A large chunk is copied once by the worker (into the shared-memory arena) and must be checked for NaN/Inf
under ``ingest.nan_policy``. Done separately these are two passes over the payload (a reduction, then a
copy), and at 1 MiB each pass costs about as much as receiving the message; fused they are one.

The check works on the bit patterns: an IEEE 754 value is NaN or ±Inf exactly when its exponent bits are
all ones, so a float32 payload is read as uint32 words and tested with ``(w & 0x7F800000) == 0x7F800000``
(float64: ``0x7FF0000000000000``, float16: ``0x7C00``). Integer tests never overflow (a float sum can), and
an OR of booleans vectorises, so the kernel runs at copy speed.

Two layers, as every kernel here: `copy_check_finite` validates and dispatches; the private
``@njit(cache=True, nogil=True)`` kernels take arrays only. `copy_check_finite_reference` is the plain-NumPy
oracle the tests compare against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, types


def _sigs(word):
    """Signatures compiled up front (and cached): a read-only or writable source, a writable destination."""
    ro = types.Array(word, 1, "C", readonly=True)
    rw = types.Array(word, 1, "C")
    return [types.boolean(ro, rw, word), types.boolean(rw, rw, word)]


__all__ = [
    "EXPONENT_MASKS",
    "any_nonfinite",
    "any_nonfinite_reference",
    "copy_check_finite",
    "copy_check_finite_reference",
]

#: unsigned view dtype and exponent mask of each float dtype the protocol carries
EXPONENT_MASKS: dict[str, tuple[type, int]] = {
    "f2": (np.uint16, 0x7C00),
    "f4": (np.uint32, 0x7F800000),
    "f8": (np.uint64, 0x7FF0000000000000),
}


@njit(_sigs(types.uint16) + _sigs(types.uint32) + _sigs(types.uint64), cache=True, nogil=True)
def _copy_check(src, dst, mask):  # pragma: no cover - compiled
    """dst[:] = src, and whether any word has all its exponent bits (`mask`) set."""
    bad = False
    for i in range(src.shape[0]):
        w = src[i]
        dst[i] = w
        bad |= (w & mask) == mask
    return bad


@njit(
    [
        types.boolean(types.Array(w, 1, "C", readonly=ro), w)
        for w in (types.uint16, types.uint32, types.uint64)
        for ro in (True, False)
    ],
    cache=True,
    nogil=True,
)
def _check(src, mask):  # pragma: no cover - compiled
    """Whether any word of `src` has all its exponent bits (`mask`) set (read only: no copy)."""
    bad = False
    for i in range(src.shape[0]):
        bad |= (src[i] & mask) == mask
    return bad


def _float_words(s: np.ndarray, dtype: str, caller: str) -> tuple[str, type, int] | None:
    """``(dtype code, unsigned word type, exponent mask)`` for reading the bytes `s` as float `dtype`, or
    ``None`` for an integer dtype. Raises ``ValueError`` when `s` is not a whole number of items."""
    code = np.dtype(dtype).str.lstrip("<>|=")
    spec = EXPONENT_MASKS.get(code)
    if spec is None:
        return None
    word, mask = spec
    if s.shape[0] % np.dtype(word).itemsize:
        raise ValueError(f"{caller}: {s.shape[0]} bytes is not a whole number of {code} items")
    return code, word, mask


def any_nonfinite(src: Any, dtype: str) -> bool:
    """Whether buffer `src` holds a NaN or Inf when read as `dtype` (as `copy_check_finite`, without the copy:
    a payload kept where it arrived). One read-only pass that releases the GIL. Integer dtypes: ``False``.

    Raises ``ValueError`` when the length is not a whole number of `dtype` items."""
    s = np.frombuffer(src, dtype=np.uint8)
    spec = _float_words(s, dtype, "any_nonfinite")
    if spec is None or s.shape[0] == 0:
        return False
    code, word, mask = spec
    if s.ctypes.data % np.dtype(word).itemsize:  # unaligned: numpy checks
        return not bool(np.isfinite(np.frombuffer(s.tobytes(), dtype=code)).all())
    return bool(_check(s.view(word), word(mask)))


def any_nonfinite_reference(src: Any, dtype: str) -> bool:
    """The plain-NumPy oracle of `any_nonfinite` (tests only)."""
    code = np.dtype(dtype).str.lstrip("<>|=")
    if code not in EXPONENT_MASKS:
        return False
    return not bool(np.isfinite(np.frombuffer(src, dtype=code)).all())


def copy_check_finite(src: Any, dst: np.ndarray, dtype: str) -> bool:
    """Copy the bytes of buffer `src` into the uint8 array `dst` (same length) and return whether they
    hold a NaN or Inf when read as `dtype` (a protocol dtype code such as ``"f4"``; ``"<f4"`` works too).
    Integer dtypes are copied and reported finite.

    Raises ``ValueError`` when the lengths differ or are not a whole number of `dtype` items."""
    s = np.frombuffer(src, dtype=np.uint8)
    if dst.dtype != np.uint8 or dst.ndim != 1 or not dst.flags.c_contiguous:
        raise ValueError("copy_check_finite: dst must be a contiguous 1-D uint8 array")
    if s.shape[0] != dst.shape[0]:
        raise ValueError(f"copy_check_finite: src has {s.shape[0]} bytes, dst {dst.shape[0]}")
    spec = _float_words(s, dtype, "copy_check_finite")
    if spec is None:
        dst[:] = s
        return False
    if s.shape[0] == 0:
        return False
    code, word, mask = spec
    size = np.dtype(word).itemsize
    if s.ctypes.data % size or dst.ctypes.data % size:  # unaligned: numpy copies, numpy checks
        dst[:] = s
        return not bool(np.isfinite(dst.view(code)).all())
    return bool(_copy_check(s.view(word), dst.view(word), word(mask)))


def copy_check_finite_reference(src: Any, dst: np.ndarray, dtype: str) -> bool:
    """The plain-NumPy oracle of `copy_check_finite` (tests only)."""
    s = np.frombuffer(src, dtype=np.uint8)
    dst[:] = s
    code = np.dtype(dtype).str.lstrip("<>|=")
    if code not in EXPONENT_MASKS:
        return False
    return not bool(np.isfinite(s.view(code)).all())
