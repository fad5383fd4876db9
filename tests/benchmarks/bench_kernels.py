"""Kernel benchmark: warpsync's DTW family against dtaidistance (C), tslearn, librosa and dtw-python.

Run:  .venv/bin/python tests/benchmarks/bench_kernels.py [--quick] [--skip-multiscale]

Every case uses the same random data for us and for each peer; each timing is the median of >= 5 repeats
after a warm-up call, candidates interleaved round-robin so that all see the same machine load; JIT compile time (cold Numba cache: NUMBA_CACHE_DIR is pointed at a fresh temporary
directory unless WARPSYNC_BENCH_KEEP_CACHE=1) is reported separately as first call minus median. Ratios are
peer time / our time in this run (higher is better for us), printed next to the floor of issue 3.
Not collected by pytest; timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

if os.environ.get("WARPSYNC_BENCH_KEEP_CACHE") != "1" and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="warpsync-bench-numba-")

import numpy as np

GHZ = 3.65  # nominal core clock of the project machine: one cell per cycle = 3.65 Gcells/s


def measure(cands, cells, repeats):
    """Time candidates [(name, fn)] round-robin: one warm-up call each (its excess over the median is the
    compile time), then `repeats` rounds in which every candidate runs once, so that all of them see the
    same machine load. Prints one line per candidate; returns {name: (wall s, cpu s, result)}."""
    first = {}
    outs = {}
    for name, fn in cands:
        t0 = time.perf_counter()
        outs[name] = fn()
        first[name] = time.perf_counter() - t0
    walls = {name: [] for name, _ in cands}
    cpus = {name: [] for name, _ in cands}
    for _ in range(repeats):
        for name, fn in cands:
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    res = {}
    for name, _ in cands:
        w = statistics.median(walls[name])
        c = statistics.median(cpus[name])
        comp = f"  compile {max(first[name] - w, 0.0):6.2f} s" if name.startswith("warpsync") else ""
        print(
            f"  {name:<46s} {w * 1e3:10.2f} ms wall {cells / w / 1e9:7.3f} Gcells/s | cpu {c * 1e3:10.2f} ms "
            f"{cells / max(c, 1e-12) / 1e9:7.3f} Gcells/s{comp}",
            flush=True,
        )
        res[name] = (w, c, outs[name])
    return res


def verdict(label, peer, ours, floor, cpu_too=True):
    """peer / ours for wall time (and CPU time when both sides run in this process)."""
    rw = peer[0] / ours[0]
    msg = f"  -> {label}: wall {rw:.2f}x"
    ok = rw >= floor
    if cpu_too:
        rc = peer[1] / ours[1]
        msg += f", cpu {rc:.2f}x"
    print(f"{msg}  (floor {floor:g}x: {'MEETS' if ok else 'BELOW'} on wall time)", flush=True)


def walk(rng, n, d=None):
    shape = (n,) if d is None else (n, d)
    return np.ascontiguousarray(np.cumsum(rng.normal(size=shape), axis=0))


def case_full(rng, n, repeats):
    from dtaidistance import dtw as dd

    from warpsync.align import dtw

    print(f"\n[1] full DTW, distance only, 1-D, n = m = {n} (symmetric1 = dtaidistance's recursion)")
    x, y = walk(rng, n), walk(rng, n)
    cells = n * n
    r = measure(
        [
            (
                "warpsync dtw(return_path=False)",
                lambda: dtw(x, y, step_pattern="symmetric1", return_path=False).distance,
            ),
            ("dtaidistance distance(use_c=True)", lambda: dd.distance(x, y, use_c=True)),
            ("dtaidistance distance_fast (C + pruning)", lambda: dd.distance_fast(x, y)),
        ],
        cells,
        repeats,
    )
    ours = r["warpsync dtw(return_path=False)"]
    c = r["dtaidistance distance(use_c=True)"]
    assert abs(c[2] ** 2 - ours[2]) <= 1e-9 * ours[2], (c[2] ** 2, ours[2])
    verdict("vs dtaidistance C (use_c=True)", c, ours, 6)
    verdict("vs dtaidistance C with pruning", r["dtaidistance distance_fast (C + pruning)"], ours, 6)
    rw, rc = cells / ours[0] / 1e9, cells / ours[1] / 1e9
    print(
        f"  -> ours {rw:.2f} Gcells/s wall, {rc:.2f} Gcells/s per CPU second = {rc / GHZ:.2f} cells per cycle at "
        f"{GHZ} GHz (floor 1.2 Gcells/s: wall {'MEETS' if rw >= 1.2 else 'BELOW'}, "
        f"cpu {'MEETS' if rc >= 1.2 else 'BELOW'})"
    )


def case_band(rng, n, w, repeats):
    from dtaidistance import dtw as dd

    from warpsync.align import dtw

    print(f"\n[2] Sakoe-Chiba band radius {w}, n = m = {n}, 1-D")
    x, y = walk(rng, n), walk(rng, n)
    cells = int(sum(min(n, i + w + 1) - max(0, i - w) for i in range(n)))
    win = ("sakoechiba", w)
    r = measure(
        [
            (
                "warpsync distance only (O(w) memory)",
                lambda: dtw(x, y, step_pattern="symmetric1", window=win, return_path=False).distance,
            ),
            ("warpsync with path (1 byte/cell)", lambda: dtw(x, y, step_pattern="symmetric1", window=win)),
            ("dtaidistance distance(window=w+1, use_c=True)", lambda: dd.distance(x, y, window=w + 1, use_c=True)),
            ("dtaidistance distance_fast(window=w+1)", lambda: dd.distance_fast(x, y, window=w + 1)),
        ],
        cells,
        repeats,
    )
    ours = r["warpsync distance only (O(w) memory)"]
    path = r["warpsync with path (1 byte/cell)"]
    c = r["dtaidistance distance(window=w+1, use_c=True)"]
    assert abs(c[2] ** 2 - ours[2]) <= 1e-9 * ours[2], (c[2] ** 2, ours[2])
    assert abs(path[2].distance - ours[2]) <= 1e-9 * ours[2]
    print(f"  path: {len(path[2].path)} cells; directions kept: {cells / 2**20:.0f} MiB (1 byte per band cell)")
    verdict("distance only vs dtaidistance C", c, ours, 5)
    verdict("distance only vs dtaidistance C with pruning", r["dtaidistance distance_fast(window=w+1)"], ours, 5)
    verdict("with path vs dtaidistance C distance only", c, path, 1)


def case_path(rng, n, d, repeats):
    import dtw as dtw_python
    import librosa
    from tslearn.metrics import dtw_path

    from warpsync.align import dtw

    print(f"\n[3] DTW with path, d = {d}, n = m = {n}, squared-Euclidean local cost")
    X, Y = walk(rng, n, d), walk(rng, n, d)
    cells = n * n
    r = measure(
        [
            ("warpsync dtw symmetric1 (tslearn/librosa's)", lambda: dtw(X, Y, step_pattern="symmetric1")),
            ("warpsync dtw symmetric2 (dtw-python's)", lambda: dtw(X, Y, step_pattern="symmetric2")),
            ("tslearn dtw_path", lambda: dtw_path(X, Y)),
            (
                "librosa.sequence.dtw (metric sqeuclidean)",
                lambda: librosa.sequence.dtw(X=X.T, Y=Y.T, metric="sqeuclidean"),
            ),
            ("dtw-python dtw (symmetric2)", lambda: dtw_python.dtw(X, Y, dist_method="sqeuclidean")),
        ],
        cells,
        repeats,
    )
    ours = r["warpsync dtw symmetric1 (tslearn/librosa's)"]
    ours2 = r["warpsync dtw symmetric2 (dtw-python's)"]
    ts = r["tslearn dtw_path"]
    lr = r["librosa.sequence.dtw (metric sqeuclidean)"]
    dp = r["dtw-python dtw (symmetric2)"]
    assert abs(ts[2][1] ** 2 - ours[2].distance) <= 1e-6 * ours[2].distance
    assert abs(lr[2][0][-1, -1] - ours[2].distance) <= 1e-6 * ours[2].distance
    assert abs(dp[2].distance - ours2[2].distance) <= 1e-6 * ours2[2].distance
    peers = {"tslearn dtw_path": ts, "librosa": lr}
    best = min(peers, key=lambda k: peers[k][0])
    verdict(f"symmetric1 vs fastest peer ({best})", peers[best], ours, 3)
    verdict("symmetric2 vs dtw-python (same pattern)", dp, ours2, 3)


def case_batch(rng, k, n, repeats):
    from dtaidistance import dtw as dd
    from tslearn.metrics import cdist_dtw

    from warpsync.align.batch import dtw_all_pairs

    print(f"\n[4] batch: {k} series x {n}, all pairs, both cores")
    S = np.ascontiguousarray(walk(rng, n * k).reshape(k, n) / 10.0)
    cells = k * (k - 1) // 2 * n * n
    r = measure(
        [
            ("warpsync dtw_all_pairs (prange)", lambda: dtw_all_pairs(S, step_pattern="symmetric1")),
            (
                "dtaidistance distance_matrix_fast(parallel)",
                lambda: dd.distance_matrix_fast(S, parallel=True, use_pruning=False),
            ),
            ("dtaidistance ... with pruning", lambda: dd.distance_matrix_fast(S, parallel=True)),
            ("tslearn cdist_dtw(n_jobs=-1)", lambda: cdist_dtw(S, n_jobs=-1)),
        ],
        cells,
        repeats,
    )
    ours = r["warpsync dtw_all_pairs (prange)"]
    iu = np.triu_indices(k, 1)
    assert np.allclose(r["dtaidistance distance_matrix_fast(parallel)"][2][iu] ** 2, ours[2][iu], rtol=1e-9)
    assert np.allclose(r["tslearn cdist_dtw(n_jobs=-1)"][2][iu] ** 2, ours[2][iu], rtol=1e-6)
    peers = [v for kname, v in r.items() if not kname.startswith("warpsync")]
    best = min(peers, key=lambda v: v[0])
    verdict("vs the faster peer (wall)", best, ours, 4, cpu_too=False)


_MS_CHILD = r"""
import resource, sys, time, numpy as np
from warpsync.align.multiscale import dtw_multiscale, path_agreement
from warpsync.align import dtw
mode, n, band, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(7)
x = np.cumsum(rng.normal(size=n))
# smooth warp drifting up to ~band/3 frames from the diagonal, plus noise
i = np.arange(n, dtype=np.float64)
t = i + (band / 3.0) * np.sin(2 * np.pi * i / (n / 3.0)) * np.sin(np.pi * i / n)
y = np.interp(t, i, x) + 0.05 * rng.normal(size=n)
def rss():
    # peak RSS of this process image in MiB: VmHWM resets at exec, unlike ru_maxrss, which would also count
    # the benchmark parent's pages inherited through fork
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if mode == "warm":  # compile into the shared cache so the measuring processes do not count the compiler
    dtw_multiscale(x[:5000], y[:5000])
    dtw(x[:5000], y[:5000], window=("sakoechiba", 50))
    sys.exit(0)
