"""`copy_check_finite` (one pass: copy + NaN/Inf check on bit patterns) and `any_nonfinite` (the check alone,
for a payload kept where it arrived) against their NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.ingest.finite import (
    any_nonfinite,
    any_nonfinite_reference,
    copy_check_finite,
    copy_check_finite_reference,
)
from warpsync.ingest.streams import has_nonfinite

FLOATS = ("f2", "f4", "f8")


def _both(src: np.ndarray, code: str) -> tuple[bool, bool, np.ndarray]:
    raw = src.tobytes()
    dst = np.zeros(len(raw), np.uint8)
    ref_dst = np.zeros(len(raw), np.uint8)
    got = copy_check_finite(raw, dst, code)
    want = copy_check_finite_reference(raw, ref_dst, code)
    np.testing.assert_array_equal(dst, ref_dst)
    assert dst.tobytes() == raw
    assert any_nonfinite(raw, code) is any_nonfinite_reference(raw, code) is want
    return got, want, dst


@pytest.mark.parametrize("code", FLOATS)
@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 65537])
def test_random_finite_and_planted_nonfinite_match_the_reference(rng, code, n):
    x = (rng.standard_normal(n) * 100).astype(code)
    got, want, _ = _both(x, code)
    assert got == want is False
    for bad in (np.nan, np.inf, -np.inf):
        if n == 0:
            continue
        y = x.copy()
        y[rng.integers(n)] = bad
        got, want, _ = _both(y, code)
        assert got == want is True


@pytest.mark.parametrize("code", FLOATS)
def test_extremes_are_finite_and_every_nan_payload_is_not(code):
    fi = np.finfo(code)
    # the largest finite values, the smallest subnormal, signed zeros: all finite; a sum of the maxima
    # overflows (the reason the old check needed a second pass), the bit test does not care
    x = np.array([fi.max, -fi.max, fi.max, fi.smallest_subnormal, -0.0, 0.0], dtype=code)
    got, want, _ = _both(x, code)
    assert got == want is False
    with np.errstate(over="ignore"):
        assert not has_nonfinite(x)
    # NaNs with other payload bits and signs (all exponent bits set, any mantissa != 0)
    word = {"f2": np.uint16, "f4": np.uint32, "f8": np.uint64}[code]
    bits = x.view(word).copy()
    exp = {"f2": 0x7C00, "f4": 0x7F800000, "f8": 0x7FF0000000000000}[code]
    for mantissa in (1, 3, exp >> 1 & ~exp or 1):
        b = bits.copy()
        b[2] = word(exp | (mantissa & ~exp)) | word(1 << (8 * np.dtype(word).itemsize - 1))
        got, want, _ = _both(b.view(code), code)
        assert got == want is True


@pytest.mark.parametrize("code", ["u1", "i2", "i4"])
def test_integer_dtypes_are_copied_and_never_non_finite(rng, code):
    x = rng.integers(0, 100, 999).astype(code)
    x.view(np.uint8)[:4] = 0xFF  # bytes that would read as NaN in a float
    got, want, _ = _both(x, code)
    assert got is False and want is False


def test_unaligned_buffers_fall_back_to_numpy_with_the_same_result(rng):
    x = rng.standard_normal(100).astype("f4")
    x[50] = np.nan
    raw = b"\0" + x.tobytes()
    src = memoryview(raw)[1:]  # 1-byte offset: not 4-byte aligned
    dst = np.zeros(len(src), np.uint8)
    assert copy_check_finite(src, dst, "f4") is True
    assert dst.tobytes() == x.tobytes()
    assert any_nonfinite(src, "f4") is True
    x[50] = 0
    assert any_nonfinite(memoryview(b"\0" + x.tobytes())[1:], "f4") is False


def test_hand_worked_bit_patterns():
    # float32 0x7F800000 is +Inf, 0x7F7FFFFF is the largest finite value, 0xFFC00000 a negative quiet NaN
    words = np.array([0x3F800000, 0x7F7FFFFF], np.uint32)
    dst = np.zeros(8, np.uint8)
    assert copy_check_finite(words.tobytes(), dst, "f4") is False
    for w in (0x7F800000, 0xFFC00000, 0x7F800001):
        assert copy_check_finite(np.array([0x3F800000, w], np.uint32).tobytes(), dst, "f4") is True


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="bytes"):
        copy_check_finite(b"\0" * 8, np.zeros(4, np.uint8), "f4")
    with pytest.raises(ValueError, match="whole number"):
        copy_check_finite(b"\0" * 6, np.zeros(6, np.uint8), "f4")
    with pytest.raises(ValueError, match="uint8"):
        copy_check_finite(b"\0" * 8, np.zeros(2, np.float32), "f4")
