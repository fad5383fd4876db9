"""Publisher and Control over real sockets, against the in-process FakeService (warpsync_client.testing)."""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from warpsync_client import BackpressureError, Control, ProtocolError, Publisher, ServiceTimeout, StreamMeta
from warpsync_client.control import RESEND_S
from warpsync_client.protocol import encode_reply
from warpsync_client.testing import FakeService


@pytest.fixture
def svc(zctx):
    with FakeService(zctx) as s:
        yield s


def _pub(svc, zctx, stream="mic1", **kw):
    kw.setdefault("modality", "audio")
    kw.setdefault("rate_hz", 16000.0)
    return Publisher(stream, control=svc.control_endpoint, context=zctx, timeout_s=2.0, **kw)


def test_chunks_arrive_in_order_with_random_sizes_and_close_is_acknowledged(svc, zctx, rng):
    sent = []
    with _pub(svc, zctx, channels=2, dtype="i2") as pub:
        assert pub.seq == 0 and pub.resume_seq == -1
        t = 100.0
        for _ in range(40):
            n = int(rng.integers(0, 50))  # empty chunks included: they are not sent
            block = rng.integers(-30000, 30000, size=(n, 2)).astype(np.int16)
            seq = pub.send(block, t_dev_s=t)
            if n == 0:
                assert seq is None
            else:
                sent.append((seq, t, n, block.tobytes()))
            t += n / 16000.0
    ack = pub.close()  # idempotent after the with-block closed it
    assert ack.received == len(sent) and ack.rejected == 0
    got = svc.streams["mic1"].chunks
    assert got == sent
    assert [c[0] for c in got] == list(range(len(sent)))
    assert pub.closed


def test_zero_copy_round_trip_of_a_1_mib_array(svc, zctx, rng):
    frame = rng.standard_normal((256, 1024)).astype(np.float32)  # 1 MiB: 256 samples of 1024 features
    assert frame.nbytes == 1 << 20
    with _pub(svc, zctx, stream="cam1", modality="video", rate_hz=30.0, shape=(1024,), dtype="f4") as pub:
        seq = pub.send(frame, t_dev_s=1.5)
        assert len(pub._trackers) == 1, "a 1 MiB array must go out zero-copy (tracked), not copied"
        assert pub.wait_sent(timeout_s=5.0)
        pub.send(frame[:2], t_dev_s=2.0)  # 8 KiB: below the threshold, copied, not tracked
        assert len(pub._trackers) == 0
    (s0, t0, n0, data0), (_, _, n1, data1) = svc.streams["cam1"].chunks
    assert (s0, t0, n0, n1) == (seq, 1.5, 256, 2)
    np.testing.assert_array_equal(np.frombuffer(data0, np.float32).reshape(256, 1024), frame)
    np.testing.assert_array_equal(np.frombuffer(data1, np.float32).reshape(2, 1024), frame[:2])


def test_seq_continues_from_the_services_resume_seq(zctx, rng):
    with FakeService(zctx, resume={"imu": 41}) as svc:
        with _pub(svc, zctx, stream="imu", modality="sensor", rate_hz=200.0, shape=(3,)) as pub:
            assert pub.resume_seq == 41 and pub.seq == 42
            pub.send(rng.standard_normal((5, 3)), t_dev_s=0.0)  # float64 is cast to the stream's f4
            pub.send(rng.standard_normal((5, 3)), t_dev_s=0.025)
            assert pub.last_seq == 43
        # a reconnecting publisher of the same stream continues where the service is
        with _pub(svc, zctx, stream="imu", modality="sensor", rate_hz=200.0, shape=(3,)) as pub2:
            assert pub2.resume_seq == 43
            assert pub2.send(np.zeros(3, np.float32), t_dev_s=0.05) == 44  # one sample of shape (3,)
        assert [c[0] for c in svc.streams["imu"].chunks] == [42, 43, 44]
        assert svc.rejected == {}


def test_reopen_with_different_metadata_is_refused(svc, zctx):
    with _pub(svc, zctx, channels=2, dtype="i2"):
        pass
    with pytest.raises(ProtocolError) as err:
        _pub(svc, zctx, channels=1, dtype="i2")
    assert err.value.reason == "reopen_mismatch"


def test_text_stream(svc, zctx):
    with _pub(svc, zctx, stream="captions", modality="text", rate_hz=0.0) as pub:
        assert pub.meta.dtype == "utf8"
        pub.send("hello wörld", t_dev_s=3.0, duration_s=0.8)
        assert pub.send("", t_dev_s=4.0) is None
        with pytest.raises(ProtocolError) as err:
            pub.send(np.zeros(3), t_dev_s=4.0)
        assert err.value.reason == "bad_text"
    assert svc.streams["captions"].chunks == [(0, 3.0, 1, "hello wörld")]


