"""Feature extractors: hand-worked cases, time axes, and streaming == offline for random chunkings."""

from __future__ import annotations

import numpy as np
import pytest

from warpsync.errors import AlignmentError
from warpsync.features import Frames, envelope_extractor, log_mel, motion_activity, onset_envelope, sensor_activity
from warpsync.features.audio import AudioEnvelope, LogMel
from warpsync.features.sensor import SensorEnvelope
from warpsync.features.video import MotionEnvelope


def random_chunks(rng, n, max_chunk):
    """Split range(n) into chunks of random sizes, empty ones included."""
    cuts, i = [], 0
    while i < n:
        k = int(rng.integers(0, max_chunk + 1))
        cuts.append((i, min(n, i + k)))
        i += k
    return cuts


def stream(ext, x, rng, max_chunk):
    return Frames.concat([ext.push(x[a:b]) for a, b in random_chunks(rng, len(x), max_chunk)])


def test_onset_envelope_hand_worked():
    # rate 4 Hz, hop 500 ms -> 2 samples per block; blocks: [0,0] [1,1] [1,1] [0,0]
    x = np.array([0, 0, 1, 1, 1, 1, 0, 0], float)
    f = onset_envelope(x, 4.0, hop_ms=500.0, t0_s=10.0)
    floor = 1e-10
    np.testing.assert_allclose(f.times_s, [10.5, 11.0, 11.5])  # block boundaries k*H/rate, k >= 1
    np.testing.assert_allclose(f.values, [np.log(1 + floor) - np.log(floor), 0.0, 0.0])


def test_onset_envelope_scales_int16_to_full_scale():
    x = (np.array([0, 0, 16384, 16384])).astype(np.int16)
    f = onset_envelope(x, 2.0, hop_ms=1000.0)
    np.testing.assert_allclose(f.values, [np.log(0.25 + 1e-10) - np.log(1e-10)])


@pytest.mark.parametrize("channels", [None, 2])
def test_audio_envelope_streaming_equals_offline(rng, channels):
    shape = (4801,) if channels is None else (4801, channels)
    x = rng.normal(size=shape).astype(np.float32) * np.repeat(rng.uniform(0, 1, 11), 437)[:4801].reshape(
        -1, *([1] * (len(shape) - 1))
    )
    ref = onset_envelope(x, 48000.0, hop_ms=1.0, t0_s=3.0)
    got = stream(AudioEnvelope(48000.0, 3.0, hop_ms=1.0), x, rng, 300)
    np.testing.assert_array_equal(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12, atol=1e-12)
    assert len(ref) == 4801 // 48 - 1


