"""Benchmark worker processes: one contender each, driven by the parent."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import random
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from zkflock._bench.contenders import CONTENDERS, Contender
from zkflock._bench.extra import make_extra

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig

_CTX = mp.get_context("fork")
_run_ids = itertools.count(1)


# -- the worker process -------------------------------------------------------


def _batch(contender: Contender, cycles: int) -> dict[str, Any]:
    """``cycles`` uncontended acquire+release cycles: latencies and CPU time."""
    lat = []
    cpu0 = time.process_time()
    for _ in range(cycles):
        t0 = time.perf_counter_ns()
        contender.acquire()
        contender.release()
        lat.append(time.perf_counter_ns() - t0)
    return {"lat_ns": lat, "cpu_s": time.process_time() - cpu0}


def _loop(contender: Contender, until: float, shared: Any) -> dict[str, Any]:
    """Contend until ``until`` (monotonic, shared by all workers); record every
    grant as (grant order, token, time). ``shared`` = [grant counter, holder]."""
    grants = []
    overlaps = 0
    me = os.getpid()
    wakes0 = contender.wakes
    while time.monotonic() < until:
        token = contender.acquire()
        now = time.monotonic()
        # We hold the lock, so nobody else touches these: a second holder
        # would show up here as an overlap.
        if shared[1] != 0:
            overlaps += 1
        shared[1] = me
        shared[0] += 1
        grants.append((int(shared[0]), token, now))
        shared[1] = 0
        contender.release()
    return {"grants": grants, "overlaps": overlaps, "wakes": contender.wakes - wakes0}


def make_contender(kind: str, hosts: str, name: str) -> Contender:
    """A contender by kind; ``many``/``fenced`` kinds live in ``extra``."""
    if kind in CONTENDERS:
        return CONTENDERS[kind](hosts, name)
    return make_extra(kind, hosts, name)


def _serve(conn: Connection, kind: str, hosts: str, name: str, shared: Any) -> None:
    contender = make_contender(kind, hosts, name)
    try:
        conn.send(("ready", os.getpid()))
        while True:
            cmd, arg = conn.recv()
            if cmd == "batch":
                conn.send(("ok", _batch(contender, int(arg))))
            elif cmd == "loop":
                conn.send(("ok", _loop(contender, float(arg), shared)))
            else:
                return
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{kind} worker failed: {type(exc).__name__}: {exc}"))
    finally:
        contender.close()


class Worker:
    """A contender in its own process, driven over a pipe."""

    def __init__(self, kind: str, hosts: str, name: str, shared: Any = None) -> None:
        self.kind = kind
        self._conn, child = _CTX.Pipe()
        self._proc = _CTX.Process(
            target=_serve, args=(child, kind, hosts, name, shared), daemon=True
        )
        self._proc.start()
        child.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._reply(timeout)

    def send(self, cmd: str, arg: float) -> None:
        self._conn.send((cmd, arg))

    def result(self, timeout: float = 300.0) -> dict[str, Any]:
        return dict(self._reply(timeout))

    def _reply(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise RuntimeError(f"{self.kind} worker did not answer within {timeout} s")
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(value)
        return value

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("stop", 0))
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()


def start_workers(specs: list[tuple[str, str]], hosts: str, shared: Any = None) -> list[Worker]:
    """Start one worker per (kind, lock name) and wait until each is connected."""
    workers: list[Worker] = []
    try:
        for kind, name in specs:
            workers.append(Worker(kind, hosts, name, shared))
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        worker.stop()


def shared_counters() -> Any:
    """[grant counter, current holder pid] in shared memory, for the loop."""
    return _CTX.Array("q", 2, lock=False)


# -- helpers of the scenarios ---------------------------------------------------


def unique_name(what: str) -> str:
    return f"bench-{int(time.time())}-{next(_run_ids)}/{what}"


def interleaved(workers: list[Worker], cfg: BenchConfig) -> dict[str, Any]:
    """Warm every worker up, then ``rounds`` rounds of one batch each."""
    for worker in workers:
        worker.send("batch", cfg.warmup)
    for worker in workers:
        worker.result()
    out: dict[str, Any] = {w.kind: {"lat_ns": [], "cpu_per_cycle_s": []} for w in workers}
    for _ in range(cfg.rounds):
        for worker in random.sample(workers, len(workers)):
            worker.send("batch", cfg.batch)
            res = worker.result()
            out[worker.kind]["lat_ns"].extend(res["lat_ns"])
            out[worker.kind]["cpu_per_cycle_s"].append(res["cpu_s"] / cfg.batch)
    return out
