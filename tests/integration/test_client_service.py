"""The client library against the real service (worker processes, sockets) running in a thread, and the
stateful invalid vectors of clients/protocol/vectors/invalid.json pushed through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from service_harness import ipc_cfg, wait_for

from warpsync_client import Control, ProtocolError, Publisher, Subscriber

VECTORS = Path(__file__).resolve().parents[2] / "clients" / "protocol" / "vectors"
SEQUENCES = [v for v in json.loads((VECTORS / "invalid.json").read_text())["vectors"] if v["kind"] == "ingest_sequence"]


def test_publisher_subscriber_control_against_the_service(start_service, tmp_path, zctx, rng):
    rs = start_service(ipc_cfg(tmp_path, workers=2))
    ep = rs.endpoints
    before = rs.service._pub.subscriptions
    with Subscriber(ep.publish, topics=["stream."], context=zctx) as sub, Control(ep.control, context=zctx) as ctl:
        # the service's XPUB has seen the subscription before the stream opens, so stream.open is not missed
        wait_for(lambda: rs.service._pub.subscriptions > before, 10.0, "the subscription")
        assert ctl.ping().rtt_s < 10
        with Publisher(
            "cam1.flow", modality="video", rate_hz=30.0, shape=(4, 8), dtype="f4", control=ep.control, context=zctx
        ) as pub:
            assert pub.endpoint in ep.ingest and pub.resume_seq == -1
            t, sent_samples, sent = 50.0, 0, 0
            for _ in range(30):
                n = int(rng.integers(0, 6))  # empty chunks included
                if pub.send(rng.standard_normal((n, 4, 8)), t_dev_s=t) is not None:
                    sent += 1
                    sent_samples += n
                t += n / 30.0
        ack = pub.close()
        assert (ack.received, ack.rejected, ack.last_seq) == (sent, 0, sent - 1)
        (row,) = [r for r in ctl.streams() if r["stream"] == "cam1.flow"]
        assert (row["chunks"], row["samples"], row["state"]) == (sent, sent_samples, "closed")
        seen_open = closed = None
        while closed is None:
            ev = sub.recv(timeout_s=10.0)
            assert ev is not None, "no closing stream.status event"
            if ev.event == "stream.open":
                seen_open = ev
            elif ev.event == "stream.status" and ev["closed"]:
                closed = ev
        assert seen_open is not None and seen_open["shape"] == [4, 8] and seen_open.stream == "cam1.flow"
        assert closed["chunks"] == sent and closed["samples"] == sent_samples and sub.skipped == 0
        # the stream resumes its numbering when it is opened again
        with Publisher(
            "cam1.flow", modality="video", rate_hz=30.0, shape=(4, 8), dtype="f4", control=ep.control, context=zctx
        ) as pub2:
            assert pub2.resume_seq == sent - 1
            assert pub2.send(np.zeros((1, 4, 8), np.float32), t_dev_s=t) == sent
        with pytest.raises(ProtocolError) as err:
            Publisher(
                "cam1.flow", modality="video", rate_hz=25.0, shape=(4, 8), dtype="f4", control=ep.control, context=zctx
            )
        assert err.value.reason == "reopen_mismatch"


@pytest.mark.parametrize("vector", SEQUENCES, ids=lambda v: v["name"])
def test_stateful_invalid_vector_is_rejected_by_the_service_with_its_reason(start_service, tmp_path, zctx, vector):
    rs = start_service(ipc_cfg(tmp_path))
    before = rs.service._pub.subscriptions
    with Subscriber(rs.endpoints.publish, topics=["stream.rejected"], context=zctx) as sub:
        # the service's XPUB has seen the subscription before anything is rejected (no sleep)
        wait_for(lambda: rs.service._pub.subscriptions > before, 10.0, "the subscription")
        push = rs.push()
        try:
            for msg in vector["messages"]:
                push.send_multipart([bytes.fromhex(h) for h in msg])
            ev = sub.recv(timeout_s=10.0)
        finally:
            push.close(linger=0)
    assert ev is not None, f"no stream.rejected event for {vector['name']}"
    assert ev["reason"] == vector["reason"]
