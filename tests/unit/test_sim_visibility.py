"""What a simulated camera sees of an object: projection by hand, and kicks called seen or unseen checked
against the frames the renderer draws."""

from __future__ import annotations

import math

import numpy as np

from warpsync.sim import CameraConfig, SceneConfig
from warpsync.sim.generator import _frame_renderer
from warpsync.sim.scene import Scene
from warpsync.sim.visibility import camera_basis, in_frame, project, seen_kicks


def test_projection_by_hand():
    cam = CameraConfig(name="c", azimuth_deg=90.0, distance_m=3.0, width=32, height=24)
    pos, basis, focal = camera_basis(cam)
    np.testing.assert_allclose(pos, [0.0, 3.0, 1.6], atol=1e-12)
    assert focal == 0.9 * 32
    # the scene centre is the middle of the picture, at its distance from the camera
    u, v, z = project(cam, np.array([0.0, 0.0, 1.0]))
    assert (float(u), float(v)) == (16.0, 12.0)
    assert math.isclose(float(z), math.hypot(3.0, 0.6))
    # a point 0.5 m to the camera's right at the centre's depth: focal * 0.5 / z pixels right of the middle
    right = basis[0]
    u, v, _ = project(cam, np.array([0.0, 0.0, 1.0]) + 0.5 * right)
    assert math.isclose(float(u), 16.0 + focal * 0.5 / math.hypot(3.0, 0.6))
    assert math.isclose(float(v), 12.0)
    # behind the camera, or off to the side: not in the frame
    assert in_frame(cam, np.array([[0.0, 0.0, 1.0], [0.0, 5.0, 1.6], [3.0, 0.0, 1.0]])).tolist() == [True, False, False]


def _energy_change(frames, t: float, ks: float, fps: float) -> float:
    """|mean motion energy just after a kick's velocity change - just before the kick| of noise-free frames."""

    def energy(a, b):
        ts = np.arange(a, b, 1.0 / fps)
        f = frames(ts, None)
        return float(np.abs(np.diff(f, axis=0)).sum(axis=(1, 2)).mean())

    return abs(energy(t + ks, t + ks + 0.1) - energy(t - 0.1, t))


def test_seen_kicks_are_the_ones_the_frames_show():
    # one object, so every change in the picture is its own
    scene = Scene(SceneConfig(objects=1, kick_rate_hz=1.0), seed=4)
    cam = CameraConfig(name="c", fps=60.0, azimuth_deg=20.0, pixel_noise=0.0)
    frames = _frame_renderer(scene, cam, 4, 0)
    kt, seen = seen_kicks(scene, cam, 0, 0.5, 60.0, min_px_s=2.0)
    assert kt.size >= 30 and seen.any() and (~seen).any()
    change = np.array([_energy_change(frames, float(t), scene.cfg.kick_s, cam.fps) for t in kt])
    # a kick the camera sees changes the motion energy; one it does not (outside the frame, or along the line of
    # sight) hardly does
    assert np.median(change[seen]) > 5.0 * np.median(change[~seen])
    # and the call is about content, not timing: the kicks are the scene's own
    np.testing.assert_array_equal(kt, scene.kick_times(0, 0.5, 60.0))
