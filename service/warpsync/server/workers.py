"""Ingest workers (processes or threads): start, report, restart when one dies, stop with a drain.

Each worker gets two sockets bound here in the service process: ``up`` (PULL here; the worker forwards
batches on it) and ``down`` (PUSH here; commands to the worker); ipc addresses in a private temp directory
for worker processes, inproc addresses for worker threads. Binding on this side means a restarted worker
simply connects again to the same addresses.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import itertools
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace

import msgpack
import zmq

from ..errors import ConfigError
from ..ingest.config import IngestConfig, worker_endpoint
from ..ingest.worker import CMD_STOP, REC_HELLO, PayloadArena, WorkerSpec, worker_main, worker_thread_main

log = logging.getLogger(__name__)
_pool_ids = itertools.count()


class WorkerThread:
    """A worker thread, with the part of `multiprocessing.Process`'s interface the pool uses. `exitcode` is
    ``None`` while it runs, 0 once it returned, 1 when it died of an exception (logged)."""

    def __init__(self, spec: WorkerSpec, ctx: zmq.Context) -> None:
        self.pid = os.getpid()
        self.exitcode: int | None = None
        self._thread = threading.Thread(
            target=self._main, args=(spec, ctx), name=f"warpsync-ingest-{spec.index}", daemon=True
        )

    def _main(self, spec: WorkerSpec, ctx: zmq.Context) -> None:
        code = 1
        try:
            worker_thread_main(spec, ctx)
            code = 0
        except BaseException:
            log.exception("ingest worker thread %d died", spec.index)
        finally:
            self.exitcode = code

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def terminate(self) -> None:
        """A thread cannot be killed: one still running at exit ends when the context terminates."""

    kill = terminate


@dataclass
class WorkerSlot:
    index: int
    spec: WorkerSpec
    up: zmq.Socket
    down: zmq.Socket
    process: mp.process.BaseProcess | WorkerThread | None = None
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


class WorkerPool:
    def __init__(self, ctx: zmq.Context, cfg: IngestConfig, reserved_ports: tuple[int, ...] = ()) -> None:
        """`reserved_ports`: the service's other TCP ports, which worker addresses skip (`worker_endpoint`)."""
        self.cfg = cfg
        self.ctx = ctx
        self._mp = mp.get_context("spawn")  # never fork a process that holds a ZeroMQ context
        self.threads = cfg.worker_mode == "thread"
        self.runtime_dir = "" if self.threads else tempfile.mkdtemp(prefix="warpsync-")
        pool_id = next(_pool_ids)
        self.slots: list[WorkerSlot] = []
        self.stopping = False
        try:
            for i in range(cfg.workers):
                up = ctx.socket(zmq.PULL)
                down = ctx.socket(zmq.PUSH)
                for s in (up, down):
                    s.setsockopt(zmq.LINGER, 0)
                up.setsockopt(zmq.RCVHWM, 64)
                # a command waits (briefly) for a worker that is still connecting, e.g. just restarted
                down.setsockopt(zmq.SNDTIMEO, 2000)
                if self.threads:  # unique within this process's context
                    up_addr = f"inproc://warpsync-{os.getpid()}-{pool_id}-up{i}"
                    down_addr = f"inproc://warpsync-{os.getpid()}-{pool_id}-down{i}"
                else:
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
                if cfg.shm_arena_bytes > 0 and not self.threads:
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
        p: mp.process.BaseProcess | WorkerThread
        if self.threads:
            p = WorkerThread(slot.spec, self.ctx)
        else:
            p = self._mp.Process(
                target=worker_main, args=(slot.spec,), name=f"warpsync-ingest-{slot.index}", daemon=True
            )
        p.start()
        slot.process = p

    def start(self, timeout_s: float = 60.0) -> None:
        """Start every worker and wait until each has bound its PULL socket. A bind error raises."""
        for slot in self.slots:
            self._spawn(slot)
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
        """Workers whose process has exited unexpectedly (not while stopping)."""
        if self.stopping:
            return []
        return [s for s in self.slots if s.process is not None and s.process.exitcode is not None and s.alive]

    def restart(self, slot: WorkerSlot) -> None:
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
        try:
            self.slots[index].down.send(msgpack.packb(cmd))
        except zmq.Again:
            log.warning("ingest worker %d is not taking commands; dropped %r", index, cmd[:1])

    def request_stop(self) -> None:
        self.stopping = True
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                self.send(slot.index, [CMD_STOP])
            else:
                slot.bye = True

    def all_gone(self) -> bool:
        return all(s.bye or s.process is None or s.process.exitcode is not None for s in self.slots)

    def close(self) -> None:
        for slot in self.slots:  # threads still running (a start that failed half way): tell them to stop
            if self.threads and slot.process is not None and slot.process.is_alive() and not self.stopping:
                self.send(slot.index, [CMD_STOP])
        for slot in self.slots:
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
