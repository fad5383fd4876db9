"""Benchmark: soft-DTW value + gradient w.r.t. X, d=16, n=m=1000, warpsync vs tslearn (same data, same run).

Run: .venv/bin/python tests/benchmarks/bench_softdtw.py [--n 1000] [--d 16] [--repeats 11] [--gamma 1.0] [--oltw]
Prints compile time (first call, separately), the median of the timed repeats after warm-up, cells per second,
the agreement of the two results, and the ratio. Floor in issue 3: >= 3x tslearn.
With --oltw it also prints the on-line aligner's throughput (OLTW steps per second; informational, no peer).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--m", type=int, default=None)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--oltw", action="store_true", help="also time the on-line aligner (no peer)")
    args = ap.parse_args()
    n, m, d = args.n, args.m or args.n, args.d

    rng = np.random.default_rng(20261128)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d))

    from warpsync.align.softdtw import soft_dtw

    def ours():
        r = soft_dtw(X, Y, gamma=args.gamma, return_grad=True)
        return r.value, r.grad

    t0 = time.perf_counter()
    v_ours, g_ours = ours()
    compile_ours = time.perf_counter() - t0

    from tslearn.metrics import SoftDTW
    from tslearn.metrics.softdtw_variants import SquaredEuclidean

    def tslearn():
        se = SquaredEuclidean(X, Y)
        sd = SoftDTW(se, gamma=args.gamma)
        value = sd.compute()
        return value, se.jacobian_product(sd.grad())

    t0 = time.perf_counter()
    v_ts, g_ts = tslearn()
    compile_ts = time.perf_counter() - t0

    ours()
    tslearn()  # warm-up
    # interleaved, so that both see the same machine load (the CI box is shared)
    times_ours, times_ts = [], []
    for _ in range(args.repeats):
        times_ours.append(_median_time(ours, 1))
        times_ts.append(_median_time(tslearn, 1))
    t_ours = statistics.median(times_ours)
    t_ts = statistics.median(times_ts)
    cells = n * m
    print(
        f"soft-DTW value + gradient, n={n} m={m} d={d} gamma={args.gamma}, median of {args.repeats} interleaved "
        "repeats after warm-up"
    )
    print(f"  first call (compile or cache load + run): warpsync {compile_ours:.2f} s, tslearn {compile_ts:.2f} s")
    print(f"  warpsync: {t_ours * 1e3:8.2f} ms  {cells / t_ours / 1e6:7.1f} Mcells/s")
    print(f"  tslearn : {t_ts * 1e3:8.2f} ms  {cells / t_ts / 1e6:7.1f} Mcells/s")
    rel_v = abs(v_ours - v_ts) / max(1.0, abs(v_ts))
    rel_g = float(np.abs(g_ours - g_ts).max() / max(1e-300, np.abs(g_ts).max()))
    print(f"  agreement: |value diff|/|value| = {rel_v:.2e}, max |grad diff|/max|grad| = {rel_g:.2e}")
    print(f"  ratio warpsync vs tslearn: {t_ts / t_ours:.2f}x  (floor >= 3x)")
    if args.oltw:
        _bench_oltw(rng, d, args.repeats)
    return 0


def _bench_oltw(rng: np.random.Generator, d: int, repeats: int) -> None:
    from warpsync.align.online import OnlineAligner

    X = rng.standard_normal((5000, d))
    Y = rng.standard_normal((5000, d))
    print(f"on-line aligner (OLTW), d={d}, 5000 + 5000 frames pushed in chunks of 50 (informational, no peer)")
    for c in (50, 100, 200):
        a = OnlineAligner(d, search_width=c)
        a.push(X[:20], Y[:20])  # compile / cache load

        def run(a=a):
            a.reset()
            for k in range(0, 5000, 50):
                a.push(X[k : k + 50], Y[k : k + 50])

        t = _median_time(run, max(1, repeats // 2))
        print(f"  search_width={c:3d}: {a.steps / t:9.0f} steps/s  ({t / a.steps * 1e6:.1f} us/step)")


if __name__ == "__main__":
    raise SystemExit(main())
