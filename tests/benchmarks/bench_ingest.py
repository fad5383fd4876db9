"""Ingest throughput: raw pyzmq PUSH/PULL vs the real service, at 1 KiB and 1 MiB, from one run.

    .venv/bin/python tests/benchmarks/bench_ingest.py [--quick] [--repeat N]

Raw: a sender (this process) PUSHes N messages over tcp://127.0.0.1 to a PULL in a second process that
counts messages and bytes (1 MiB sent zero-copy, ``copy=False``). Service: the same sender opens a stream on
the control socket, PUSHes N chunks of the same size to the real service (`warpsync.server.Service` in its
own process, with one ingest worker (inline by default, `--worker-mode`), ring buffers and stages; each chunk's header encoded by the
client library's `ChunkHeaderEncoder`, as `Publisher` does) and waits for the end-of-stream
acknowledgement; the time is first send -> acknowledgement, and the acknowledgement must report every chunk
received (zero loss). The slow-consumer run puts a reader behind the ring buffer that consumes at a fixed,
slow rate under the ``block`` policy: the sender is held back by backpressure, and a CRC32 of everything the
reader consumed must equal the CRC32 of everything sent.

Raw and service runs alternate (``--repeat`` pairs per size, default 3) and the median ratio is compared with
the floors (>= 0.5 at 1 KiB, >= 0.8 at 1 MiB), so that a change in machine load hits both sides alike.

What is measured is ingest: the service runs its status stage, with the sync engine and speech stages off
(`[engine] enabled = false`, `[speech] enabled = false`). The benchmark stream is 48 kHz audio sent as fast
as possible (1 KiB chunks: about 1000x real time), and the engine computes audio features for every chunk,
so with it on the engine is the bottleneck and, under the lossless `block` policy, holds ingest back by
design. `--with-engine` measures the service with every stage on (what `warpsync serve` runs); the engine's
own real-time capacity is measured in bench_engine.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import sys
import time
import zlib

import msgpack
import numpy as np
import psutil
import zmq

from warpsync_client import protocol as P

FLOORS = {1024: 0.5, 1 << 20: 0.8}


# ------------------------------------------------------------------------------------------------- raw
def _raw_receiver(endpoint_q, n_expected: int, done_q) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 10000)
    pull.bind("tcp://127.0.0.1:*")
    endpoint_q.put(pull.getsockopt(zmq.LAST_ENDPOINT).decode())
    count = nbytes = 0
    cpu0 = None
    while count < n_expected:
        frames = pull.recv_multipart(copy=False)
        if cpu0 is None:
            cpu0 = time.process_time()  # every thread of this process (the libzmq I/O thread too)
        count += 1
        nbytes += len(frames[-1])
    done_q.put((count, nbytes, time.perf_counter(), time.process_time() - cpu0))
    pull.close(linger=0)
    ctx.term()


def bench_raw(size: int, n: int) -> tuple[float, float, int]:
    mpc = mp.get_context("spawn")
    ep_q, done_q = mpc.Queue(), mpc.Queue()
    p = mpc.Process(target=_raw_receiver, args=(ep_q, n, done_q))
    p.start()
    endpoint = ep_q.get(timeout=60)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 10000)
    push.connect(endpoint)
    hdr = msgpack.packb({"v": 1, "type": "chunk", "stream": "raw", "seq": 0, "t": 0.0, "n": size // 4})
    payload = np.random.default_rng(0).standard_normal(size // 4).astype(np.float32)
    buf = memoryview(payload).cast("B")
    copy = size < 65536
    push.send_multipart([hdr, buf], copy=True)  # connect
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(n - 1):
        push.send_multipart([hdr, buf], copy=copy)
    count, _nbytes, t1, recv_cpu = done_q.get(timeout=600)
    send_cpu = time.process_time() - c0
    p.join(30)
    push.close(linger=0)
    ctx.term()
    dt = t1 - t0
    assert count == n, f"raw: {count} of {n} received"
    return (n - 1) / dt, (n - 1) * size / dt, count, (send_cpu + recv_cpu) / (n - 1)


# ------------------------------------------------------------------------------------------------- service
class SlowReader:
    """A stage that consumes its streams' ring buffers at `samples_per_s` (in ticks) and CRCs what it reads."""

    name = "slow_reader"

    def __init__(self, samples_per_s: float) -> None:
        self.rate = samples_per_s
        self.lookup = None
        self.last_s: float | None = None
        self.crc: dict[str, int] = {}
        self.count: dict[str, int] = {}

    def bind_buffers(self, lookup) -> None:
        self.lookup = lookup

    def open(self, meta, now_s):
        self.lookup(meta.stream).add_reader(self.name)
        self.crc[meta.stream] = 0
        self.count[meta.stream] = 0
        return []

    def samples(self, meta, chunk):
        return []

    def _consume(self, stream: str, n: int | None) -> None:
        w = self.lookup(stream).consume(self.name, n)
        self.crc[stream] = zlib.crc32(w.data.tobytes(), self.crc[stream])
        self.count[stream] += len(w)

    def tick(self, now_s):
        if self.last_s is None:
            self.last_s = now_s
            return []
        budget = int((now_s - self.last_s) * self.rate)
        if budget <= 0:
            return []
        self.last_s = now_s
        for sid in self.crc:
            self._consume(sid, budget)
        return []

    def close(self, stream, now_s):
        from warpsync.stage import Event

        self._consume(stream, None)
        return [Event("bench.checksum", stream, {"crc": self.crc[stream], "samples": self.count[stream]})]


