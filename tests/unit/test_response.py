"""`engine.response`: the contact response a sensor learns against its microphone (`content.contact_response`)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from warpsync.engine.response import ContactResponse, fit_response

LO, HI = -30, 90  # lags, 1 ms grid steps


def _kick_shape(n_ms: int) -> np.ndarray:
    """|acceleration| of a raised-cosine velocity change lasting `n_ms`, per ms after its start."""
    t = np.arange(n_ms + 1)
    return np.sin(np.pi * t / n_ms)


def _scene(seed: int, n: int, kick_ms: int = 40):
    """A microphone hearing the starts of the sensor's object's contacts and three times as many others, and the
    sensor's kinetic envelope (its own contacts only), on one 1 ms grid."""
    rng = np.random.default_rng(seed)
    own = np.zeros(n)
    own[rng.choice(np.arange(200, n - 200), n // 700, replace=False)] = rng.uniform(0.5, 1.0, n // 700)
    others = np.zeros(n)
    others[rng.choice(np.arange(200, n - 200), 3 * n // 700, replace=False)] = rng.uniform(0.3, 1.0, 3 * n // 700)
    mic = own + others + 0.02 * rng.random(n)
    kinetic = np.convolve(own, _kick_shape(kick_ms))[:n] + 0.01 * rng.standard_normal(n)
    return mic, kinetic


def test_learned_in_pieces_with_gaps_equals_the_one_shot_fit():
    mic, kin = _scene(1, 20_000)
    mic[5000:5300] = np.nan  # a gap in the microphone's impacts
    kin[12_000:12_100] = np.nan  # and in the sensor's
    ref = fit_response(mic, kin, LO, HI)
    r = ContactResponse(0.001, (LO * 1e-3, HI * 1e-3), memory_s=math.inf)
    n = len(kin) + LO - HI
    cuts = [0, 1, 4321, 5100, 9000, 15_555, n]
    for a, b in itertools.pairwise(cuts):
        r.add(mic[a : b + HI - LO], kin[HI + a : HI + b])
    np.testing.assert_allclose(r.response, ref, rtol=1e-9, atol=1e-12)
    rows = n - 300 - (HI - LO) - 100  # output rows that touch neither gap
    assert rows * 0.001 <= r.learned_s <= n * 0.001
    with pytest.raises(ValueError, match="points"):
        r.add(mic[:100], kin[:100])


@pytest.mark.parametrize("kick_ms", [8, 40, 80])
def test_the_microphones_other_contacts_shrink_the_response_but_do_not_shift_it(kick_ms):
    mic, kin = _scene(2, 60_000, kick_ms)
    r = ContactResponse(0.001, (LO * 1e-3, HI * 1e-3))
    n = len(kin) + LO - HI
    r.add(mic[: n + HI - LO], kin[HI : HI + n])
    resp = r.response
    lags = r.lags
    true_peak = kick_ms // 2
    assert abs(lags[np.argmax(resp)] - true_peak) <= 1
    # the response's mass sits where the velocity change does, and nowhere before the contact starts
    pos = np.maximum(resp, 0.0)
    centroid = float((lags * pos).sum() / pos.sum())
    assert abs(centroid - true_peak) <= max(1.5, 0.1 * kick_ms)
    assert pos[lags < -2].sum() < 0.05 * pos.sum()
    # applied to the microphone it predicts the sensor's own envelope where only its object made contact
    pred = r.apply(mic[: n + HI - LO])
    assert np.corrcoef(pred, kin[HI : HI + n])[0, 1] > 0.4


def test_applied_response_is_missing_where_an_impact_was():
    mic, kin = _scene(3, 5000)
    r = ContactResponse(0.001, (LO * 1e-3, HI * 1e-3))
    n = len(kin) + LO - HI
    r.add(mic[: n + HI - LO], kin[HI : HI + n])
    mic[2000] = np.nan
    out = r.apply(mic[: n + HI - LO])
    # output i uses inputs i .. i + HI - LO
    assert np.isnan(out[2000 - (HI - LO) : 2001]).all()
    assert np.isfinite(out[: 2000 - (HI - LO)]).all() and np.isfinite(out[2001:]).all()
    assert (out[np.isfinite(out)] >= 0).all()


def test_nothing_learned_is_a_zero_response():
    r = ContactResponse(0.001)
    assert r.learned_s == 0 and not r.response.any()
    r.add(np.full(130, np.nan), np.full(10, np.nan))
    assert r.learned_s == 0 and not r.response.any()