@pytest.mark.parametrize(
    "samples, reason",
    [
        (np.zeros((4, 3), np.int16), "bad_shape"),  # stream has 2 channels
        (np.zeros((4, 2), np.int64), "bad_dtype"),  # int64 -> i2 is not safe: refused
        (np.zeros((4, 2), np.float32), "bad_dtype"),  # float -> int is never implicit
    ],
)
def test_bad_samples_are_refused_before_sending(svc, zctx, samples, reason):
    with _pub(svc, zctx, channels=2, dtype="i2") as pub:
        with pytest.raises(ProtocolError) as err:
            pub.send(samples, t_dev_s=0.0)
        assert err.value.reason == reason
        with pytest.raises(ProtocolError) as err:
            pub.send(np.zeros((1, 2), np.int16), t_dev_s=float("nan"))
        assert err.value.reason == "bad_timestamp"
        assert pub.seq == 0
        pub.send(np.zeros((1, 2), np.uint8), t_dev_s=0.0)  # u1 -> i2 is safe: cast
    assert svc.streams["mic1"].received == 1


def test_bad_metadata_is_refused_locally(zctx):
    with pytest.raises(ProtocolError) as err:  # no socket is ever needed for this
        Publisher("bad id!", modality="audio", rate_hz=100.0, control="tcp://127.0.0.1:1", context=zctx)
    assert err.value.reason == "bad_stream_id"
    with pytest.raises(ProtocolError) as err:
        Publisher("a", modality="audio", rate_hz=0.0, control="tcp://127.0.0.1:1", context=zctx)
    assert err.value.reason == "bad_rate"


def test_backpressure_raises_within_the_send_timeout(zctx):
    with FakeService(zctx, read_ingest=False, rcvhwm=4) as svc:
        pub = _pub(
            svc,
            zctx,
            stream="fast",
            modality="sensor",
            rate_hz=1000.0,
            shape=(4096,),
            dtype="u1",
            sndhwm=4,
            send_timeout_s=0.2,
        )
        try:
            block = np.zeros((4, 4096), np.uint8)  # 16 KiB, copied
            for i in range(20000):
                t0 = time.monotonic()
                try:
                    pub.send(block, t_dev_s=float(i))
                except BackpressureError as exc:
                    waited = time.monotonic() - t0
                    assert "fast" in str(exc) and "not sent" in str(exc)
                    break
            else:
                pytest.fail("20000 x 16 KiB chunks into a PULL that never reads never blocked")
            assert 0.15 <= waited < 2.0
            assert pub.seq == i  # the refused chunk did not use a seq
        finally:
            pub.abort()


def test_close_timeout_when_the_service_never_acknowledges(zctx):
    with FakeService(zctx, ack_close=False) as svc:
        pub = _pub(svc, zctx, stream="s", modality="sensor", rate_hz=10.0)
        pub.send(np.ones(3, np.float32), t_dev_s=0.0)
        t0 = time.monotonic()
        with pytest.raises(ServiceTimeout):
            pub.close(timeout_s=0.3)
        assert time.monotonic() - t0 < 2.0
        assert pub.closed
        assert svc.wait_for(lambda s: s.streams["s"].received == 1)


def test_control_commands(svc, zctx):
    with Control(svc.control_endpoint, context=zctx, timeout_s=2.0) as ctl:
        before = time.time()
        pong = ctl.ping()
        assert before - 1 <= pong.t_host_s <= time.time() + 1 and 0 <= pong.rtt_s < 2
        assert ctl.status()["streams"] == 0
        opened = ctl.open(StreamMeta("acc", "sensor", 100.0, (3,), "f4"))
        assert opened.endpoint == svc.ingest_endpoint and opened.resume_seq == -1
        assert [s["stream"] for s in ctl.streams()] == ["acc"]
        assert ctl.close("acc", -1, timeout_s=1.0).received == 0
        with pytest.raises(ProtocolError) as err:
            ctl.request("reboot")
        assert err.value.reason == "unknown_command"
        with pytest.raises(ProtocolError) as err:
            ctl.close("nope", 3)
        assert err.value.reason == "unknown_stream"


