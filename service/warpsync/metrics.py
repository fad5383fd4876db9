"""Prometheus metrics of the service, on an injected `CollectorRegistry` (never the global one).

Hot-path counts are not pushed into Prometheus per message (a labelled ``Counter.inc`` costs about 2 µs):
the event loop accumulates plain integers per stream (`StreamCounts`) and `ServiceMetrics.flush` adds them
to the labelled counters a few times a second and before every scrape-visible state change. Worker
processes hold no metrics: the service process derives everything from the records they forward, so the
one HTTP endpoint covers all of them. The service process's own memory, CPU and garbage collections are the
client library's standard ``process_*`` and ``python_gc_*`` families; each worker process's memory and CPU
are read from /proc at scrape time (`WorkerProcessCollector`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector

from .errors import ConfigError

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class StreamCounts:
    """Per-stream counts accumulated between flushes."""

    messages: int = 0
    bytes: int = 0
    samples: int = 0
    gaps: int = 0
    duplicates: int = 0
    reordered: int = 0
    time_jumps: int = 0
    nonfinite: int = 0
    dropped_samples: int = 0

    def any(self) -> bool:
        return bool(
            self.messages
            or self.gaps
            or self.duplicates
            or self.reordered
            or self.time_jumps
            or self.nonfinite
            or self.dropped_samples
        )


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_proc(pid: int, proc: str = "/proc") -> tuple[int, float] | None:
    """(resident bytes, user + system CPU seconds) of process `pid` from /proc, or None once it is gone (or
    where there is no /proc)."""
    try:
        with open(f"{proc}/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * _PAGE
        with open(f"{proc}/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    except (OSError, IndexError, ValueError):
        return None
    return rss, (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


class WorkerProcessCollector:
    """``warpsync_worker_resident_memory_bytes{worker}`` and ``warpsync_worker_cpu_seconds_total{worker}``:
    each live ingest worker *process*, read at scrape time. `pids()` gives {worker index: pid}; inline
    workers have none (they run in the service process, whose ``process_*`` families count them). A worker
    started again is a new process: its CPU counter starts again from 0, which Prometheus' ``rate`` reads as a
    counter reset."""

    def __init__(self, pids: Callable[[], dict[int, int]], proc: str = "/proc") -> None:
        self.pids = pids
        self.proc = proc

    def collect(self) -> Iterator[Metric]:
        rss = GaugeMetricFamily(
            "warpsync_worker_resident_memory_bytes", "Resident memory of each ingest worker process.", labels=["worker"]
        )
        cpu = CounterMetricFamily(
            "warpsync_worker_cpu_seconds",
            "User and system CPU time of each ingest worker process (since it was last started).",
            labels=["worker"],
        )
        for index, pid in sorted(self.pids().items()):
            got = read_proc(pid, self.proc)
            if got is not None:
                rss.add_metric([str(index)], got[0])
                cpu.add_metric([str(index)], got[1])
        yield rss
        yield cpu


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        # the service process: process_{resident_memory_bytes,cpu_seconds_total,open_fds,...}, python_gc_*,
        # python_info (the client library's standard collectors, here on the injected registry)
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        PlatformCollector(registry=r)
        self.worker_pids: Callable[[], dict[int, int]] = dict
        """{worker index: pid} of the live worker processes; the service sets it once its pool exists."""
        r.register(WorkerProcessCollector(lambda: self.worker_pids()))
        self.messages = Counter("warpsync_ingest_messages", "Chunks accepted, per stream.", ["stream"], registry=r)
        self.bytes = Counter("warpsync_ingest_bytes", "Payload bytes accepted, per stream.", ["stream"], registry=r)
        self.samples = Counter("warpsync_ingest_samples", "Samples accepted, per stream.", ["stream"], registry=r)
        self.rejected = Counter("warpsync_ingest_rejected", "Messages rejected, per reason.", ["reason"], registry=r)
        self.gaps = Counter(
            "warpsync_ingest_gaps", "Sequence numbers skipped (lost chunks), per stream.", ["stream"], registry=r
        )
        self.duplicates = Counter(
            "warpsync_ingest_duplicates", "Duplicate chunks dropped, per stream.", ["stream"], registry=r
        )
        self.reordered = Counter(
            "warpsync_ingest_reordered", "Out-of-order chunks dropped, per stream.", ["stream"], registry=r
        )
        self.time_jumps = Counter(
            "warpsync_ingest_time_jumps", "Forward device-time jumps kept, per stream.", ["stream"], registry=r
        )
        self.nonfinite = Counter(
            "warpsync_ingest_nonfinite_chunks",
            "Chunks with NaN/Inf kept or zero-filled, per stream.",
            ["stream"],
            registry=r,
        )
        self.buffer_fill = Gauge(
            "warpsync_buffer_fill_ratio", "Unread fraction of the stream's ring buffer (0..1).", ["stream"], registry=r
        )
        self.buffer_dropped = Counter(
            "warpsync_buffer_dropped_samples",
            "Samples dropped by an opt-in full policy, per stream.",
            ["stream"],
            registry=r,
        )
        self.blocked = Counter(
            "warpsync_buffer_blocked_seconds", "Time ingest was held back by a full buffer (policy block).", registry=r
        )
        self.latency = Histogram(
            "warpsync_ingest_to_publish_latency_seconds",
            "From a chunk's arrival at a worker to the end of its processing (stages run, events published); "
            "observed once per batch for its oldest chunk.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.events = Counter("warpsync_events_published", "Events published, per event name.", ["event"], registry=r)
        self.events_dropped = Counter(
            "warpsync_events_dropped",
            "Events not published because a subscriber's queue was full (publish.sndhwm), per event name.",
            ["event"],
            registry=r,
        )
        self.worker_up = Gauge(
            "warpsync_worker_up", "1 while the ingest worker runs (inline or process).", ["worker"], registry=r
        )
        self.worker_restarts = Counter(
            "warpsync_worker_restarts",
            "Ingest workers restarted after dying (a process) or failing (inline).",
            ["worker"],
            registry=r,
        )
        self.stage_errors = Counter(
            "warpsync_stage_errors", "Exceptions escaping a stage (its events lost).", ["stage"], registry=r
        )
        self.streams_open = Gauge("warpsync_streams_open", "Streams currently open.", registry=r)
        self.control_requests = Counter(
            "warpsync_control_requests", "Control requests, per command and outcome.", ["cmd", "ok"], registry=r
        )
        self._pending: dict[str, StreamCounts] = {}
        self._rejected_pending: dict[str, int] = {}
        self._events_pending: dict[str, int] = {}
        self._dropped_pending: dict[str, int] = {}

    def pre_register(self, reasons: Iterable[str], workers: int, stages: Iterable[str]) -> None:
        """Create every label value known up front, so dashboards show zeros instead of nothing."""
        for reason in reasons:
            self.rejected.labels(reason)
        for i in range(workers):
            self.worker_up.labels(str(i))
            self.worker_restarts.labels(str(i))
        for name in stages:
            self.stage_errors.labels(name)

    # ---------------------------------------------------------------------------------- batched updates
    def counts(self, stream: str) -> StreamCounts:
        c = self._pending.get(stream)
        if c is None:
            c = self._pending[stream] = StreamCounts()
        return c

    def reject(self, reason: str, n: int = 1) -> None:
        self._rejected_pending[reason] = self._rejected_pending.get(reason, 0) + n

    def published(self, event: str, n: int = 1) -> None:
        self._events_pending[event] = self._events_pending.get(event, 0) + n

    def dropped(self, event: str, n: int = 1) -> None:
        self._dropped_pending[event] = self._dropped_pending.get(event, 0) + n

    def flush(self) -> None:
        for sid, c in self._pending.items():
            if not c.any():
                continue
            if c.messages:
                self.messages.labels(sid).inc(c.messages)
                self.bytes.labels(sid).inc(c.bytes)
                self.samples.labels(sid).inc(c.samples)
            for value, metric in (
                (c.gaps, self.gaps),
                (c.duplicates, self.duplicates),
                (c.reordered, self.reordered),
                (c.time_jumps, self.time_jumps),
                (c.nonfinite, self.nonfinite),
                (c.dropped_samples, self.buffer_dropped),
            ):
                if value:
                    metric.labels(sid).inc(value)
            self._pending[sid] = StreamCounts()
        for reason, n in self._rejected_pending.items():
            self.rejected.labels(reason).inc(n)
        self._rejected_pending.clear()
        for event, n in self._events_pending.items():
            self.events.labels(event).inc(n)
        self._events_pending.clear()
        for event, n in self._dropped_pending.items():
            self.events_dropped.labels(event).inc(n)
        self._dropped_pending.clear()

    def stream_opened(self, stream: str) -> None:
        for m in (self.messages, self.bytes, self.samples, self.gaps, self.duplicates, self.reordered):
            m.labels(stream)
        self.buffer_fill.labels(stream).set(0.0)


class MetricsServer:
    """The Prometheus HTTP endpoint (``/metrics``) in a daemon thread; `port` 0 binds an ephemeral port."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics: " + format, *args)

        class _Server(WSGIServer):
            daemon_threads = True

        try:
            self._httpd = make_server(host, port, make_wsgi_app(registry), _Server, handler_class=_Quiet)
        except OSError as exc:
            raise ConfigError(
                f"cannot bind the metrics endpoint to {host}:{port}: {exc.strerror or exc}; "
                "choose another port with --metrics-port or [metrics] port"
            ) from None
        self.host = host
        self.port = int(self._httpd.server_port)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