def test_log_mel_streaming_equals_offline_and_times(rng):
    x = rng.normal(size=8000)
    ref = log_mel(x, 16000.0, n_mels=20, hop_ms=10.0, n_fft=400, t0_s=1.0)
    got = stream(LogMel(16000.0, 1.0, n_mels=20, hop_ms=10.0, n_fft=400), x, rng, 700)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    assert ref.values.shape == ((8000 - 400) // 160 + 1, 20)
    assert ref.times_s[0] == pytest.approx(1.0 + 200 / 16000)
    # a pure tone peaks in the mel band containing its frequency
    tone = np.sin(2 * np.pi * 1000 * np.arange(4000) / 16000)
    fb = log_mel(tone, 16000.0, n_mels=20, n_fft=400)
    centres = np.argmax(np.abs(np.fft.rfftfreq(400, 1 / 16000)[None, :] - 1000) < 20, axis=1)
    assert np.argmax(fb.values[3]) == np.argmax(LogMel(16000.0, 0.0, n_mels=20, n_fft=400).fb[:, centres[0]])


def test_motion_activity_hand_worked_frames():
    # 4x4 frames at 10 fps: still, still, then the whole frame brightens by 8 once
    frames = np.zeros((4, 4, 4), np.uint8)
    frames[3:] = 8
    f = motion_activity(frames, 10.0, t0_s=0.0)
    # motion energies (per cell |diff|) at 0.05, 0.15, 0.25: 0, 0, 8 -> activity |change| at 0.1, 0.2
    np.testing.assert_allclose(f.times_s, [0.1, 0.2])
    np.testing.assert_allclose(f.values, [0.0, 16 * 8.0])


def test_motion_energy_sees_motion_inside_a_cell():
    # 16x16 frames (4x4-pixel cells) at 10 fps: a bright pixel moves inside the top-left cell and stops. The
    # cell's mean never changes, but its pixels do: motion energy is mean |f_k - f_{k-1}| over the cell's pixels
    frames = np.zeros((5, 16, 16), np.uint8)
    frames[0:2, 0, 0] = 160
    frames[2:, 1, 1] = 160  # moved between frames 1 and 2, then still
    desc_t, desc = MotionEnvelope(10.0, 0.0).descriptions(frames)
    np.testing.assert_allclose(desc_t, [0.05, 0.15, 0.25, 0.35])
    np.testing.assert_allclose(desc[:, 0], [0.0, 2 * 160 / 16, 0.0, 0.0])  # two pixels changed by 160 of 16
    np.testing.assert_allclose(desc[:, 1:], 0.0)
    f = motion_activity(frames, 10.0, t0_s=0.0, kinetic=True, cells=True)
    # the kinetic envelope: the motion starts (+20) and stops (-20)
    np.testing.assert_allclose(f.times_s, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(f.values[:, 2], [20.0, 20.0, 0.0])
    np.testing.assert_allclose(f.values[:, 1], [20.0, 20.0, 0.0])


@pytest.mark.parametrize("shape", [(24, 32), (24, 32, 3), (16,)])
def test_motion_streaming_equals_offline(rng, shape):
    x = rng.integers(0, 255, size=(57, *shape)).astype(np.uint8 if len(shape) > 1 else np.float32)
    ref = motion_activity(x, 60.0, t0_s=2.0)
    got = stream(MotionEnvelope(60.0, 2.0), x, rng, 5)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    assert len(ref) == (55 if len(shape) > 1 else 56)


def test_motion_energy_over_two_frames_hand_worked():
    # the pixel of the test above moves one pixel per frame from frame 1 on: over a baseline of two frames each
    # energy compares frame k with frame k-2, stamped between them (at frame k-1)
    frames = np.zeros((5, 16, 16), np.uint8)
    for k, (r, c) in enumerate([(0, 0), (0, 0), (1, 1), (2, 2), (2, 2)]):
        frames[k, r, c] = 160
    t, m = MotionEnvelope(10.0, 0.0, baseline_frames=2).descriptions(frames)
    np.testing.assert_allclose(t, [0.1, 0.2, 0.3])
    # k=2 vs 0: two pixels changed; k=3 vs 1: two; k=4 vs 2: two (it moved once in between)
    np.testing.assert_allclose(m[:, 0], [2 * 160 / 16] * 3)
    # one frame apart, the same motion: energies 0, 20, 20, 0
    np.testing.assert_allclose(MotionEnvelope(10.0, 0.0).descriptions(frames)[1][:, 0], [0, 20, 20, 0])
    # a one-frame move shows in two consecutive two-frame energies, a still pixel in none
    still = np.zeros((4, 16, 16), np.uint8)
    still[:, 5, 5] = 200
    assert MotionEnvelope(10.0, 0.0, baseline_frames=2).descriptions(still)[1].max() == 0.0


@pytest.mark.parametrize("shape", [(24, 32), (24, 32, 3), (16,)])
@pytest.mark.parametrize("baseline", [2, 3])
def test_motion_over_several_frames_streaming_equals_offline(rng, shape, baseline):
    x = rng.integers(0, 255, size=(57, *shape)).astype(np.uint8 if len(shape) > 1 else np.float32)
    ref = motion_activity(x, 60.0, t0_s=2.0, kinetic=True, cells=True, baseline_frames=baseline)
    got = stream(MotionEnvelope(60.0, 2.0, cells=True, baseline_frames=baseline), x, rng, 5)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    if len(shape) > 1:
        # reference: mean |f_k - f_{k-B}| per cell, stamped at frame k - B/2; changes between consecutive ones
        f = x.astype(np.float64)
        f = f.mean(axis=3) if f.ndim == 4 else f
        d = np.abs(f[baseline:] - f[:-baseline]).reshape(len(f) - baseline, 4, 6, 4, 8).mean(axis=(2, 4))
        desc_t = 2.0 + (np.arange(baseline, len(f)) - baseline / 2) / 60.0
        np.testing.assert_allclose(ref.times_s, 0.5 * (desc_t[1:] + desc_t[:-1]))
        np.testing.assert_allclose(ref.values[:, 2:], np.abs(np.diff(d.reshape(-1, 16), axis=0)), atol=1e-9)
    else:
        # vectors are their own description: the baseline does not apply
        np.testing.assert_allclose(ref.values, motion_activity(x, 60.0, t0_s=2.0, kinetic=True, cells=True).values)


def test_motion_baseline_must_be_whole_frames():
    for bad in (0, 1.5, -1):
        with pytest.raises(AlignmentError, match="motion baseline"):
            MotionEnvelope(30.0, 0.0, baseline_frames=bad)


def test_motion_rejects_scalar_frames():
    with pytest.raises(AlignmentError, match="video samples"):
        motion_activity(np.zeros(5), 30.0)


def test_sensor_activity_ignores_gravity_and_sees_jolts(rng):
    rate = 1000.0
    n = 5000
    x = np.tile([0.0, 0.0, 9.81], (n, 1)) + rng.normal(0, 0.01, (n, 3))
    x[3000:3005, 0] += 20.0  # a jolt at 3.0 s
    f = sensor_activity(x, rate, highpass_hz=0.5, t0_s=0.0)
    assert f.times_s[0] == pytest.approx(0.5 / rate)
    peak_t = f.times_s[np.argmax(f.values)]
    assert 2.999 <= peak_t <= 3.006
    # no start-up transient from gravity: the first second is as quiet as the rest
    quiet = f.values[(f.times_s > 1.0) & (f.times_s < 2.9)]
    assert f.values[:100].max() < 2 * quiet.max()
    assert f.values.max() > 20 * quiet.max()


def test_sensor_streaming_equals_offline(rng):
    x = rng.normal(size=(3001, 3))
    ref = sensor_activity(x, 500.0, t0_s=7.0)
    got = stream(SensorEnvelope(500.0, 7.0), x, rng, 40)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-9, atol=1e-9)


def test_segmented_extractor_restarts_on_gap(rng):
    ext = envelope_extractor("sensor", 100.0, ())
    a = ext.push(0.0, rng.normal(size=50))
    b = ext.push(0.5, rng.normal(size=50))  # continues
    c = ext.push(2.0, rng.normal(size=50))  # a dropped second: new segment
    assert ext.segments == 2
    assert len(a) == 49 and len(b) == 50 and len(c) == 49
    assert c.times_s[0] == pytest.approx(2.005)
    assert len(ext.push(2.5, np.zeros(0))) == 0


def test_bad_rates_and_modalities_raise():
    with pytest.raises(AlignmentError, match="positive"):
        onset_envelope(np.zeros(10), 0.0)
    with pytest.raises(AlignmentError, match="modality 'text'"):
        envelope_extractor("text", 1.0, ())
    with pytest.raises(AlignmentError, match="highpass_hz"):
        sensor_activity(np.zeros(10), 10.0, highpass_hz=6.0)


def test_motion_kinetic_hand_worked_frames():
    # 4x4 frames at 10 fps: still, still, the whole frame brightens by 8 once, then still again
    frames = np.zeros((5, 4, 4), np.uint8)
    frames[3:] = 8
    f = motion_activity(frames, 10.0, t0_s=0.0, kinetic=True)
    # motion energies at 0.05, 0.15, 0.25, 0.35: 0, 0, 8, 0 per cell -> changes at 0.1, 0.2, 0.3: 0, +8, -8
    np.testing.assert_allclose(f.times_s, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(f.values[:, 0], [0.0, 16 * 8.0, 0.0])  # activity: rises only
    np.testing.assert_allclose(f.values[:, 1], [0.0, 16 * 8.0, 16 * 8.0])  # kinetic: rises and falls


def test_motion_difference_vectors_are_stamped_between_their_frames():
    # a camera sending frame differences: vector k is the motion between frames k-1 and k
    v = np.zeros((4, 16), np.float32)
    v[2] = 1.0
    plain = motion_activity(v, 10.0, t0_s=0.0)
    diff = motion_activity(v, 10.0, t0_s=0.0, difference_vectors=True)
    np.testing.assert_allclose(plain.times_s, [0.05, 0.15, 0.25])
    np.testing.assert_allclose(diff.times_s, [0.0, 0.1, 0.2])  # half a frame earlier
    np.testing.assert_allclose(diff.values, plain.values)
    ext = envelope_extractor("video", 10.0, (16,), units="motion")
    np.testing.assert_allclose(ext.push(0.0, v).times_s, diff.times_s)


@pytest.mark.parametrize("shape", [(24, 32), (16,)])
def test_motion_kinetic_streaming_equals_offline(rng, shape):
    x = rng.integers(0, 255, size=(57, *shape)).astype(np.uint8 if len(shape) > 1 else np.float32)
    ref = motion_activity(x, 60.0, t0_s=2.0, kinetic=True)
    got = stream(MotionEnvelope(60.0, 2.0, kinetic=True), x, rng, 5)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    np.testing.assert_allclose(ref.values[:, 0], motion_activity(x, 60.0, t0_s=2.0).values, rtol=1e-12)
    # reference: total absolute change of the per-frame description
    d = np.abs(np.diff(MotionEnvelope(60.0, 2.0).descriptions(x)[1], axis=0)).sum(axis=1)
    np.testing.assert_allclose(ref.values[:, 1], d, rtol=1e-12)


def test_sensor_kinetic_is_the_highpassed_magnitude_and_peaks_mid_kick(rng):
    rate = 1000.0
    n = 4000
    x = np.tile([0.0, 0.0, 9.81], (n, 1)) + rng.normal(0, 0.01, (n, 3))
    u = np.arange(40) / 40.0
    x[2000:2040, 1] += 30.0 * np.sin(np.pi * u)  # a 40 ms half-sine kick starting at 2.0 s
    f = sensor_activity(x, rate, t0_s=0.0, kinetic=True)
    np.testing.assert_allclose(f.values[:, 0], sensor_activity(x, rate, t0_s=0.0).values, rtol=1e-12)
    kin_peak = f.times_s[np.argmax(f.values[:, 1])]
    rise_peak = f.times_s[np.argmax(f.values[:, 0])]
    assert 2.017 <= kin_peak <= 2.023  # the middle of the velocity change
    assert rise_peak < 2.006  # the rising edge marks its start
    got = stream(SensorEnvelope(rate, 0.0, kinetic=True), x, rng, 70)
    np.testing.assert_allclose(got.values, f.values, rtol=1e-9, atol=1e-9)


def test_one_dropped_frame_starts_a_new_segment(rng):
    # a camera sending one frame per chunk at 60 fps: losing one chunk must not shift the frames after it
    frames = rng.integers(0, 255, size=(10, 8, 8)).astype(np.uint8)
    ext = envelope_extractor("video", 60.0, (8, 8))
    out = [ext.push(k / 60.0, frames[k : k + 1]) for k in range(10) if k != 5]
    assert ext.segments == 2
    got = Frames.concat(out)
    ref = Frames.concat([motion_activity(frames[:5], 60.0), motion_activity(frames[6:], 60.0, t0_s=6 / 60.0)])
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values)


def test_motion_cells_hand_worked_frames():
    # 4x4 frames at 10 fps: only the top-left cell brightens by 8 once; cells follow the kinetic envelope's terms
    frames = np.zeros((5, 4, 4), np.uint8)
    frames[3:, 0, 0] = 8
    f = motion_activity(frames, 10.0, t0_s=0.0, kinetic=True, cells=True)
    assert f.values.shape == (3, 2 + 16)
    np.testing.assert_allclose(f.values[:, 2], [0.0, 8.0, 8.0])  # cell 0: the change rises and falls
    np.testing.assert_allclose(f.values[:, 3:], 0.0)  # the other cells saw nothing
    np.testing.assert_allclose(f.values[:, 1], f.values[:, 2:].sum(axis=1))  # kinetic = sum of the cells
    # cells imply kinetic; the first two columns are what kinetic alone gives
    np.testing.assert_allclose(f.values[:, :2], motion_activity(frames, 10.0, kinetic=True).values)
    np.testing.assert_allclose(motion_activity(frames, 10.0, cells=True).values, f.values)


@pytest.mark.parametrize("shape", [(24, 32), (16,), (5,)])
def test_motion_cells_streaming_equals_offline(rng, shape):
    x = rng.integers(0, 255, size=(61, *shape)).astype(np.uint8 if len(shape) > 1 else np.float32)
    ref = motion_activity(x, 60.0, t0_s=1.0, cells=True)
    d = 16 if len(shape) > 1 else shape[0]
    # raw frames: 60 motion energies, 59 changes; vectors: 61 descriptions, 60 changes
    assert ref.values.shape == (59 if len(shape) > 1 else 60, 2 + d)
    got = stream(MotionEnvelope(60.0, 1.0, cells=True), x, rng, 5)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    # reference: the absolute change of each entry of the per-frame description
    desc = MotionEnvelope(60.0, 1.0).descriptions(x)[1]
    np.testing.assert_allclose(ref.values[:, 2:], np.abs(np.diff(desc, axis=0)), rtol=1e-12)
    ext = envelope_extractor("video", 60.0, shape, kinetic=True, cells=True)
    np.testing.assert_allclose(ext.push(1.0, x).values, ref.values, rtol=1e-12)


# ------------------------------------------------------------------------------------ kinetic envelope from flow


@pytest.mark.parametrize("shape", [(24, 32), (24, 32, 3), (16,)])
@pytest.mark.parametrize("baseline", [1, 2, 3])
def test_motion_flow_streaming_equals_offline_and_a_slow_reference(rng, shape, baseline):
    x = rng.integers(0, 255, size=(57, *shape)).astype(np.uint8 if len(shape) > 1 else np.float32)
    kw = {"cells": True, "baseline_frames": baseline, "kinetic_from": "flow"}
    ref = motion_activity(x, 60.0, t0_s=2.0, **kw)
    got = stream(MotionEnvelope(60.0, 2.0, **kw), x, rng, 5)
    np.testing.assert_allclose(got.times_s, ref.times_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    energy = motion_activity(x, 60.0, t0_s=2.0, cells=True, baseline_frames=baseline)
    np.testing.assert_allclose(ref.times_s, energy.times_s)
    np.testing.assert_allclose(ref.values[:, 0], energy.values[:, 0])  # the activity stays on motion energy
    if len(shape) == 1:
        np.testing.assert_allclose(ref.values, energy.values)  # vectors have no pixels: energy as before
        return
    # slow reference: each cell's mean of d * gradient, pixel by pixel, then the length of its change
    f = x.astype(np.float64)
    f = f.mean(axis=3) if f.ndim == 4 else f
    n, h, w = f.shape
    u = np.zeros((n - baseline, 16, 2))
    for k in range(baseline, n):
        d = f[k] - f[k - baseline]
        mid = 0.5 * (f[k] + f[k - baseline])
        for r in range(h):
            for c in range(w):
                gx = (mid[r, min(c + 1, w - 1)] - mid[r, max(c - 1, 0)]) / (min(c + 1, w - 1) - max(c - 1, 0))
                gy = (mid[min(r + 1, h - 1), c] - mid[max(r - 1, 0), c]) / (min(r + 1, h - 1) - max(r - 1, 0))
                cell = (r // (h // 4)) * 4 + c // (w // 4)
                u[k - baseline, cell] += d[r, c] * np.array([gx, gy]) / ((h // 4) * (w // 4))
    np.testing.assert_allclose(ref.values[:, 2:], np.linalg.norm(np.diff(u, axis=0), axis=2), atol=1e-9)
    np.testing.assert_allclose(ref.values[:, 1], ref.values[:, 2:].sum(axis=1))


def test_motion_flow_hand_worked_ramp():
    # a horizontal ramp I = 4 x sliding right: d = -4 * (distance moved over the baseline), grad = (4, 0), so each
    # cell's vector is (-16 * distance, 0); the kinetic terms are the lengths of its changes
    x = np.arange(16, dtype=np.float64)
    shifts = [0.0, 1.0, 2.0, 3.0, 5.0, 7.0]  # one pixel per frame, then two
    frames = np.array([np.tile(4.0 * (x - s) + 100.0, (8, 1)) for s in shifts])
    f = motion_activity(frames, 10.0, kinetic=True, cells=True, kinetic_from="flow")
    # vectors at frames 1..5 (baseline 1): distances 1, 1, 1, 2, 2 -> changes 0, 0, 16, 0 in every cell
    np.testing.assert_allclose(f.values[:, 2:], np.repeat([[0.0], [0.0], [16.0], [0.0]], 16, axis=1), atol=1e-9)
    np.testing.assert_allclose(f.times_s, [0.1, 0.2, 0.3, 0.4])


def _blob_frames(velocity, fps, rng, *, speed_px_s=8.0, h=24, w=32, sigma=3.0, noise=0.5):
    """8-bit frames of a bright Gaussian blob on a textured background; the blob's speed is
    `speed_px_s * velocity(t)` along x (``velocity`` gives the integral of the profile in closed form)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = 40.0 + 20.0 * xx / w + 10.0 * rng.uniform(-1, 1, (h, w))
    t = np.arange(0, 1.0, 1 / fps)
    pos = 8.0 + speed_px_s * velocity(t)
    img = bg[None] + 150.0 * np.exp(-((xx[None] - pos[:, None, None]) ** 2 + (yy[None] - h / 2) ** 2) / (2 * sigma**2))
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _kinetic_centre(kinetic_from, launch, rng, *, fps=60.0, ramp_s=0.04, runs=24):
    """Mean time of a kinetic envelope's mass around the middle of a velocity change (a launch from rest to 8 px/s,
    or the stop back to rest, over `ramp_s` with a smooth profile), minus that middle, in ms; sub-frame phases
    drawn at random."""
    out = []
    for _ in range(runs):
        t0 = 0.5 + rng.uniform(0, 1 / fps)

        def travelled(t, t0=t0):  # integral of the smooth 0 -> 1 profile u - sin(2 pi u) / (2 pi) over time
            u = np.clip((t - t0) / ramp_s, 0.0, 1.0)
            ramp = ramp_s * (u**2 / 2 + (np.cos(2 * np.pi * u) - 1) / (4 * np.pi**2))
            rising = ramp + np.maximum(t - t0 - ramp_s, 0.0)
            return rising if launch else np.minimum(t, t0) + (np.clip(t - t0, 0, ramp_s) - ramp)

        env = motion_activity(
            _blob_frames(travelled, fps, rng), fps, kinetic=True, baseline_frames=2, kinetic_from=kinetic_from
        )
        t, k = env.times_s, env.values[:, 1]
        mid = t0 + ramp_s / 2
        near = np.abs(t - mid) < 0.06
        v = np.maximum(k[near] - np.median(k[np.abs(t - mid) > 0.15]), 0.0)
        out.append(np.sum(t[near] * v) / v.sum() - mid)
    return 1e3 * float(np.mean(out))


def test_flow_times_launches_and_stops_alike_where_motion_energy_does_not():
    # a slow object (0.13 px per frame) in 8-bit frames with pixel noise: its motion energy is not linear in its
    # speed, so the change of energy weighs the fast end of each velocity change (a launch late, a stop early);
    # the motion vector is linear in velocity and its change is centred like the acceleration an IMU feels
    rng = np.random.default_rng(0)  # over generator seeds 0-9: energy 5.1-8.3 ms apart, flow 1.2 ms at most
    energy = _kinetic_centre("energy", True, rng) - _kinetic_centre("energy", False, rng)
    flow_launch, flow_stop = _kinetic_centre("flow", True, rng), _kinetic_centre("flow", False, rng)
    assert energy > 4.0  # ms
    assert abs(flow_launch - flow_stop) < 1.5
    assert abs(flow_launch) < 1.5 and abs(flow_stop) < 1.5


def test_kinetic_source_must_be_known():
    with pytest.raises(AlignmentError, match="kinetic_from"):
        MotionEnvelope(30.0, 0.0, kinetic_from="optical")
