"""CUDA path of the speech aligner: the same results as the CPU (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from warpsync.speech import align
from warpsync.speech.model import AcousticModel
from warpsync.speech.trellis import build_trellis

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("star", [False, True])
def test_viterbi_cuda_equals_numba(rng, star):
    for _ in range(5):
        T, C = int(rng.integers(200, 2000)), 30
        lp = np.log(rng.dirichlet(np.ones(C), size=T))
        words = [tuple(int(t) for t in rng.integers(1, C, size=rng.integers(1, 8))) for _ in range(T // 40)]
        em = align.with_star(lp, 0, 1.5) if star else lp
        tr = build_trellis(words, 0, C if star else None)
        p_cpu, s_cpu = align.viterbi(em, tr)
        p_gpu, s_gpu = align.viterbi(em, tr, backend="torch", device="cuda")
        np.testing.assert_array_equal(p_cpu, p_gpu)
        assert s_cpu == pytest.approx(s_gpu, abs=1e-9)


def test_model_on_cuda_matches_cpu(rng):
    cpu = AcousticModel.load(None, "cpu")
    gpu = AcousticModel.load(None, "cuda")
    x = rng.standard_normal(16000 * 3).astype(np.float32) * 0.1
    np.testing.assert_allclose(cpu.emissions(x), gpu.emissions(x), atol=1e-3)
