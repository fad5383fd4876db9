"""CTC Viterbi (forced alignment) speed on CPU: warpsync vs torchaudio.functional.forced_align, one run.

    .venv/bin/python tests/benchmarks/bench_viterbi.py [--reps 5] [--torchaudio-python PATH] [--sizes 1000,5000,20000]

Random emissions (C = 30 classes, log of Dirichlet draws), L = T/4 random targets, T = 1k, 5k, 20k frames,
float64, as issue 4 specifies. Three implementations on the same inputs:

- warpsync: `warpsync.speech.align.forced_align` (Numba kernel, vectorised across states, strip-mined);
- a plain scalar Numba loop (one state at a time with branches: the layout of torchaudio's CPU kernel);
- torchaudio.functional.forced_align, the peer. torchaudio needs its own torch (2.9.1 here), so it runs in a
  second Python — this venv's when torchaudio imports here, else the one given by `--torchaudio-python` or
  the WARPSYNC_TORCHAUDIO_PYTHON environment variable (a venv made with
  `python -m venv V && V/bin/pip install torch==2.9.1 'torchaudio==2.9.*' numpy`). That process loads the
  same inputs from a file and times each call when asked on a pipe, so the two sides alternate call by call
  and share whatever load the machine has.

Each side's turn is a burst of calls in a row: at least `--burst` (3) and for at least `--turn-ms` (50 ms),
timed one by one; the turn's time is its fastest call after the first. On this 2-vCPU VM a call that
follows a wait (the other side's turn) runs up to 2-3x slower than the same call repeated (a 1 ms call after
30 ms idle: 1.8 ms against 0.65), and it takes some 20 ms of continuous work to get back to full speed: a
wake-up cost that counts against the shorter call, so each turn runs long enough for both sides to reach it. Times are the thread CPU time (time.thread_time: what the machine's other processes do not inflate)
and wall time, as the best and the median of `--reps` alternating turns; the floor is judged on the best of
each side. The alignment must
be the same path as torchaudio's (the tie rule is the same; float64 both sides) — printed per size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

from warpsync.speech import align

FLOOR = 3.0

# The peer side: run by the torchaudio Python with the input file as argv[1]; reads a case index per line
# on stdin, aligns it once, answers "cpu_ms wall_ms" and saves the path of its first call beside the inputs.
PEER = r"""
import sys, time, warnings, numpy as np, torch
warnings.filterwarnings("ignore")
import torchaudio.functional as F
torch.set_num_threads(1)
d = np.load(sys.argv[1])
n = int(d["n"])
cases = [(torch.from_numpy(d[f"lp{i}"])[None], torch.from_numpy(d[f"tg{i}"])[None].int()) for i in range(n)]
F.forced_align(cases[0][0][:, :8], cases[0][1][:, :2], blank=0)
print("ready", flush=True)
paths = {}
for line in sys.stdin:
    i, burst, turn_s = line.split()
    i, burst, turn_s = int(i), int(burst), float(turn_s)
    e, g = cases[i]
    out = []
    t_end = time.perf_counter() + turn_s
    while len(out) < burst or time.perf_counter() < t_end:
        c, w = time.thread_time(), time.perf_counter()
        al, _ = F.forced_align(e, g, blank=0)
        out.append((time.thread_time() - c, time.perf_counter() - w))
    paths.setdefault(i, al[0].numpy().astype(np.int64))
    c, w = min(out[1:] or out)
    print(f"{c * 1e3:.4f} {w * 1e3:.4f}", flush=True)
