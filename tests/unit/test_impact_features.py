"""Impact envelopes: slow references, hand-worked cases, streaming == offline for random chunkings, and where
they place the start of a contact the simulator renders."""

import numpy as np
import pytest

from warpsync.errors import AlignmentError
from warpsync.features import AudioImpacts, SensorImpacts, audio_impacts, impact_extractor, sensor_impacts
from warpsync.features.base import Frames
from warpsync.sim.rig import SceneConfig
from warpsync.sim.scene import Scene


def random_chunks(rng, n, max_chunk):
    a = 0
    while a < n:
        b = min(n, a + int(rng.integers(0, max_chunk + 1)))
        yield a, b
        a = b


def stream(ext, x, rng, max_chunk):
    return Frames.concat([ext.push(x[a:b]) for a, b in random_chunks(rng, len(x), max_chunk)])


def audio_impacts_slow(x, rate_hz, hop, lookback, t0_s=0.0):
    """Block by block, as the module docstring says."""
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1).mean(axis=1)
    nb = len(x) // hop
    e = [np.log(np.mean(x[k * hop : (k + 1) * hop] ** 2) + 1e-10) for k in range(nb)]
    times, vals = [], []
    for k in range(1, nb):
        times.append(t0_s + (k + 0.5) * hop / rate_hz)
        vals.append(max(0.0, e[k] - max(e[max(0, k - lookback) : k])))
    return np.array(times), np.array(vals)


def sensor_impacts_slow(x, rate_hz, t0_s=0.0):
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    j = {k: np.linalg.norm(x[k] - x[k - 1]) * rate_hz for k in range(1, len(x))}
    times = [t0_s + (k - 0.5) / rate_hz for k in range(2, len(x))]
    vals = [max(0.0, j[k] - j[k - 1]) * rate_hz for k in range(2, len(x))]
    return np.array(times), np.array(vals)


def test_audio_impacts_hand_worked():
    # blocks of 2 samples at 1 kHz: energies 1e-4, 1e-2, 1e-4, 1e-4, 1e-1 (lookback 2)
    x = np.array([0.01, 0.01, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, np.sqrt(0.1), np.sqrt(0.1)])
    fr = audio_impacts(x, 1000.0, hop_ms=2.0, lookback=2)
    np.testing.assert_allclose(fr.times_s, [0.003, 0.005, 0.007, 0.009])
    e = np.log(np.array([1e-4, 1e-2, 1e-4, 1e-4, 1e-1]) + 1e-10)
    # block 2 and 3 rise over nothing (the loud block 1 is within the lookback of both); block 4 over block 3
    np.testing.assert_allclose(fr.values, [e[1] - e[0], 0.0, 0.0, e[4] - max(e[2], e[3])])


@pytest.mark.parametrize(
    "rate,hop_ms,lookback,channels", [(16000.0, 1.0, 5, 1), (48000.0, 1.0, 3, 2), (8000.0, 2.0, 1, 1)]
)
def test_audio_impacts_equal_the_slow_reference_and_stream(rng, rate, hop_ms, lookback, channels):
    x = rng.normal(0, 0.01, (int(rate * 0.4), channels)) * rng.uniform(0.1, 3.0, (int(rate * 0.4), 1))
    hop = round(rate * hop_ms / 1000)
    t_ref, v_ref = audio_impacts_slow(x, rate, hop, lookback, t0_s=2.5)
    fr = audio_impacts(x, rate, hop_ms=hop_ms, lookback=lookback, t0_s=2.5)
    np.testing.assert_allclose(fr.times_s, t_ref)
    np.testing.assert_allclose(fr.values, v_ref, rtol=1e-10, atol=1e-12)
    st = stream(AudioImpacts(rate, 2.5, hop_ms=hop_ms, lookback=lookback), x, rng, 3 * hop)
    np.testing.assert_allclose(st.times_s, t_ref)
    np.testing.assert_allclose(st.values, v_ref, rtol=1e-10, atol=1e-12)


def test_sensor_impacts_hand_worked():
    # one channel at 100 Hz: 0, 0, 1, 3, 3 -> jerk 0, 100, 200, 0 (x100) -> rises at samples 2, 3, 4
    fr = sensor_impacts(np.array([0.0, 0.0, 1.0, 3.0, 3.0]), 100.0, t0_s=1.0)
    np.testing.assert_allclose(fr.times_s, [1.015, 1.025, 1.035])
    np.testing.assert_allclose(fr.values, [100.0 * 100, 100.0 * 100, 0.0])


@pytest.mark.parametrize("channels", [1, 3])
def test_sensor_impacts_equal_the_slow_reference_and_stream(rng, channels):
    x = rng.normal(0, 1, (700, channels)) + np.array([0, 0, 9.81][:channels])
    t_ref, v_ref = sensor_impacts_slow(x, 500.0, t0_s=-3.0)
    fr = sensor_impacts(x, 500.0, t0_s=-3.0)
    np.testing.assert_allclose(fr.times_s, t_ref)
    np.testing.assert_allclose(fr.values, v_ref, rtol=1e-9)
    st = stream(SensorImpacts(500.0, -3.0), x, rng, 5)
    np.testing.assert_allclose(st.times_s, t_ref)
    np.testing.assert_allclose(st.values, v_ref, rtol=1e-9)


def test_sensor_impacts_reject_a_change_of_channels():
    ext = SensorImpacts(100.0, 0.0)
    ext.push(np.zeros((4, 3)))
    with pytest.raises(AlignmentError, match="channels"):
        ext.push(np.zeros((4, 2)))


def test_impact_extractor_modalities_and_lookback():
    assert impact_extractor("audio", 48000.0, lookback_ms=5.0)._factory(0.0).lookback == 5
    assert impact_extractor("audio", 16000.0, audio_hop_ms=2.0, lookback_ms=5.0)._factory(0.0).lookback == 2
    assert isinstance(impact_extractor("sensor", 500.0)._factory(0.0), SensorImpacts)
    with pytest.raises(AlignmentError, match="impact"):
        impact_extractor("video", 30.0)
    with pytest.raises(AlignmentError, match="lookback"):
        AudioImpacts(16000.0, 0.0, lookback=0)


def test_both_envelopes_mark_the_start_of_a_simulated_contact():
    """The simulator's impacts (a sound that starts with the contact; a velocity change over 40 ms that an IMU
    on the object feels): both envelopes peak within a sample of the contact's start, not at its middle."""
    scene = Scene(SceneConfig(objects=1, kick_rate_hz=0.7, sound_rate_hz=0.0, ambience_level=0.0), seed=3)
    kicks = scene.kick_times(0, 1.0, 29.0)
    assert len(kicks) >= 8
    t_imu = np.arange(0, 30.0, 1 / 500.0)
    fr_s = sensor_impacts(scene.acceleration(t_imu, 0), 500.0)
    t_mic = np.arange(0, 30.0, 1 / 16000.0)
    fr_a = audio_impacts(scene.sound(t_mic) + np.random.default_rng(0).normal(0, 1e-4, t_mic.size), 16000.0)
    for fr, tol in ((fr_s, 1.0 / 500.0), (fr_a, 1e-3)):
        for k in kicks:
            near = (fr.times_s > k - 0.01) & (fr.times_s < k + 0.03)
            t_peak = fr.times_s[near][np.argmax(fr.values[near])]
            assert abs(t_peak - k) <= tol, (k, t_peak)
