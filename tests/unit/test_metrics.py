"""ServiceMetrics: batched counts reach the injected registry on flush (never the global one); the HTTP
endpoint serves them (a real scrape)."""

from __future__ import annotations

import urllib.request

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from warpsync.errors import ConfigError
from warpsync.metrics import MetricsServer, ServiceMetrics


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
