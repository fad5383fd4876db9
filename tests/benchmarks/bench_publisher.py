#!/usr/bin/env python3
# ruff: noqa: EXE001  kept as a plain (non-executable) file: run it with `python`
"""Publisher.send throughput against raw pyzmq PUSH, measured in the same run (not a test).

    .venv/bin/python clients/python/benchmarks/bench_publisher.py [--messages-1k 100000] [--messages-1m 2000]

For 1 KiB and 1 MiB chunks it sends N messages over tcp://127.0.0.1 to a PULL in a separate process that
counts messages and bytes, first with a bare PUSH socket (``send_multipart``, zero-copy at 1 MiB), then with
`warpsync_client.Publisher` (control handshake with the in-process FakeService, chunks to the counting PULL),
alternating three times and keeping each side's best run. It prints msgs/s, MB/s, the ratio Publisher/raw, and
checks that the receiver counted every message and byte (zero loss). Last, the sender's cost alone per 1 KiB
message (inproc sink with unlimited queues: no receiver in the way).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import zmq

from warpsync_client import Publisher
from warpsync_client.testing import FakeService

DRAIN = r"""
import sys, zmq
ctx = zmq.Context()
pull = ctx.socket(zmq.PULL)
pull.setsockopt(zmq.RCVHWM, 10000)
port = pull.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
n, nbytes = int(sys.argv[1]), 0
for _ in range(n):
    frames = pull.recv_multipart(copy=False)
    nbytes += len(frames[-1])
print(n, nbytes, flush=True)
pull.close(0)
ctx.term()
"""


def _drain(n: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", DRAIN, str(n)], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def _finish(proc: subprocess.Popen, t0: float, n: int, size: int) -> float:
    got_n, got_bytes = map(int, proc.stdout.readline().split())
    dt = time.perf_counter() - t0
    proc.wait()
    if (got_n, got_bytes) != (n, n * size):
        raise SystemExit(f"LOSS: receiver counted {got_n} messages / {got_bytes} bytes, sent {n} / {n * size}")
    return n / dt


def raw(ctx: zmq.Context, n: int, size: int) -> float:
    proc, port = _drain(n)
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    header, payload = b"h" * 48, np.zeros(size, np.uint8)
    copy = size < 65536
    t0 = time.perf_counter()
    for _ in range(n):
        push.send_multipart([header, payload], copy=copy)
    rate = _finish(proc, t0, n, size)
    push.close(linger=0)
    return rate


def publisher(ctx: zmq.Context, n: int, size: int) -> float:
    proc, port = _drain(n)
    with FakeService(ctx, read_ingest=False) as svc:
        svc.ingest_endpoint = f"tcp://127.0.0.1:{port}"  # the handshake sends the publisher to the counter
        pub = Publisher(
            "bench",
            modality="sensor",
            rate_hz=1000.0,
            shape=(size // 4,),
            dtype="f4",
            control=svc.control_endpoint,
            context=ctx,
        )
        block = np.zeros((1, size // 4), np.float32)
        t0 = time.perf_counter()
        for i in range(n):
            pub.send(block, float(i))
        rate = _finish(proc, t0, n, size)
        pub.abort()  # the counting PULL is not a service: there is no close to acknowledge
    return rate


def per_call_us(ctx: zmq.Context, n: int = 50_000) -> tuple[float, float]:
    """Sender cost alone (µs per 1 KiB message): an inproc sink with unlimited queues, so nothing waits on a
    receiver; bare ``send_multipart`` of the same two frames vs `Publisher.send`."""
    out = []
    for which in ("raw", "pub"):
        sink = ctx.socket(zmq.PULL)
        sink.setsockopt(zmq.RCVHWM, 0)
        name = f"inproc://bench-{which}-{time.monotonic_ns()}"
        sink.bind(name)
        svc = None
        if which == "raw":
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.SNDHWM, 0)
            push.connect(name)
            frames = [b"h" * 48, np.zeros(1024, np.uint8)]
            t0 = time.perf_counter()
            for _ in range(n):
                push.send_multipart(frames)
            out.append((time.perf_counter() - t0) / n * 1e6)
            push.close(linger=0)
        else:
            svc = FakeService(ctx, read_ingest=False).start()
            svc.ingest_endpoint = name
            pub = Publisher(
                "bench",
                modality="sensor",
                rate_hz=1000.0,
                shape=(256,),
                dtype="f4",
                control=svc.control_endpoint,
                context=ctx,
                sndhwm=0,
            )
            block = np.zeros((1, 256), np.float32)
            t0 = time.perf_counter()
            for i in range(n):
                pub.send(block, float(i))
            out.append((time.perf_counter() - t0) / n * 1e6)
            pub.abort()
            svc.stop()
        count = 0
        while sink.poll(0):
            sink.recv_multipart(copy=False)
            count += 1
        sink.close(linger=0)
        if count != n:
            raise SystemExit(f"LOSS: inproc sink got {count} of {n}")
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages-1k", type=int, default=100_000)
    ap.add_argument("--messages-1m", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ctx = zmq.Context()
    try:
        for size, n in ((1024, args.messages_1k), (1 << 20, args.messages_1m)):
            best_raw = best_pub = 0.0
            for _ in range(args.repeats):
                best_raw = max(best_raw, raw(ctx, n, size))
                best_pub = max(best_pub, publisher(ctx, n, size))
            label = "1 KiB" if size == 1024 else "1 MiB"
            print(
                f"{label}: raw PUSH {best_raw:,.0f} msgs/s ({best_raw * size / 1e6:,.0f} MB/s); Publisher.send "
                f"{best_pub:,.0f} msgs/s ({best_pub * size / 1e6:,.0f} MB/s); ratio {best_pub / best_raw:.2f}; "
                f"zero loss over {2 * args.repeats} x {n} messages"
            )
        best = [min(x) for x in zip(*(per_call_us(ctx) for _ in range(args.repeats)), strict=True)]
        print(
            f"sender cost per 1 KiB message (inproc sink, best of {args.repeats}): send_multipart {best[0]:.1f} us, "
            f"Publisher.send {best[1]:.1f} us"
        )
    finally:
        ctx.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
