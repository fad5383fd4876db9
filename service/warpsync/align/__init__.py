"""Alignment: the DTW family over private Numba kernels (`align/kernels/`), validated here.

- `dtw(X, Y, ...)` → `DTWResult`: exact DTW with dtw-python's step patterns, windows/bands, open ends.
- `dtw_multiscale`: coarse-to-fine DTW for 10^5–10^6 frames in bounded memory.
- `dtw_all_pairs`, `dtw_cross`, `dtw_pairs`: many distances in parallel.
- `subsequence_search`: best windows of a stream for a query (LB_Keogh + early abandoning).
- `soft_dtw`: soft-DTW value, gradient and soft alignment (Cuturi & Blondel 2017).
- `OnlineAligner`: on-line time warping (Dixon 2005) over two live streams, bounded memory.
- `cca`, `ctw`, `gtw`: canonical correlation, canonical time warping (Zhou & De la Torre 2009) for streams of
  different modality and dimension, and generalized time warping of several streams to one timeline.
- windows: `sakoe_chiba_band`, `itakura_band`, `slanted_band`, `corridor_band` → (lo, hi) bands for `band=`.
"""

from warpsync.align.batch import dtw_all_pairs, dtw_cross, dtw_pairs
from warpsync.align.cca import CCAResult, cca
from warpsync.align.cost import cost_matrix
from warpsync.align.ctw import CTWResult, ctw, uniform_path
from warpsync.align.dtw import DTWResult, dtw, normalize_distance
from warpsync.align.gtw import GTWResult, gtw
from warpsync.align.multiscale import MultiscaleResult, dtw_multiscale, path_agreement
from warpsync.align.online import OnlineAligner, OnlineStep
from warpsync.align.softdtw import SoftDTWResult, soft_dtw
from warpsync.align.steps import STEP_PATTERNS, StepPattern, get_step_pattern
from warpsync.align.subsequence import SubsequenceMatch, SubsequenceResult, lb_keogh, subsequence_search
from warpsync.align.windows import corridor_band, itakura_band, sakoe_chiba_band, slanted_band

__all__ = [
    "STEP_PATTERNS",
    "CCAResult",
    "CTWResult",
    "DTWResult",
    "GTWResult",
    "MultiscaleResult",
    "OnlineAligner",
    "OnlineStep",
    "SoftDTWResult",
    "StepPattern",
    "SubsequenceMatch",
    "SubsequenceResult",
    "cca",
    "corridor_band",
    "cost_matrix",
    "ctw",
    "dtw",
    "dtw_all_pairs",
    "dtw_cross",
    "dtw_multiscale",
    "dtw_pairs",
    "get_step_pattern",
    "gtw",
    "itakura_band",
    "lb_keogh",
    "normalize_distance",
    "path_agreement",
    "sakoe_chiba_band",
    "slanted_band",
    "soft_dtw",
    "subsequence_search",
    "uniform_path",
]
