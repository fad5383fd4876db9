"""Boundary calibration: constant time shifts of word boundaries, by context, measured on training voices.

A CTC model places the frame where its path moves from one word to the next with a small systematic bias
(a word's last letter may be emitted a little before the acoustic end, the first letter a little late);
the bias differs between a boundary at a pause and two words run together. `tools/speech/calibrate.py`
measures the median signed error of each kind on utterances of the *training* voices (never the held-out
ones) and writes `<model>.calib.json` beside the model; the aligners (offline and streaming) apply it to
the seconds of each word span. The frames (`start_frame`, `end_frame`) are never shifted.

Kinds, decided from the alignment itself (the same rule offline and streaming):
- *joined*: a word ends on the frame where the next word starts (no blank or star frame between them);
  both the end of the first and the start of the second move by `joined_s` (one boundary, one shift).
- otherwise the start moves by `start_pause_s` and the end by `end_pause_s`.

A word's start never precedes the previous word's (shifted) end, so words never overlap. A model without a
calibration file gets no shift (a user's model goes through unchanged).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelError

MAX_SHIFT_S = 0.1


@dataclass(frozen=True)
class BoundaryCalibration:
    start_pause_s: float = 0.0
    """Shift of a word start that follows a pause, the star state or the start of the audio, seconds. Default 0."""
    end_pause_s: float = 0.0
    """Shift of a word end followed by a pause, the star state or the end of the audio, seconds. Default 0."""
    joined_s: float = 0.0
    """Shift of a boundary where one word ends on the frame the next one starts, seconds. Default 0."""

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= MAX_SHIFT_S):
                raise ModelError(f"boundary calibration {k} = {v!r} must be a finite shift within ±{MAX_SHIFT_S} s")

    @property
    def is_zero(self) -> bool:
        return self.start_pause_s == 0.0 and self.end_pause_s == 0.0 and self.joined_s == 0.0

    def span_s(
        self,
        start_frame: int,
        end_frame: int,
        joined_before: bool,
        joined_after: bool,
        hop_s: float,
        prev_end_s: float | None = None,
    ) -> tuple[float, float]:
        """[start, end) seconds (relative to frame 0) of a word on frames [start_frame, end_frame).
        `prev_end_s`: the end given to the previous word (same origin): a start never precedes it, so
        shifted words never overlap (an end pushed later and the next start pushed earlier across a gap
        of one frame would). The end stays at least a quarter frame after the start."""
        a = start_frame * hop_s + (self.joined_s if joined_before else self.start_pause_s)
        if prev_end_s is not None:
            a = max(a, prev_end_s)
        b = end_frame * hop_s + (self.joined_s if joined_after else self.end_pause_s)
        return a, max(b, a + 0.25 * hop_s)

    @classmethod
    def load(cls, path: str | Path) -> BoundaryCalibration:
        """Read a calibration JSON; a missing file gives no shift."""
        p = Path(path)
        if not p.exists():
            return cls()
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read boundary calibration {p}: {exc} (delete it or rerun calibrate.py)") from None
        if not isinstance(d, dict):
            raise ModelError(f"boundary calibration {p} must be a JSON object")
        known = {k: d[k] for k in ("start_pause_s", "end_pause_s", "joined_s") if k in d}
        extra = set(d) - set(known) - {"comment", "measured_on"}
        if extra:
            raise ModelError(f"boundary calibration {p} has unknown keys {sorted(extra)}")
        return cls(**{k: float(v) if isinstance(v, (int, float)) else v for k, v in known.items()})

    def save(self, path: str | Path, measured_on: str = "") -> None:
        d = asdict(self)
        d["measured_on"] = measured_on
        Path(path).write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
