"""What a simulated camera can see of an object: where it projects, and which of its velocity changes (kicks)
show in the picture.

Ground truth about content, not about clocks: an IMU strapped to an object can only be aligned to a camera
by content when the camera sees that object change speed. A kick along the camera's line of sight, or one made
outside the frame, moves nothing in the picture; the scorecard uses this to say which seconds of a run held
content to align on at all.
"""

from __future__ import annotations

import math

import numpy as np

from .rig import CameraConfig
from .scene import Scene

MIN_DEPTH_M = 0.2
"""Points closer to the camera than this are projected as if at this depth (the renderer does the same)."""


def camera_basis(cam: CameraConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """(position (3,), rows right/up/forward (3, 3), focal length in pixels) of a camera looking at the scene
    centre from its azimuth, 1.6 m high."""
    a = math.radians(cam.azimuth_deg)
    pos = np.array([cam.distance_m * math.cos(a), cam.distance_m * math.sin(a), 1.6])
    f = np.array([0.0, 0.0, 1.0]) - pos
    f /= np.linalg.norm(f)
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return pos, np.stack([right, up, f]), 0.9 * cam.width


def _camera_coords(cam: CameraConfig, points: np.ndarray) -> tuple[np.ndarray, float]:
    """Scene points ``(..., 3)`` in `cam`'s right/up/forward coordinates (m), and its focal length (px)."""
    pos, basis, focal = camera_basis(cam)
    return (np.asarray(points, dtype=np.float64) - pos) @ basis.T, focal


def _pixels(cam: CameraConfig, d: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.maximum(d[..., 2], MIN_DEPTH_M)
    return cam.width / 2 + focal * d[..., 0] / z, cam.height / 2 - focal * d[..., 1] / z, z


def project(cam: CameraConfig, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates ``u`` (column), ``v`` (row) and depth ``z`` (m, clamped at `MIN_DEPTH_M`) of scene
    points ``(..., 3)`` in `cam`."""
    return _pixels(cam, *_camera_coords(cam, points))


def in_frame(cam: CameraConfig, points: np.ndarray) -> np.ndarray:
    """Whether scene points ``(..., 3)`` are in front of `cam` and project inside its frame."""
    d, focal = _camera_coords(cam, points)
    u, v, _ = _pixels(cam, d, focal)
    return (d[..., 2] > MIN_DEPTH_M) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)


def seen_kicks(
    scene: Scene, cam: CameraConfig, obj: int, t0: float, t1: float, *, min_px_s: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """The kicks of object `obj` in scene time ``[t0, t1)``, and for each whether `cam` sees it: the object is
    in the frame before and after, and its image velocity changes by at least `min_px_s` pixels per second
    (the kick's velocity change projected on the picture). Returns (kick times, seen)."""
    kt = scene.kick_times(obj, t0, t1)
    if kt.size == 0:
        return kt, np.zeros(0, dtype=bool)
    ks = scene.cfg.kick_s
    dt = 0.01
    # image velocity just before the kick and just after its velocity change
    t = np.concatenate([kt - dt, kt, kt + ks, kt + ks + dt])
    p = scene.positions(t)[:, obj].reshape(4, kt.size, 3)
    u, v, _ = project(cam, p)
    change = np.hypot((u[3] - u[2]) - (u[1] - u[0]), (v[3] - v[2]) - (v[1] - v[0])) / dt
    seen = in_frame(cam, p[0]) & in_frame(cam, p[3]) & (change >= min_px_s)
    return kt, seen
