"""ServiceMetrics: batched counts reach the injected registry on flush (never the global one); the HTTP
endpoint serves them (a real scrape); process memory and CPU read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from warpsync.errors import ConfigError
from warpsync.metrics import MetricsServer, ServiceMetrics, read_proc


def test_batched_counts_appear_only_after_flush():
    reg = CollectorRegistry()
    m = ServiceMetrics(reg)
    m.pre_register(["not_msgpack"], workers=2, stages=["status"])
    assert reg.get_sample_value("warpsync_ingest_rejected_total", {"reason": "not_msgpack"}) == 0
    assert reg.get_sample_value("warpsync_worker_restarts_total", {"worker": "1"}) == 0
    c = m.counts("cam")
    c.messages += 3
    c.bytes += 300
    c.samples += 30
    c.gaps += 2
    m.reject("not_msgpack", 4)
    m.published("stream.status", 5)
    m.dropped("stream.status")
    assert reg.get_sample_value("warpsync_ingest_messages_total", {"stream": "cam"}) is None
    m.flush()
    assert reg.get_sample_value("warpsync_ingest_messages_total", {"stream": "cam"}) == 3
    assert reg.get_sample_value("warpsync_ingest_bytes_total", {"stream": "cam"}) == 300
    assert reg.get_sample_value("warpsync_ingest_gaps_total", {"stream": "cam"}) == 2
    assert reg.get_sample_value("warpsync_ingest_rejected_total", {"reason": "not_msgpack"}) == 4
    assert reg.get_sample_value("warpsync_events_published_total", {"event": "stream.status"}) == 5
    assert reg.get_sample_value("warpsync_events_dropped_total", {"event": "stream.status"}) == 1
    m.flush()  # flushing twice adds nothing
    assert reg.get_sample_value("warpsync_ingest_messages_total", {"stream": "cam"}) == 3
    # nothing leaked into the global registry
    assert prometheus_client.REGISTRY.get_sample_value("warpsync_ingest_messages_total", {"stream": "cam"}) is None


def test_http_scrape_and_bind_error():
    reg = CollectorRegistry()
    m = ServiceMetrics(reg)
    m.latency.observe(0.003)
    srv = MetricsServer(reg, "127.0.0.1", 0)
    try:
        body = urllib.request.urlopen(srv.url, timeout=10).read().decode()
        assert 'warpsync_ingest_to_publish_latency_seconds_bucket{le="0.005"} 1.0' in body
        with pytest.raises(ConfigError, match="cannot bind the metrics endpoint"):
            MetricsServer(reg, "127.0.0.1", srv.port)
    finally:
        srv.close()


def test_read_proc_agrees_with_the_processes_own_accounting_and_a_gone_process_reads_none():
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    x = 0.0
    t = time.process_time()
    while time.process_time() - t < 0.3:  # some CPU time of our own to read back
        x += 1.0
    rss, cpu = read_proc(os.getpid())
    own = time.process_time()
    assert abs(cpu - own) < 0.05, (cpu, own)  # /proc counts clock ticks (10 ms)
    with open("/proc/self/status") as f:
        vmrss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    assert rss > 0 and abs(rss - vmrss) < 2**20, (rss, vmrss)  # statm's pages against status' kB
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its /proc entry is gone
    assert read_proc(child.pid) is None


def test_worker_process_collector_reports_live_workers_only_and_the_service_registry_has_process_metrics():
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    reg = CollectorRegistry()
    m = ServiceMetrics(reg)
    assert reg.get_sample_value("warpsync_worker_resident_memory_bytes", {"worker": "0"}) is None  # no pool yet
    m.worker_pids = lambda: {0: os.getpid(), 1: child.pid}
    assert reg.get_sample_value("warpsync_worker_resident_memory_bytes", {"worker": "0"}) > 0
    assert reg.get_sample_value("warpsync_worker_cpu_seconds_total", {"worker": "0"}) > 0
    assert reg.get_sample_value("warpsync_worker_resident_memory_bytes", {"worker": "1"}) is None  # gone
    assert reg.get_sample_value("process_resident_memory_bytes") > 0
    assert reg.get_sample_value("python_gc_collections_total", {"generation": "0"}) is not None
