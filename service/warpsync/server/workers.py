"""Ingest workers: start, report, restart when one dies, stop with a drain.

A worker process gets two ipc sockets bound here in the service process (in a private temp directory):
``up`` (PULL here; the worker forwards batches on it) and ``down`` (PUSH here; commands to the worker).
Binding on this side means a restarted worker simply connects again to the same addresses. An inline worker
(``ingest.worker_mode = "inline"``) is a `Worker` object the service's event loop runs itself: commands go to
its queue, its batches come back from `Worker.collect`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace

import msgpack
import zmq

from ..errors import ConfigError
from ..ingest.config import IngestConfig, worker_endpoint
from ..ingest.worker import CMD_STOP, REC_HELLO, PayloadArena, Worker, WorkerSpec, worker_main

log = logging.getLogger(__name__)


@dataclass
class WorkerSlot:
    index: int
    spec: WorkerSpec
    up: zmq.Socket | None
    down: zmq.Socket | None
    process: mp.process.BaseProcess | None = None
    worker: Worker | None = None
    """The inline worker (``worker_mode = "inline"``)."""
    failed: bool = False
    """An inline worker raised out of `Worker.collect` (a bug): it is restarted like a dead process."""
    endpoint: str = ""
    """The address the worker actually bound (an ephemeral port resolved)."""
    alive: bool = False
    restarts: int = 0
    messages: int = 0
    bye: bool = False
    pending_restart_at: float | None = None
    blocked: object | None = field(default=None, repr=False)
    """A half-processed batch held while a ``block`` buffer is full (see `Service`)."""
    shm: object | None = field(default=None, repr=False)
    """The worker's shared-memory payload arena (created and unlinked here)."""
    arena: object | None = field(default=None, repr=False)
    """A uint8 view of `shm`."""
    generation: int = 0
    """Incremented at each (re)start: arena records of an earlier incarnation are not trusted."""
    release_word: object | None = field(default=None, repr=False)
    """The arena's header word the service writes `released` to (`SHARED_RELEASE`)."""
    released: int = 0
    """Arena byte count the service is done with (handed to the worker: `PayloadArena`)."""
    released_sent: int = 0

    @property
    def inbox(self) -> zmq.Socket:
        """The socket the service polls for this worker: its batches (``up``), or an inline worker's PULL."""
        sock = self.worker.pull if self.worker is not None else self.up
        assert sock is not None
        return sock


