"""Alignment: DTW family (exact, windowed, multiscale, batch, subsequence search) over private Numba kernels.

Public entry point: `warpsync.align.dtw(X, Y, ...)` → `DTWResult`.
"""

from warpsync.align.dtw import DTWResult, dtw, normalize_distance
from warpsync.align.steps import STEP_PATTERNS, StepPattern, get_step_pattern

__all__ = ["DTWResult", "dtw", "normalize_distance", "STEP_PATTERNS", "StepPattern", "get_step_pattern"]