base = rss()
t0 = time.perf_counter()
if mode == "ms":
    r = dtw_multiscale(x, y)
    dt = time.perf_counter() - t0
    print(f"  multiscale: {dt:.2f} s wall, levels {r.levels}, {sum(r.band_cells) / 1e6:.1f} M cells, "
          f"peak RSS {rss():.0f} MiB (after imports and inputs {base:.0f} MiB; inputs {2 * n * 8 / 2**20:.0f} MiB)")
else:
    r = dtw(x, y, window=("sakoechiba", band))
    dt = time.perf_counter() - t0
    print(f"  exact Sakoe-Chiba radius {band}: {dt:.2f} s wall, peak RSS {rss():.0f} MiB (after imports and "
          f"inputs {base:.0f} MiB)")
np.save(out, np.r_[[[r.distance, 0]], r.path.astype(np.float64)])
"""


def case_multiscale(n, band):
    print(f"\n[5] multiscale DTW, n = m = {n}, 1-D, vs exact Sakoe-Chiba DTW with radius {band} (own processes)")
    from warpsync.align.multiscale import path_agreement

    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for mode in ("warm", "ms", "exact"):
            out = os.path.join(tmp, f"{mode}.npy")
            r = subprocess.run(
                [sys.executable, "-c", _MS_CHILD, mode, str(n), str(band), out], env=os.environ.copy(), check=False
            )
            if r.returncode:
                print(f"  {mode} child failed with exit code {r.returncode}")
                return
            if mode != "warm":
                res[mode] = np.load(out)
    d_ms, d_ex = res["ms"][0, 0], res["exact"][0, 0]
    p_ms, p_ex = res["ms"][1:].astype(np.int64), res["exact"][1:].astype(np.int64)
    agree = path_agreement(p_ms, p_ex, tol=1)
    same = path_agreement(p_ms, p_ex, tol=0)
    print(f"  distance multiscale {d_ms:.6f} vs exact banded {d_ex:.6f} (relative excess {(d_ms - d_ex) / d_ex:.2e})")
    print(
        f"  multiscale path cells within 1 frame of the exact banded path: {100 * agree:.3f}% "
        f"(same column: {100 * same:.3f}%)"
    )
    print(f"  -> floor >= 99% within one frame: {'MEETS' if agree >= 0.99 else 'BELOW'}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 5 repeats: a smoke run of every case")
    ap.add_argument("--skip-multiscale", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default="1,2,3,4,5", help="comma-separated subset of cases 1-5 to run")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(20261128)
    import numba

    print(
        f"numba {numba.__version__}, numpy {np.__version__}, threads {numba.get_num_threads()}, "
        f"NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR')}, load avg {os.getloadavg()}"
    )
    q = args.quick
    cases = {c.strip() for c in args.cases.split(",")}
    if args.skip_multiscale:
        cases.discard("5")
    if "1" in cases:
        case_full(rng, 2000 if q else 10000, args.repeats)
    if "2" in cases:
        case_band(rng, 10000 if q else 100000, 100, args.repeats)
    if "3" in cases:
        case_path(rng, 500 if q else 2000, 16, args.repeats)
    if "4" in cases:
        case_batch(rng, 16 if q else 64, 300 if q else 1000, args.repeats)
    if "5" in cases:
        case_multiscale(20000 if q else 1_000_000, 60 if q else 300)
    print(f"\nload avg at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