def _service_main(cfg, slow_rate: float | None, ep_q) -> None:
    import signal

    from prometheus_client import CollectorRegistry

    from warpsync.server import Service
    from warpsync.tuning import tune_process

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stages = None if slow_rate is None else [SlowReader(slow_rate)]
    svc = Service(cfg, CollectorRegistry(), stages=stages)
    signal.signal(signal.SIGTERM, lambda *a: svc.request_stop())
    tune_process()  # as `warpsync serve` does
    svc.run(lambda ep: ep_q.put(ep.as_dict()))


def _start_service(slow_rate: float | None, with_engine: bool = False, **ingest):
    from warpsync.config import Config

    base = Config()
    cfg = dataclasses.replace(
        base,
        engine=dataclasses.replace(base.engine, enabled=with_engine),
        speech=dataclasses.replace(base.speech, enabled=with_engine),
        ingest=dataclasses.replace(base.ingest, endpoint="tcp://127.0.0.1:*", **ingest),
        publish=dataclasses.replace(base.publish, endpoint="tcp://127.0.0.1:*"),
        control=dataclasses.replace(base.control, endpoint="tcp://127.0.0.1:*"),
        metrics=dataclasses.replace(base.metrics, enabled=False),
    )
    mpc = mp.get_context("spawn")
    ep_q = mpc.Queue()
    p = mpc.Process(target=_service_main, args=(cfg, slow_rate, ep_q))
    p.start()
    return p, ep_q.get(timeout=120)


def _cpu(procs) -> float:
    """CPU seconds (user + system, all threads) used so far by `procs` (the service and its workers)."""
    total = 0.0
    for pr in procs:
        try:
            t = pr.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _thread_cpu(procs) -> dict:
    """``{(pid, tid): (thread name, CPU seconds)}`` for every thread of `procs` (names from /proc, Linux)."""
    out = {}
    for pr in procs:
        try:
            threads = pr.threads()
        except psutil.NoSuchProcess:
            continue
        for t in threads:
            try:
                with open(f"/proc/{pr.pid}/task/{t.id}/comm") as fh:
                    name = fh.read().strip()
            except OSError:
                name = "?"
            out[(pr.pid, t.id)] = (name, t.user_time + t.system_time)
    return out


def _print_threads(before: dict, after: dict, n: int) -> None:
    for key, (name, cpu) in sorted(after.items()):
        used = cpu - before.get(key, (name, 0.0))[1]
        if used > 0.005:
            print(f"    service pid {key[0]} thread {key[1]} {name!r}: {used / n * 1e6:,.1f} us per message")


def _request(ctl, frame: bytes, timeout_s: float) -> dict:
    ctl.send(frame)
    if not ctl.poll(int(timeout_s * 1000)):
        raise TimeoutError("no control reply")
    return msgpack.unpackb(ctl.recv(), raw=False)


