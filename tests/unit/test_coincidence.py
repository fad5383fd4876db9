"""`engine.coincidence`: how many of a sensor's contacts a microphone heard at a lag, against chance."""

import numpy as np
import pytest

from warpsync.engine.coincidence import coincidence, coincidence_reference

G = 0.001


def _bumps(at, size):
    x = np.zeros(size)
    for e in at:
        x[int(e) : int(e) + 3] += [0.5, 1.0, 0.5]
    return x


def test_equals_the_loop_reference_on_random_envelopes(rng):
    for t in range(40):
        n, M = 3000, int(rng.integers(5, 250))
        ref, cand = rng.random(n) ** 8, rng.random(n + 2 * M) ** 8
        if t % 3 == 0:
            cand[rng.integers(0, len(cand), 30)] = np.nan
            ref[rng.integers(0, n, 30)] = np.nan
        j = int(rng.integers(-M, M + 1))
        got, want = coincidence(ref, cand, M, j, G), coincidence_reference(ref, cand, M, j, G)
        assert got[:2] == want[:2] and got[2] == pytest.approx(want[2], rel=1e-9, abs=1e-15)


def test_contacts_the_microphone_heard_at_the_lag_are_unlikely_by_chance(rng):
    """Five contacts of the sensor's object, each heard by the microphone 12 ms before the sensor's stamps say,
    among twenty contacts of other objects: at the true lag all five coincide and chance would not line them up
    (bound under 1e-3); 40 ms off, next to none do and the bound is 1. One contact alone never passes, however
    well it coincides: one event could carry any lag."""
    n, M, lag = 8000, 200, 12
    own = [600, 2100, 3300, 5200, 7100]
    ref = _bumps(own, n) + _bumps(rng.uniform(0, n - 10, 20), n) + np.abs(rng.normal(0, 0.01, n))
    cand = _bumps([e + M + lag for e in own], n + 2 * M) + np.abs(rng.normal(0, 0.01, n + 2 * M))
    v, k, chance = coincidence(ref, cand, M, lag, G)
    assert (v, k) == (5, 5) and chance < 1e-3
    v, k, chance = coincidence(ref, cand, M, lag + 40, G)
    assert k == 5 and v <= 1 and chance == 1.0
    one = _bumps([own[2] + M + lag], n + 2 * M)
    assert coincidence(ref, one, M, lag, G)[:2] == (1, 1) and coincidence(ref, one, M, lag, G)[2] > 0.1


def test_nothing_to_count_is_chance_one():
    n, M = 1000, 50
    assert coincidence(np.zeros(n), np.zeros(n + 2 * M), M, 0, G) == (0, 0, 1.0)
    assert coincidence(np.full(n, np.nan), np.ones(n + 2 * M), M, 0, G) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        coincidence(np.zeros(n), np.zeros(n), M, 0, G)
