"""Process-wide tuning of the long-running processes (`warpsync.tuning`)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from warpsync.tuning import single_threaded_blas


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_single_threaded_blas_limits_every_loaded_blas_to_one_thread_and_can_be_undone():
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    assert _blas_threads(), "no BLAS library found in the process"
    with threadpool_limits(limits=2, user_api="blas"):  # as on a machine of two cores or more
        assert set(_blas_threads()) == {2}
        limiter = single_threaded_blas()
        assert limiter is not None
        assert set(_blas_threads()) == {1}
        a = np.random.default_rng(0).standard_normal((121, 121))
        np.testing.assert_allclose(np.linalg.solve(a, a @ np.ones(121)), np.ones(121), rtol=1e-8)
        limiter.restore_original_limits()
        assert set(_blas_threads()) == {2}