class WorkerPool:
    def __init__(self, ctx: zmq.Context, cfg: IngestConfig, reserved_ports: tuple[int, ...] = ()) -> None:
        """`reserved_ports`: the service's other TCP ports, which worker addresses skip (`worker_endpoint`)."""
        self.cfg = cfg
        self.ctx = ctx
        self._mp = mp.get_context("spawn")  # never fork a process that holds a ZeroMQ context
        self.inline = cfg.worker_mode == "inline"
        self.runtime_dir = "" if self.inline else tempfile.mkdtemp(prefix="warpsync-")
        self.slots: list[WorkerSlot] = []
        self.stopping = False
        try:
            for i in range(cfg.workers):
                up = down = None
                up_addr = down_addr = ""
                if not self.inline:
                    up = ctx.socket(zmq.PULL)
                    down = ctx.socket(zmq.PUSH)
                    for s in (up, down):
                        s.setsockopt(zmq.LINGER, 0)
                    up.setsockopt(zmq.RCVHWM, 64)
                    # a command waits (briefly) for a worker that is still connecting, e.g. just restarted
                    down.setsockopt(zmq.SNDTIMEO, 2000)
                    up_addr = f"ipc://{self.runtime_dir}/up{i}"
                    down_addr = f"ipc://{self.runtime_dir}/down{i}"
                    up.bind(up_addr)
                    down.bind(down_addr)
                spec = WorkerSpec(
                    index=i,
                    endpoint=worker_endpoint(cfg.endpoint, i, reserved_ports),
                    up=up_addr,
                    down=down_addr,
                    rcvhwm=cfg.rcvhwm,
                    max_message_bytes=cfg.max_message_bytes,
                    max_streams=cfg.max_streams,
                    nan_policy=cfg.nan_policy,
                    max_time_jump_s=cfg.max_time_jump_s,
                    batch_max_messages=cfg.batch_max_messages,
                )
                slot = WorkerSlot(i, spec, up, down)
                if cfg.shm_arena_bytes > 0 and not self.inline:
                    from multiprocessing import shared_memory

                    size = cfg.shm_arena_bytes
                    slot.shm = shared_memory.SharedMemory(create=True, size=PayloadArena.shm_bytes(size))
                    slot.arena, slot.release_word = PayloadArena.views(slot.shm.buf, size)
                    slot.spec = replace(spec, arena=slot.shm.name, arena_bytes=cfg.shm_arena_bytes)
                self.slots.append(slot)
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------------------------------------- lifecycle
    def _spawn(self, slot: WorkerSlot) -> None:
        slot.bye = False
        slot.alive = False
        slot.generation += 1
        slot.released = slot.released_sent = 0
        if slot.release_word is not None:
            slot.release_word[0] = 0
        slot.spec = replace(slot.spec, generation=slot.generation)
        if self.inline:
            slot.failed = False
            slot.worker = Worker(slot.spec, self.ctx, inline=True)
            try:
                endpoint, error = slot.worker.bind(), None
            except zmq.ZMQError as exc:
                endpoint, error = slot.spec.endpoint, str(exc)
            self.hello(slot, [REC_HELLO, slot.index, endpoint, os.getpid(), error])
            return
        p = self._mp.Process(target=worker_main, args=(slot.spec,), name=f"warpsync-ingest-{slot.index}", daemon=True)
        p.start()
        slot.process = p

    def start(self, timeout_s: float = 60.0) -> None:
        """Start every worker and wait until each has bound its PULL socket. A bind error raises."""
        for slot in self.slots:
            self._spawn(slot)
        if self.inline:
            return
        deadline = time.monotonic() + timeout_s
        poller = zmq.Poller()
        for slot in self.slots:
            poller.register(slot.up, zmq.POLLIN)
        waiting = {slot.index for slot in self.slots}
        while waiting:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise ConfigError(f"ingest workers {sorted(waiting)} did not start within {timeout_s} s")
            for sock, _ in poller.poll(min(left_ms, 200)):
                slot = next(s for s in self.slots if s.up is sock)
                rec = msgpack.unpackb(sock.recv(), raw=False)[0]
                if rec[0] != REC_HELLO:  # nothing else can come before the hello
                    continue
                self.hello(slot, rec)
                waiting.discard(slot.index)
            for slot in self.slots:
                if slot.index in waiting and slot.process is not None and slot.process.exitcode is not None:
                    raise ConfigError(f"ingest worker {slot.index} exited with code {slot.process.exitcode} at start")

    def hello(self, slot: WorkerSlot, rec: list) -> None:
        """Handle a worker's hello record ``[HELLO, index, endpoint, pid, error]``."""
        _, _, endpoint, pid, error = rec
        if error:
            raise ConfigError(
                f"ingest worker {slot.index} cannot bind {endpoint}: {error}; "
                "choose another address with --ingest or [ingest] endpoint"
            )
        slot.endpoint = endpoint
        # a restarted worker must come back on the same address, even if it was an ephemeral port
        slot.spec = _with_endpoint(slot.spec, endpoint)
        slot.alive = True
        log.info("ingest worker %d (pid %d) listening on %s", slot.index, pid, endpoint)

    def dead(self) -> list[WorkerSlot]:
        """Workers whose process has exited unexpectedly, or inline workers that failed (not while stopping)."""
        if self.stopping:
            return []
        if self.inline:
            return [s for s in self.slots if s.failed and s.alive]
        return [s for s in self.slots if s.process is not None and s.process.exitcode is not None and s.alive]

    def restart(self, slot: WorkerSlot) -> None:
        """Start a dead worker again on its address. An inline one is up again when this returns (its hello
        handled here: the caller gives it back its streams)."""
        if self.inline:
            log.error("inline ingest worker %d failed; restarting it on %s", slot.index, slot.endpoint)
            if slot.worker is not None:
                slot.worker.close()
                slot.worker = None
            slot.restarts += 1
            try:
                self._spawn(slot)
            except ConfigError as exc:  # its address was taken meanwhile: stays down, said once
                log.error("%s", exc)
            return
        code = slot.process.exitcode if slot.process is not None else None
        log.error("ingest worker %d died (exit code %s); restarting it on %s", slot.index, code, slot.endpoint)
        if slot.process is not None:
            slot.process.join(timeout=1)
        slot.restarts += 1
        self._spawn(slot)

    def owner(self, stream: str) -> int:
        """The worker a new control-opened stream is assigned to (stable across runs)."""
        import zlib

        return zlib.crc32(stream.encode()) % len(self.slots)

    def send(self, index: int, cmd: list) -> None:
        slot = self.slots[index]
        if slot.worker is not None:
            slot.worker.commands.append(cmd)
            return
        assert slot.down is not None
        try:
            slot.down.send(msgpack.packb(cmd))
        except zmq.Again:
            log.warning("ingest worker %d is not taking commands; dropped %r", index, cmd[:1])

    def request_stop(self) -> None:
        """Tell every worker to drain and stop. An inline worker is drained by the service's loop, which sets
        its `bye` once its socket is empty."""
        self.stopping = True
        if self.inline:
            return
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                self.send(slot.index, [CMD_STOP])
            else:
                slot.bye = True

    def process_pids(self) -> dict[int, int]:
        """{worker index: pid} of worker processes the pool counts as up (none for inline workers). Reads only
        attributes: it is called from the metrics thread, which must not reap a process (``exitcode``)."""
        return {s.index: s.process.pid for s in self.slots if s.process is not None and s.alive and s.process.pid}

    def all_gone(self) -> bool:
        if self.inline:
            return all(s.bye or not s.alive for s in self.slots)
        return all(s.bye or s.process is None or s.process.exitcode is not None for s in self.slots)

    def close(self) -> None:
        for slot in self.slots:
            if slot.worker is not None:
                slot.worker.close()
                slot.worker = None
            p = slot.process
            if p is not None:
                p.join(timeout=5)
                if p.exitcode is None:
                    log.warning("ingest worker %d did not stop; terminating it", slot.index)
                    p.terminate()
                    p.join(timeout=5)
                    if p.exitcode is None:
                        p.kill()
                        p.join(timeout=5)
            if slot.up is not None and slot.down is not None:
                slot.up.close(linger=0)
                slot.down.close(linger=0)
            if slot.shm is not None:
                slot.arena = slot.release_word = None
                try:
                    slot.shm.close()
                except BufferError:  # a view is still alive somewhere: unlink anyway, memory goes with it
                    log.debug("arena of worker %d still referenced at close", slot.index)
                slot.shm.unlink()
                slot.shm = None
        if self.runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def _with_endpoint(spec: WorkerSpec, endpoint: str) -> WorkerSpec:
    return replace(spec, endpoint=endpoint)
