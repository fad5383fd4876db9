"""sync.bundle: ApproximateTime guarantees (each sample at most once, tight sets, in order), max wait and the
incomplete flag."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.engine.bundle import Bundler, MemberView
from warpsync.engine.config import BundleConfig


def member(name, rate, offset_s, covered, gaps=(), drift_ppm=0.0, confidence=0.9):
    """A member whose sample k is at local time k / rate, local = ref + offset (+ drift); `gaps` are dropped
    index ranges [a, b)."""
    k = 1 + drift_ppm * 1e-6

    def to_local(T):
        return (T + offset_s) * k

    def to_ref(t):
        return t / k - offset_s

    def index_of(t):
        i = round(t * rate)
        if i < 0 or any(a <= i < b for a, b in gaps):
            return None
        return i, i / rate

    return MemberView(name, rate, covered, to_local, index_of, to_ref, confidence)


def test_hand_worked_two_streams():
    b = Bundler(BundleConfig(max_wait_s=0.1), "s", "ref", tick_hz=10.0)
    ms = [member("a", 10.0, 0.0, 1.0), member("b", 30.0, 0.012, 1.0)]
    out = b.ready(ms, now_s=0.0)
    # first tick at ceil(1.0 * 10) / 10 = 1.0; both nearest samples (a: 1.0, b: 1.0 - 0.012) have arrived
    assert [o["t_s"] for o in out] == pytest.approx([1.0])
    ms = [member("a", 10.0, 0.0, 1.26), member("b", 30.0, 0.012, 1.26)]
    out = out + b.ready(ms, now_s=0.0)
    assert [o["t_s"] for o in out] == pytest.approx([1.0, 1.1, 1.2])
    first = out[0]
    assert not first["incomplete"] and first["missing"] == []
    a, bb = first["members"]
    assert a == {"stream": "a", "index": 10, "t_local_s": 1.0, "residual_s": 0.0}
    # b: local 1.012 -> nearest sample 30 (1.0 s) -> residual 1.0 - 0.012 - 1.0 = -0.012
    assert bb["index"] == 30 and bb["residual_s"] == pytest.approx(-0.012)
    assert first["confidence"] == pytest.approx(0.9)


def test_each_sample_used_at_most_once_and_sets_are_tight(rng):
    b = Bundler(BundleConfig(max_wait_s=0.05), "s", "host", tick_hz=30.0)
    used = {"v": set(), "a": set(), "i": set()}
    t = 0.0
    bundles = []
    for step in range(200):
        t += rng.uniform(0.0, 0.05)
        ms = [member("v", 30.0, 0.0133, t), member("a", 1000.0, 2.5, t, drift_ppm=150), member("i", 200.0, 7.1, t)]
        for o in b.ready(ms, now_s=t):
            bundles.append(o)
            assert o["incomplete"] == bool(o["missing"])
            for m in o["members"]:
                assert m["index"] not in used[m["stream"]]
                used[m["stream"]].add(m["index"])
                rate = {"v": 30.0, "a": 1000.0, "i": 200.0}[m["stream"]]
                assert abs(m["residual_s"]) <= 0.5 / rate + 1e-9
    assert len(bundles) >= 0.9 * t * 30
    assert np.all(np.diff([o["t_s"] for o in bundles]) > 0)
    assert np.mean([not o["incomplete"] for o in bundles]) > 0.9


def test_late_stream_waits_at_most_max_wait_then_incomplete():
    b = Bundler(BundleConfig(max_wait_s=0.1), "s", "host", tick_hz=10.0)
    fast = lambda cov: member("fast", 100.0, 0.0, cov)
    slow = lambda cov: member("slow", 100.0, 0.0, cov)
    first = b.ready([fast(5.0), slow(5.0)], now_s=100.0)  # grid starts at 5.0, both have it
    assert [o["t_s"] for o in first] == [5.0] and not first[0]["incomplete"]
    assert b.ready([fast(5.15), slow(5.05)], now_s=100.0) == []  # 5.1: fast has it, slow does not: wait
    assert b.ready([fast(5.15), slow(5.05)], now_s=100.09) == []
    out = b.ready([fast(5.15), slow(5.05)], now_s=100.11)
    assert len(out) == 1 and out[0]["t_s"] == pytest.approx(5.1)
    assert out[0]["incomplete"] and out[0]["missing"] == ["slow"]
    assert out[0]["confidence"] == 0.0
    assert [m["stream"] for m in out[0]["members"]] == ["fast"]
    # slow catches up: the next tick is complete
    out = b.ready([fast(5.25), slow(5.25)], now_s=100.2)
    assert [o["incomplete"] for o in out] == [False]


def test_dropped_samples_make_the_member_missing():
    b = Bundler(BundleConfig(max_wait_s=0.1), "s", "host", tick_hz=10.0)
    ms = [member("a", 100.0, 0.0, 3.0), member("b", 100.0, 0.0, 3.0, gaps=((140, 160),))]
    b.ready([member("a", 100.0, 0.0, 1.0), member("b", 100.0, 0.0, 1.0)], now_s=0.0)
    out = b.ready(ms, now_s=0.0)
    by_t = {round(o["t_s"], 3): o for o in out}
    assert by_t[1.5]["incomplete"] and by_t[1.5]["missing"] == ["b"]
    assert not by_t[1.6]["incomplete"]


def test_far_behind_skips_to_the_present_instead_of_flooding():
    b = Bundler(BundleConfig(), "s", "host", tick_hz=100.0)
    b.ready([member("a", 100.0, 0.0, 1.0)], now_s=0.0)
    out = b.ready([member("a", 100.0, 0.0, 60.0)], now_s=0.0)
    assert 0 < len(out) <= 256
    assert out[0]["t_s"] >= 57.0
    assert np.all(np.diff([o["t_s"] for o in out]) > 0)
