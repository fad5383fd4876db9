"""Feature extraction: audio, video and sensor samples -> feature frames on an explicit time axis (pure).

Every extractor exists twice: a function over a whole recording (`onset_envelope`, `log_mel`,
`motion_activity`, `sensor_activity`) and a streaming class (`AudioEnvelope`, `MotionEnvelope`,
`SensorEnvelope`) fed chunk by chunk whose output equals the function's on the concatenated samples (tested
with random chunk sizes including empty chunks). Frame times are seconds on the stream's own (device) time
axis: ``t0_s + k * hop_s`` style grids are made explicit in `Frames.times_s`.
"""

from .audio import AudioEnvelope, log_mel, mel_filterbank, onset_envelope
from .base import Frames, envelope_extractor
from .sensor import SensorEnvelope, sensor_activity
from .video import MotionEnvelope, motion_activity

__all__ = [
    "AudioEnvelope",
    "Frames",
    "MotionEnvelope",
    "SensorEnvelope",
    "envelope_extractor",
    "log_mel",
    "mel_filterbank",
    "motion_activity",
    "onset_envelope",
    "sensor_activity",
]
