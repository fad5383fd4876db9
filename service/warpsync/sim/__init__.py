"""The rig simulator: one scene rendered into cameras, microphones and IMUs with their own clocks, latencies
and networks; chunks in arrival order plus the ground truth, and the scorer that compares the service's
`sync.offset` events with that truth.

Pure (`rig`, `scene`, `generator`, `truth`, `score`); the socket shell that publishes a rig into a running
service lives in `warpsync.sim.run`.
"""

from .generator import DeviceRecording, SimChunk, Simulator, record, simulate
from .rig import (
    DEFAULT_RIG,
    CameraConfig,
    ClockConfig,
    ImuConfig,
    LatencyStepConfig,
    MicConfig,
    NetworkConfig,
    RigConfig,
    SceneConfig,
    load_rig,
    random_rig,
    rig_from_mapping,
)
from .truth import HOST, StreamTruth, Truth

__all__ = [
    "DEFAULT_RIG",
    "HOST",
    "CameraConfig",
    "ClockConfig",
    "DeviceRecording",
    "ImuConfig",
    "LatencyStepConfig",
    "MicConfig",
    "NetworkConfig",
    "RigConfig",
    "SceneConfig",
    "SimChunk",
    "Simulator",
    "StreamTruth",
    "Truth",
    "load_rig",
    "random_rig",
    "record",
    "rig_from_mapping",
    "simulate",
]
