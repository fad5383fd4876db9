"""Feature extraction: audio, video and sensor samples -> feature frames on an explicit time axis (pure).

Every extractor exists twice: a function over a whole recording (`onset_envelope`, `log_mel`,
`motion_activity`, `sensor_activity`) and a streaming class (`AudioEnvelope`, `MotionEnvelope`,
`SensorEnvelope`; the impact envelopes `audio_impacts` / `AudioImpacts`, `sensor_impacts` / `SensorImpacts`) fed
chunk by chunk whose output equals the function's on the concatenated samples (tested
with random chunk sizes including empty chunks). Frame times are seconds on the stream's own (device) time
axis: ``t0_s + k * hop_s`` style grids are made explicit in `Frames.times_s`.
"""

from .audio import AudioEnvelope, log_mel, mel_filterbank, onset_envelope
from .base import Frames, envelope_extractor
from .impact import AudioImpacts, SensorImpacts, audio_impacts, impact_extractor, sensor_impacts
from .sensor import SensorEnvelope, sensor_activity
from .video import MotionEnvelope, motion_activity

__all__ = [
    "AudioEnvelope",
    "AudioImpacts",
    "Frames",
    "MotionEnvelope",
    "SensorEnvelope",
    "SensorImpacts",
    "audio_impacts",
    "envelope_extractor",
    "impact_extractor",
    "log_mel",
    "mel_filterbank",
    "motion_activity",
    "onset_envelope",
    "sensor_activity",
    "sensor_impacts",
]
