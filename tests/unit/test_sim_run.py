"""The simulator's socket shell against the client library's FakeService (real sockets, ephemeral ports), and
the offline replay into a Stage."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from warpsync.sim import ImuConfig, MicConfig, NetworkConfig, RigConfig, Simulator
from warpsync.sim.run import SendLog, attach_latency, publish_rig, replay_offline
from warpsync.stage import Event
from warpsync_client.testing import FakeService


def _rig(duration_s: float = 3.0) -> RigConfig:
    return RigConfig(
        name="tiny",
        seed=11,
        duration_s=duration_s,
        mics=(MicConfig(name="m", rate_hz=8000.0, chunk_samples=160),),
        imus=(
            ImuConfig(
                name="i", rate_hz=200.0, chunk_samples=10, network=NetworkConfig(restart_at_s=1.0, restart_gap_s=0.3)
            ),
        ),
    )


def test_publish_fast_sends_every_chunk_and_reconnects_after_a_restart(zctx):
    rig = _rig()
    expected: dict[str, list] = {}
    for c in Simulator(rig).chunks():
        expected.setdefault(c.stream, []).append(c)
    log = SendLog()
    with FakeService(zctx) as svc:
        res = publish_rig(rig, svc.control_endpoint, realtime=False, context=zctx, send_log=log)
        assert svc.wait_for(lambda s: all(s.streams[k].closed_seq is not None for k in ("m", "i")))
        for sid, chunks in expected.items():
            got = svc.streams[sid].chunks
            assert [t for _, t, _, _ in got] == [c.t_dev_s for c in chunks]
            assert [s for s, _, _, _ in got] == list(range(len(chunks)))  # contiguous across the reconnect
            np.testing.assert_array_equal(np.frombuffer(got[-1][3], "<f4"), chunks[-1].samples.ravel())
        assert svc.requests.count("open") == 3  # m, i, and i again after its restart
        assert not svc.rejected
    assert res.restarts == 1 and res.chunks == {k: len(v) for k, v in expected.items()}
    last = expected["m"][-1]
    assert log.sent_at("m", last.t_dev_s + 0.001) is not None
    assert log.sent_at("m", last.t_dev_s + 10.0) is None


def test_publish_realtime_paces_on_arrival_times_and_stops_on_request(zctx):
    rig = _rig(duration_s=30.0)
    stop = threading.Event()
    seen = []
    with FakeService(zctx) as svc:
        timer = threading.Timer(0.8, stop.set)
        timer.start()
        t = time.time()
        res = publish_rig(
            rig,
            svc.control_endpoint,
            realtime=True,
            stop_event=stop,
            context=zctx,
            on_start=lambda truth: seen.append(truth.t0_host_s),
        )
        wall = time.time() - t
        timer.cancel()
        assert svc.wait_for(lambda s: s.streams["m"].closed_seq is not None)
        n = svc.streams["m"].received
    assert res.stopped
    assert 0.7 < wall < 5.0  # paced: 30 s of signal were not sent in 0.8 s
    # about 0.6 s of 20 ms chunks (scene time starts 0.2 s after the call)
    assert 10 <= n <= 45
    assert seen and seen[0] == res.truth.t0_host_s


class _EchoStage:
    """A Stage that reports, for each chunk, the true offset plus a fixed error (to check the replay wiring)."""

    name = "echo"

    def __init__(self, truth, err_s: float) -> None:
        self.truth = truth
        self.err_s = err_s
        self.opens: list[str] = []

    def open(self, meta, now_s):
        self.opens.append(meta.stream)
        return []

    def samples(self, meta, chunk):
        st = self.truth.stream(chunk.stream)
        t_end = chunk.t_dev_s + len(chunk.data) / meta.rate_hz
        t_ref = self.truth.t0_host_s + st.scene_time(t_end)
        off = self.truth.offset_at(chunk.stream, t_ref)
        return [
            Event(
                "sync.offset",
                chunk.stream,
                {
                    "t_s": t_ref,
                    "t_local_s": t_end,
                    "offset_s": off + self.err_s,
                    "drift_ppm": self.truth.drift_ppm_of(chunk.stream),
                    "method": "clock",
                    "settled": True,
                    "reference": "host",
                },
            )
        ]

    def close(self, stream, now_s):
        return []

    def tick(self, now_s):
        return []


def test_replay_offline_feeds_a_stage_and_models_latency():
    from warpsync.sim.score import score

    sim = Simulator(_rig(duration_s=4.0))
    stage = _EchoStage(sim.truth, 0.0004)
    events = []
    stats = replay_offline(sim, stage, on_events=lambda evs, now: events.extend(evs))
    assert sorted(stage.opens) == ["i", "i", "m"]  # the restarted IMU re-opens
    assert stats["simulated_s"] > 3.5 and stats["compute_s"] > 0
    assert all(e["latency_s"] >= 0 for e in events)
    card = score(sim.truth, events)
    assert card.streams["m"].p95_s == pytest.approx(0.0004, abs=1e-6)
    assert card.latency_p99_s is not None


def test_attach_latency_upper_bound_from_truth():
    truth = Simulator(_rig(), t0_host_s=100.0).truth
    st = truth.stream("m")
    ev = {"event": "sync.offset", "stream": "m", "t_s": 101.0, "reference": "host", "recv_s": 101.5}
    attach_latency([ev], truth)
    assert ev["latency_s"] == pytest.approx(0.5 - st.delay_s)


def test_the_collector_stamps_each_events_send_time_on_receipt_which_a_long_run_would_have_rolled_out(zctx):
    """The send log keeps a bounded number of chunks per stream: the chunk an event names is looked up as the
    event arrives, so its latency is still receipt minus send time after the log has moved on."""
    from warpsync.sim.run import EventCollector
    from warpsync_client import protocol as P

    truth = Simulator(_rig(), t0_host_s=100.0).truth
    log = SendLog(maxlen=2)
    log.note("m", 1.00, 1.02, 200.0)
    pub = zctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    coll = EventCollector(f"tcp://127.0.0.1:{port}", context=zctx, send_log=log).start()
    try:
        body = {"t_s": 101.0, "t_local_s": 1.01, "reference": "host"}
        deadline = time.monotonic() + 10
        while not coll.events and time.monotonic() < deadline:  # the subscription reaches the PUB
            pub.send_multipart(P.encode_event("sync.offset", body, stream="m"))
            time.sleep(0.05)
    finally:
        events = coll.stop()
        pub.close(linger=0)
    assert events and events[0]["sent_s"] == 200.0
    log.note("m", 1.02, 1.04, 200.02)
    log.note("m", 1.04, 1.06, 200.04)  # the event's chunk is out of the log now
    assert log.sent_at("m", 1.01) is None
    attach_latency(events[:1], truth, log)
    assert events[0]["latency_s"] == pytest.approx(events[0]["recv_s"] - 200.0)


_FIRST_CHUNK = r"""
import json, threading
from warpsync.sim import MicConfig, RigConfig, Simulator, scene
from warpsync.sim.run import publish_rig

rig = RigConfig(name="tiny", seed=3, duration_s=1.0, mics=(MicConfig(name="m", rate_hz=8000.0, chunk_samples=160),))
stop = threading.Event()
got = {}

def on_start(truth):
    got["at_start"] = sorted(map(str, scene._sound_kernel.signatures))
    stop.set()

publish_rig(rig, "tcp://127.0.0.1:9", stop_event=stop, on_start=on_start)
for _ in Simulator(rig).chunks(1.0):
    pass
got["after"] = sorted(map(str, scene._sound_kernel.signatures))
print(json.dumps(got))
"""


def test_the_sound_kernel_is_compiled_before_scene_time_0_is_fixed():
    """numba compiles on first use (1.4 s on a fresh install here): if that were the first chunk's rendering, the
    live rig's first chunks would leave that late, and clocks took it for a jump. In a fresh process the kernel
    is compiled, with the types the rendering uses, by the time `publish_rig` fixes scene time 0."""
    import json
    import subprocess
    import sys

    run = subprocess.run(  # noqa: PLW1510  the test checks returncode itself
        [sys.executable, "-c", _FIRST_CHUNK], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["at_start"] and got["after"] == got["at_start"]
