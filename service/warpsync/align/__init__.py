"""Alignment: the DTW family over private Numba kernels (`align/kernels/`), validated here.

- `dtw(X, Y, ...)` → `DTWResult`: exact DTW with dtw-python's step patterns, windows/bands, open ends.
- `dtw_multiscale`: coarse-to-fine DTW for 10^5–10^6 frames in bounded memory.
- `dtw_all_pairs`, `dtw_cross`, `dtw_pairs`: many distances in parallel.
- `subsequence_search`: best windows of a stream for a query (LB_Keogh + early abandoning).
- windows: `sakoe_chiba_band`, `itakura_band`, `slanted_band`, `corridor_band` → (lo, hi) bands for `band=`.
"""

from warpsync.align.batch import dtw_all_pairs, dtw_cross, dtw_pairs
from warpsync.align.cost import cost_matrix
from warpsync.align.dtw import DTWResult, dtw, normalize_distance
from warpsync.align.multiscale import MultiscaleResult, dtw_multiscale, path_agreement
from warpsync.align.steps import STEP_PATTERNS, StepPattern, get_step_pattern
from warpsync.align.subsequence import SubsequenceMatch, SubsequenceResult, lb_keogh, subsequence_search
from warpsync.align.windows import corridor_band, itakura_band, sakoe_chiba_band, slanted_band

__all__ = [
    "STEP_PATTERNS",
    "DTWResult",
    "MultiscaleResult",
    "StepPattern",
    "SubsequenceMatch",
    "SubsequenceResult",
    "corridor_band",
    "cost_matrix",
    "dtw",
    "dtw_all_pairs",
    "dtw_cross",
    "dtw_multiscale",
    "dtw_pairs",
    "get_step_pattern",
    "itakura_band",
    "lb_keogh",
    "normalize_distance",
    "path_agreement",
    "sakoe_chiba_band",
    "slanted_band",
    "subsequence_search",
]
