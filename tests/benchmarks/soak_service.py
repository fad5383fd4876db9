#!/usr/bin/env python3
# ruff: noqa: EXE001  kept as a plain (non-executable) file: run it with `python`
"""Soak: the service's memory, CPU and latency over a long live run (not a test).

    .venv/bin/python tests/benchmarks/soak_service.py [--minutes 15] [--sample-s 30] [--worker-mode inline]

Starts `warpsync serve` on its embedded defaults (ipc endpoints in a temporary folder, an ephemeral metrics
port) and `warpsync simulate --score --json` publishing the default rig into it in real time, as two real
processes. Every `--sample-s` seconds it scrapes the service's Prometheus endpoint and prints, per interval:
RSS and CPU used (fraction of one core) of the service process and its worker processes together
(``process_*`` and ``warpsync_worker_*``), generation-2 garbage collections, chunks ingested, events
published, and the interval's p99 of ingest-to-publish latency and of a content hop's compute time (from the
histograms' bucket deltas: an upper bucket bound). At the end the service is stopped
with SIGINT (it must exit 0) and the simulator's scorecard is summarized.

The ratio it prints: the service's RSS (its processes together) at the end against its RSS at `--warm-s`
(default 180 s, once the engine's 120 s of history and every per-stream buffer are full), and the growth per
hour a straight line through the samples after `--warm-s` gives, and one through their second half (growth
that slows shows as a smaller second figure); then each process's RSS at both times. Bounded memory shows as a
ratio near 1.0 and a slope near 0 over a run several times longer than the warm-up.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, dict]:
    """{metric name: {labels tuple: value}} of one scrape, histogram buckets under ``name_bucket``."""
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def total(m: dict, name: str) -> float:
    return sum(m.get(name, {}).values())


def rss_mib(m: dict) -> float:
    """Resident memory of the service process and of its worker processes, MiB."""
    return (total(m, "process_resident_memory_bytes") + total(m, "warpsync_worker_resident_memory_bytes")) / 2**20


def rss_parts_mib(m: dict) -> str:
    """The service process's RSS and each worker process's, MiB, as text."""
    parts = [f"service {total(m, 'process_resident_memory_bytes') / 2**20:.1f}"]
    for labels, v in sorted(m.get("warpsync_worker_resident_memory_bytes", {}).items()):
        parts.append(f"worker {dict(labels)['worker']} {v / 2**20:.1f}")
    return ", ".join(parts)


def cpu_s(m: dict) -> float:
    """CPU seconds of the service process and of its worker processes."""
    return total(m, "process_cpu_seconds_total") + total(m, "warpsync_worker_cpu_seconds_total")


def gen2(m: dict) -> float:
    return m.get("python_gc_collections_total", {}).get((("generation", "2"),), 0.0)


def buckets(m: dict, name: str) -> list[tuple[float, float]]:
    """[(upper bound, cumulative count)] of histogram `name` (summed over any labels)."""
    acc: dict[float, float] = {}
    for labels, v in m.get(name + "_bucket", {}).items():
        le = float(dict(labels)["le"])
        acc[le] = acc.get(le, 0.0) + v
    return sorted(acc.items())


def interval_quantile(before: dict, after: dict, name: str, q: float) -> float | None:
    """Upper bound of the bucket holding quantile `q` of the observations made between two scrapes."""
    b0 = dict(buckets(before, name))
    rows = [(le, c - b0.get(le, 0.0)) for le, c in buckets(after, name)]
    n = rows[-1][1] if rows else 0.0
    if n <= 0:
        return None
    for le, c in rows:
        if c >= q * n:
            return le
    return None


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return ">2.5 s" if v == float("inf") else f"{v * 1e3:g} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="length of the run")
    ap.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--warm-s", type=float, default=180.0, help="the RSS baseline's time")
    ap.add_argument("--worker-mode", choices=("inline", "process"), default="inline")
    ap.add_argument("--rig", default=None, help="rig TOML (default: the simulator's default rig)")
    args = ap.parse_args()
    if args.minutes * 60 <= args.warm_s + 2 * args.sample_s:
        ap.error("--minutes must leave at least two samples after --warm-s")

    exe = [sys.executable, "-m", "warpsync"]
    d = Path(tempfile.mkdtemp(prefix="wssoak", dir="/tmp"))
    ready = d / "ready.json"
    serve = subprocess.Popen(
        [*exe, "serve", "--ingest", f"ipc://{d}/in", "--publish", f"ipc://{d}/pub", "--control", f"ipc://{d}/ctl"]
        + ["--metrics-port", "0", "--worker-mode", args.worker_mode, "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "serve.log", "w"),  # noqa: SIM115  closed with the process
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if serve.poll() is not None or time.monotonic() > deadline:
            print(f"service did not start (exit {serve.returncode}); log: {d / 'serve.log'}")
            return 1
        time.sleep(0.2)
    ep = json.loads(ready.read_text())
    metrics = ep["metrics"]
    seconds = args.minutes * 60
    sim_cmd = [*exe, "simulate", "--control", ep["control"], "--publish", ep["publish"], "--score", "--json"]
    sim_cmd += ["--duration", f"{seconds:g}", "--live-every", "0"] + (["--rig", args.rig] if args.rig else [])
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, stderr=open(d / "simulate.log", "w"), text=True)  # noqa: SIM115
    print(
        f"soak: `warpsync serve` (pid {serve.pid}, {args.worker_mode} workers) fed the default rig in real time "
        f"for {args.minutes:g} min by `warpsync simulate` (pid {sim.pid}); a sample every {args.sample_s:g} s\n"
    )
    print(
        f"{'t_s':>6} {'rss_MiB':>8} {'cpu_core':>8} {'gc2':>4} {'chunks':>8} {'events':>8} {'lat_p99':>9} {'hop_p99':>9}"
    )
    t0 = time.monotonic()
    rows: list[tuple[float, float]] = []
    parts: list[tuple[float, str]] = []  # (t, each process's RSS) per sample
    prev = scrape(metrics)
    prev_t = t0
    try:
        while sim.poll() is None:
            time.sleep(max(0.0, prev_t + args.sample_s - time.monotonic()))
            if serve.poll() is not None:
                print(f"the service exited ({serve.returncode}) during the run; log: {d / 'serve.log'}")
                sim.kill()
                return 1
            now, m = time.monotonic(), scrape(metrics)
            t, r = now - t0, rss_mib(m)
            rows.append((t, r))
            parts.append((t, rss_parts_mib(m)))
            chunks = total(m, "warpsync_ingest_messages_total") - total(prev, "warpsync_ingest_messages_total")
            events = total(m, "warpsync_events_published_total") - total(prev, "warpsync_events_published_total")
            lat = interval_quantile(prev, m, "warpsync_ingest_to_publish_latency_seconds", 0.99)
            hop = interval_quantile(prev, m, "warpsync_engine_hop_seconds", 0.99)
            print(
                f"{t:6.0f} {r:8.1f} {(cpu_s(m) - cpu_s(prev)) / (now - prev_t):8.3f} {gen2(m) - gen2(prev):4.0f} "
                f"{chunks:8.0f} {events:8.0f} "
                f"{_fmt_s(lat):>9} {_fmt_s(hop):>9}",
                flush=True,
            )
            prev, prev_t = m, now
        out = sim.stdout.read() if sim.stdout else ""
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
    print(f"\nsimulate exit {sim.returncode}; serve exit after SIGINT {serve.returncode} (logs in {d})")
    warm = [(t, r) for t, r in rows if t >= args.warm_s]
    if len(warm) >= 2:
        tt, rr = np.array(warm).T
        slope = np.polyfit(tt, rr, 1)[0] * 3600
        half = len(tt) // 2
        late = np.polyfit(tt[half:], rr[half:], 1)[0] * 3600 if len(tt) - half >= 2 else float("nan")
        print(
            f"RSS: {rows[0][1]:.1f} MiB at {rows[0][0]:.0f} s, {warm[0][1]:.1f} MiB at {warm[0][0]:.0f} s (warm), "
            f"{warm[-1][1]:.1f} MiB at the end ({warm[-1][0]:.0f} s); end / warm = {warm[-1][1] / warm[0][1]:.3f}; "
            f"line through the warm samples: {slope:+.1f} MiB per hour, through their second half: {late:+.1f}"
        )
        w0 = next(p for t, p in parts if t >= args.warm_s)
        print(f"  by process, warm: {w0}; end: {parts[-1][1]}")
    try:
        card = json.loads(out)
    except json.JSONDecodeError:
        print(f"no scorecard from simulate ({len(out)} bytes of output)")
        return 1
    print(
        f"scorecard over the whole run (event latency p50 {_fmt_s(card['latency_p50_s'])}, "
        f"p99 {_fmt_s(card['latency_p99_s'])}):"
    )
    for f in card["floors"]:
        verdict = {True: "ok", False: "FAIL", None: "-"}[f["ok"]]
        value = "-" if f["value"] is None else f"{f['value']:.3g}"
        print(f"  {f['name']:<44} {value:>8} / {f['limit']:.3g} {f['unit']:<3} {verdict:<4} {f['detail']}")
    return 0 if serve.returncode == 0 and sim.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