np.savez(sys.argv[1] + ".paths.npz", **{f"p{i}": p for i, p in paths.items()})
"""


@njit(cache=True)
def plain_forced_align(lp, targets, blank):
    """Scalar loop: CTC Viterbi with full int8 backpointers, one state at a time (branches)."""
    T, L = lp.shape[0], targets.shape[0]
    S = 2 * L + 1
    ext = np.zeros(S, np.int64)
    for i in range(L):
        ext[2 * i + 1] = targets[i]
    prev = np.full(S, -np.inf)
    cur = np.empty(S)
    bp = np.zeros((T, S), np.int8)
    prev[0] = 0.0
    for t in range(T):
        for s in range(S):
            best = prev[s]
            k = 0
            if s >= 1 and prev[s - 1] > best:
                best = prev[s - 1]
                k = 1
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] and prev[s - 2] > best:
                best = prev[s - 2]
                k = 2
            cur[s] = best + lp[t, ext[s]]
            bp[t, s] = k
        for s in range(S):
            prev[s] = cur[s]
    s = S - 1 if prev[S - 1] >= prev[S - 2] else S - 2
    score = prev[s]
    out = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        out[t] = ext[s]
        s -= bp[t, s]
    return out, score


def _timed(fn, burst: int = 1, turn_s: float = 0.0):
    """`fn` at least `burst` times in a row and for at least `turn_s` (the same rule as the peer's): (cpu ms,
    wall ms) of the fastest call after the first, and its result."""
    times = []
    t_end = time.perf_counter() + turn_s
    while len(times) < burst or time.perf_counter() < t_end:
        c, w = time.thread_time(), time.perf_counter()
        out = fn()
        times.append(((time.thread_time() - c) * 1e3, (time.perf_counter() - w) * 1e3))
    cpu, wall = min(times[1:] or times)
    return cpu, wall, out


def _torchaudio_python(arg: str | None) -> str | None:
    try:
        import torchaudio.functional  # noqa: F401

        return sys.executable
    except Exception:  # noqa: BLE001, S110  torchaudio is optional; any import failure means absent
        pass
    exe = arg or os.environ.get("WARPSYNC_TORCHAUDIO_PYTHON")
    if exe and Path(exe).exists():
        return exe
    return None


class Peer:
    """torchaudio in its own process, timed call by call over a pipe."""

    def __init__(self, exe: str, cases: list[tuple[np.ndarray, np.ndarray]], tmp: Path) -> None:
        self.inputs = tmp / "cases.npz"
        arrays = {"n": np.array(len(cases))}
        for i, (lp, tg) in enumerate(cases):
            arrays[f"lp{i}"], arrays[f"tg{i}"] = lp, tg
        np.savez(self.inputs, **arrays)
        script = tmp / "peer.py"
        script.write_text(PEER)
        self.proc = subprocess.Popen(
            [exe, str(script), str(self.inputs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the torchaudio process did not start (said {line!r})")

    def call(self, i: int, burst: int = 1, turn_s: float = 0.0) -> tuple[float, float]:
        """Align case `i` at least `burst` times in a row and for at least `turn_s`; (cpu ms, wall ms) of the
        fastest call after the first."""
        self.proc.stdin.write(f"{i} {burst} {turn_s}\n")
        self.proc.stdin.flush()
        cpu, wall = self.proc.stdout.readline().split()
        return float(cpu), float(wall)

    def paths(self) -> list[np.ndarray]:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        d = np.load(str(self.inputs) + ".paths.npz")
        return [d[f"p{i}"] for i in range(len(d.files))]


def run(
    sizes: list[int] = [1000, 5000, 20000],  # noqa: B006  read, never mutated
    reps: int = 5,
    seed: int = 0,
    torchaudio_python: str | None = None,
    burst: int = 3,
    turn_s: float = 0.05,
) -> bool | None:
    """Print the comparison; True/False: the floor was met / not; None: torchaudio could not be run."""
    rng = np.random.default_rng(seed)
    cases = []
    for T in sizes:
        cases.append((np.log(rng.dirichlet(np.ones(30), size=T)), rng.integers(1, 30, size=T // 4).astype(np.int64)))
    lp0, tg0 = cases[0][0][:64], cases[0][1][:3]
    align.forced_align(lp0, tg0)  # compile (or load the cache) outside the timings
    plain_forced_align(lp0, tg0, 0)
    exe = _torchaudio_python(torchaudio_python)
    print(
        f"== CTC Viterbi on CPU: C=30, L=T/4, float64; {reps} alternating turns of >= {burst} calls and "
        f">= {turn_s * 1e3:.0f} ms in a row (the first call of a turn not counted); cpu = thread CPU time =="
    )
    if exe is None:
        print(
            "torchaudio: not importable here and no --torchaudio-python / $WARPSYNC_TORCHAUDIO_PYTHON given: "
            "the peer was not run"
        )
    with tempfile.TemporaryDirectory() as tmp:
        peer = Peer(exe, cases, Path(tmp)) if exe else None
        rows = []
        for i, (lp, tg) in enumerate(cases):
            ws, pl, ta = [], [], []
            align.forced_align(lp, tg)  # one untimed call of each side first (first-touch page faults)
            plain_forced_align(lp, tg, 0)
            if peer:
                peer.call(i, 1)
            for _ in range(reps):
                c, w, (lab, _) = _timed(lambda: align.forced_align(lp, tg), burst, turn_s)  # noqa: B023
                ws.append((c, w))
                c, w, (lab_pl, _) = _timed(lambda: plain_forced_align(lp, tg, 0), burst, turn_s)  # noqa: B023
                pl.append((c, w))
                if peer:
                    ta.append(peer.call(i, burst, turn_s))
            rows.append(
                (
                    lp.shape[0],
                    np.min(ws, axis=0),
                    np.min(pl, axis=0),
                    np.min(ta, axis=0) if ta else None,
                    lab,
                    np.array_equal(lab, lab_pl),
                    np.median(ws, axis=0)[0],
                    np.median(ta, axis=0)[0] if ta else None,
                )
            )
        peer_paths = peer.paths() if peer else []
    ok = True
    for i, (T, ws, pl, ta, lab, same_pl, ws_med, ta_med) in enumerate(rows):
        line = (
            f"T={T:6d}: warpsync {ws[0]:8.2f} ms cpu {ws[1]:8.2f} ms wall | plain loop {pl[0]:8.2f} ms cpu "
            f"(x{pl[0] / ws[0]:4.2f}, same path: {same_pl})"
        )
        if ta is not None:
            same = np.array_equal(lab, peer_paths[i])
            ratio = ta[0] / ws[0]
            ok &= same and ratio >= FLOOR
            line += (
                f" | torchaudio {ta[0]:8.2f} ms cpu {ta[1]:8.2f} ms wall: x{ratio:4.2f} cpu, "
                f"x{ta[1] / ws[1]:4.2f} wall (medians: x{ta_med / ws_med:4.2f} cpu), same path: {same}"
            )
        print(line)
    if not exe:
        return None
    print(f"floor: >= {FLOOR:.0f}x torchaudio at every size with the same path: {'MET' if ok else 'NOT MET'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument(
        "--torchaudio-python",
        default=None,
        help="a Python with torchaudio (default: this one if it has it, else $WARPSYNC_TORCHAUDIO_PYTHON)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--burst", type=int, default=3, help="at least this many calls per turn (the first not counted)")
    ap.add_argument("--turn-ms", type=float, default=50.0, help="and at least this long per turn")
    args = ap.parse_args()
    run(
        [int(x) for x in args.sizes.split(",")],
        args.reps,
        args.seed,
        args.torchaudio_python,
        args.burst,
        args.turn_ms / 1e3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