def test_control_times_out_and_drops_the_late_reply(zctx):
    router = zctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    got: list[int] = []
    failure: list[BaseException] = []

    def serve() -> None:  # read two requests, then answer the first (late) and the second, in that order
        try:
            reqs = []
            while len(reqs) < 2 and router.poll(5000):
                reqs.append(router.recv_multipart())
            for ident, body in reqs:
                rid = msgpack.unpackb(body)["id"]
                got.append(rid)
                router.send_multipart([ident, encode_reply(rid, {"t_host_s": float(rid)})])
        except BaseException as exc:  # noqa: BLE001  surfaced by the test after join
            failure.append(exc)

    th = threading.Thread(target=serve)
    th.start()
    try:
        with Control(f"tcp://127.0.0.1:{port}", context=zctx, timeout_s=0.2) as ctl:
            with pytest.raises(ServiceTimeout, match="no reply to 'ping'"):
                ctl.ping()
            assert ctl.ping(timeout_s=5.0).t_host_s == 2.0  # the reply to request 1 was skipped
    finally:
        th.join(10)
        router.close(linger=0)
    assert not failure and got == [1, 2]


def test_wildcard_endpoint_is_resolved_to_the_control_host():
    from warpsync_client.control import resolve_endpoint

    assert resolve_endpoint("tcp://0.0.0.0:5555", "tcp://10.1.2.3:5557") == "tcp://10.1.2.3:5555"
    assert resolve_endpoint("tcp://*:5555", "tcp://host.lan:5557") == "tcp://host.lan:5555"
    assert resolve_endpoint("tcp://192.168.0.4:5555", "tcp://10.1.2.3:5557") == "tcp://192.168.0.4:5555"
    assert resolve_endpoint("ipc:///tmp/x", "tcp://10.1.2.3:5557") == "ipc:///tmp/x"


def test_unusable_or_silent_control_endpoints_fail_clearly_without_leaking_sockets(zctx):
    with pytest.raises(ValueError, match="cannot connect to control endpoint"):
        Publisher("a", modality="sensor", rate_hz=1.0, control="nonsense://x", context=zctx)
    t0 = time.monotonic()
    with pytest.raises(ServiceTimeout, match="is `warpsync serve` running"):
        Publisher("a", modality="sensor", rate_hz=1.0, control="tcp://127.0.0.1:1", context=zctx, timeout_s=0.2)
    assert time.monotonic() - t0 < 2.0
    # the zctx fixture fails the test if either attempt left a socket open


def test_reopen_after_a_service_restart_keeps_numbering(zctx, tmp_path):
    ctl, ing = f"ipc://{tmp_path}/ctl", f"ipc://{tmp_path}/ing"
    with FakeService(zctx, control_endpoint=ctl, ingest_endpoint=ing) as svc1:
        pub = _pub(svc1, zctx, stream="s", modality="sensor", rate_hz=10.0)
        for i in range(3):
            pub.send(np.ones(2, np.float32), t_dev_s=float(i))
        assert svc1.wait_for(lambda s: s.streams["s"].received == 3)
    try:
        # a restarted service that lost the stream (resume_seq -1): numbering continues from this publisher
        with FakeService(zctx, control_endpoint=ctl, ingest_endpoint=ing) as svc2:
            assert pub.reopen() == 3
            assert pub.send(np.ones(1, np.float32), t_dev_s=3.0) == 3
            assert svc2.wait_for(lambda s: s.streams["s"].received == 1)
            assert svc2.streams["s"].chunks[0][0] == 3
        # one that holds a later seq: numbering continues from the service's
        with FakeService(zctx, control_endpoint=ctl, resume={"s": 10}) as svc3:  # ingest moved elsewhere
            assert pub.reopen() == 11 and pub.endpoint == svc3.ingest_endpoint != ing
            assert pub.send(np.ones(1, np.float32), t_dev_s=4.0) == 11
            ack = pub.close()
            assert (ack.received, ack.last_seq) == (1, 11)
    finally:
        pub.abort()  # no-op after a successful close


def test_a_lost_control_request_is_sent_again(zctx, tmp_path):
    """A request queued on a dead connection (a service restarting) is lost; the client sends it again."""
    endpoint = f"ipc://{tmp_path}/ctl"
    router = zctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    seen: list[int] = []

    def serve() -> None:
        while len(seen) < 2 and router.poll(5000):
            ident, req = router.recv_multipart()
            seen.append(msgpack.unpackb(req)["id"])
            if len(seen) == 2:  # the first copy is "lost": only the second is answered
                router.send_multipart([ident, encode_reply(seen[-1], {"t_host_s": 1.0})])

    th = threading.Thread(target=serve)
    th.start()
    ctl = Control(endpoint, context=zctx, timeout_s=3 * RESEND_S)
    try:
        assert ctl.ping().t_host_s == 1.0
    finally:
        th.join(10)
        ctl.disconnect()
        router.close(linger=0)
    assert len(seen) == 2 and seen[0] == seen[1]  # the same request (same id), sent twice