def bench_service(
    size: int,
    n: int,
    slow_rate: float | None = None,
    rate_hz: float = 48000.0,
    with_engine: bool = False,
    threads: bool = False,
    **ingest,
):
    proc, ep = _start_service(slow_rate, with_engine, **ingest)
    ctx = zmq.Context()
    ctl = ctx.socket(zmq.DEALER)
    ctl.connect(ep["control"])
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"bench.")
    sub.connect(ep["publish"])
    push = ctx.socket(zmq.PUSH)
    try:
        meta = P.StreamMeta("bench", "audio", rate_hz, (), "f4")
        rep = _request(ctl, P.encode_open_request(meta, 1), 30)
        assert rep["ok"], rep
        push.setsockopt(zmq.SNDHWM, 10000)
        push.connect(rep["endpoint"])
        rng = np.random.default_rng(1)
        k = size // 4
        pool = [rng.standard_normal(k).astype(np.float32) for _ in range(8)]
        copy = size < 65536
        crc = 0
        period = k / rate_hz
        header = P.ChunkHeaderEncoder("bench")  # what `warpsync_client.Publisher` sends, encoded as it does
        svc_procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        cpu0 = _cpu(svc_procs)
        th0 = _thread_cpu(svc_procs) if threads else {}
        c0 = time.process_time()
        t0 = time.perf_counter()
        for seq in range(n):
            x = pool[seq % 8]
            frames = [header(seq, seq * period, k), memoryview(x).cast("B")]
            push.send_multipart(frames, copy=copy)
            if slow_rate is not None:
                crc = zlib.crc32(x.tobytes(), crc)
        ack = _request(ctl, P.encode_close_request("bench", n - 1, timeout_s=60.0, req_id=2), 70)
        t1 = time.perf_counter()
        cpu = time.process_time() - c0 + _cpu(svc_procs) - cpu0
        if threads:  # before the service exits: its thread names are still readable
            print(f"    sender (this process, all threads): {(time.process_time() - c0) / n * 1e6:,.1f} us per message")
            _print_threads(th0, _thread_cpu(svc_procs), n)
        assert ack["ok"], ack
        assert ack["received"] == n and ack["rejected"] == 0, f"loss: {ack}"
        if slow_rate is not None:
            assert sub.poll(30000), "no checksum event"
            _, hdr, _ = P.decode_event(sub.recv_multipart())
            assert hdr["samples"] == n * k, f"slow consumer read {hdr['samples']} of {n * k} samples"
            assert hdr["crc"] == crc, "checksum of consumed samples differs from what was sent"
        dt = t1 - t0
        return n / dt, n * size / dt, ack["received"], cpu / n
    finally:
        push.close(linger=0)
        ctl.close(linger=0)
        sub.close(linger=0)
        ctx.term()
        proc.terminate()
        proc.join(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke run, noisier)")
    ap.add_argument("--repeat", type=int, default=3, help="raw/service pairs per size; the median ratio counts")
    ap.add_argument("--with-engine", action="store_true", help="run every stage (sync engine, speech) too")
    ap.add_argument(
        "--worker-mode",
        choices=("process", "inline"),
        default=None,
        help="ingest.worker_mode of the service (default: the config's default)",
    )
    ap.add_argument("--sizes", default="1k,1m", help="comma-separated: 1k, 1m (default both)")
    ap.add_argument("--threads", action="store_true", help="also print the CPU time of every service thread")
    args = ap.parse_args()
    from warpsync.ingest.config import IngestConfig

    mode = args.worker_mode or IngestConfig().worker_mode
    sizes = {"1k": 1024, "1m": 1 << 20}
    wanted = [sizes[x.strip()] for x in args.sizes.split(",")]
    n_small = 50_000 if args.quick else 200_000
    n_big = 1000 if args.quick else 5000
    ok = True
    print(
        f"bench_ingest: {mp.cpu_count()} CPUs, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)"
    )
    print("stages: status, sync engine, speech" if args.with_engine else "stages: status (engine and speech off)")
    print(f"ingest.worker_mode = {mode}")
    # Raw and service runs alternate, so that a change in machine load hits both sides of a pair alike.
    for size, n in ((1024, n_small), (1 << 20, n_big)):
        if size not in wanted:
            continue
        label = "1 KiB" if size == 1024 else "1 MiB"
        ratios = []
        cpu_ratios = []
        for rep in range(args.repeat):
            raw_mps, raw_bps, _, raw_cpu = bench_raw(size, n)
            svc_mps, svc_bps, got, svc_cpu = bench_service(
                size, n, with_engine=args.with_engine, threads=args.threads, worker_mode=mode
            )
            ratios.append(svc_mps / raw_mps)
            cpu_ratios.append(raw_cpu / svc_cpu)
            print(
                f"{label} pair {rep + 1}: raw {raw_mps:10,.0f} msgs/s {raw_bps / 1e6:8,.1f} MB/s | service "
                f"{svc_mps:10,.0f} msgs/s {svc_bps / 1e6:8,.1f} MB/s, received {got}/{n} (zero loss) | "
                f"ratio {ratios[-1]:.2f} | CPU per message: raw {raw_cpu * 1e6:,.1f} us, service "
                f"{svc_cpu * 1e6:,.1f} us (raw/service {cpu_ratios[-1]:.2f})",
                flush=True,
            )
        ratio = float(np.median(ratios))
        floor = FLOORS[size]
        ok &= ratio >= floor
        print(
            f"{label} median ratio service/raw = {ratio:.2f} (floor {floor}) {'OK' if ratio >= floor else 'BELOW FLOOR'}"
        )
        print(
            f"{label} median CPU cost ratio raw/service = {float(np.median(cpu_ratios)):.2f} (all processes of "
            "each side, sender included; not a floor)"
        )
    # slow consumer behind a small block-policy buffer: 1 KiB chunks, 0.5 s of buffer, reader at 4x real time
    n_slow = 400 if args.quick else 1000
    rate_hz = 48000.0
    mps, _bps, got, _ = bench_service(
        1024, n_slow, slow_rate=rate_hz * 4, rate_hz=rate_hz, buffer_s=0.5, worker_mode=mode
    )
    print(
        f"slow consumer (block, 0.5 s buffer, reader at {rate_hz * 4:,.0f} samples/s): {mps:,.0f} msgs/s, "
        f"received {got}/{n_slow}, CRC32 of consumed == sent: zero loss"
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
