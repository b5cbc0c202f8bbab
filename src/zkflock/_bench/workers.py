"""Benchmark worker processes: one contender each, driven by the parent."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import random
import statistics
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


MAX_ERRORS = 10  # failed cycles (a lost connection) a worker survives per command


def _failed(errors: int) -> int:
    """Count one failed cycle, re-raising past ``MAX_ERRORS``: on a loaded
    2-core machine an ensemble node may drop its clients once in a long run
    (raw kazoo calls do not retry), which should not end the whole run."""
    if errors >= MAX_ERRORS:
        raise  # the exception being handled by our caller
    time.sleep(0.5)
    return errors + 1


def _batch(contender: Contender, cycles: int) -> dict[str, Any]:
    """``cycles`` uncontended acquire+release cycles: latencies and CPU time
    (a failed cycle is counted in ``errors``, not timed)."""
    lat = []
    errors = 0
    cpu0 = time.process_time()
    for _ in range(cycles):
        t0 = time.perf_counter_ns()
        try:
            contender.acquire()
            contender.release()
        except Exception:
            errors = _failed(errors)
            continue
        lat.append(time.perf_counter_ns() - t0)
    return {"lat_ns": lat, "cpu_s": time.process_time() - cpu0, "errors": errors}


def memory_kib() -> dict[str, int]:
    """This process's resident memory (``/proc/self/smaps_rollup``): ``rss``,
    ``pss`` (shared pages split between their users) and ``private`` (what
    this process alone costs: forked workers share the parent's pages)."""
    fields: dict[str, int] = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[key] = int(rest.split()[0])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "private": private}


def _loop(contender: Contender, until: float, shared: Any) -> dict[str, Any]:
    """Contend until ``until`` (monotonic, shared by all workers); record every
    grant as (grant order, token, time) and its wait (seconds from asking to
    holding). ``shared`` = [grant counter, holder]."""
    grants = []
    waits = []
    overlaps = 0
    me = os.getpid()
    wakes0 = contender.wakes
    errors = 0
    while time.monotonic() < until:
        asked = time.monotonic()
        try:
            token = contender.acquire()
        except Exception:
            errors = _failed(errors)
            continue
        now = time.monotonic()
        waits.append(now - asked)
        # We hold the lock, so nobody else touches these: a second holder
        # would show up here as an overlap.
        if shared[1] != 0:
            overlaps += 1
        shared[1] = me
        shared[0] += 1
        grants.append((int(shared[0]), token, now))
        shared[1] = 0
        try:
            contender.release()
        except Exception:
            errors = _failed(errors)
    return {"grants": grants, "waits": waits, "overlaps": overlaps, "errors": errors,
            "wakes": contender.wakes - wakes0, "memory_kib": memory_kib()}


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


def node_of(hosts: str, index: int) -> str:
    """The ``index``-th worker's hosts: with several servers in ``hosts``, one
    of them in turn (clients spread evenly over an ensemble's nodes rather
    than where the client's random pick puts them), chroot kept."""
    servers, slash, chroot = hosts.partition("/")
    nodes = servers.split(",")
    return nodes[index % len(nodes)] + slash + chroot


def start_workers(specs: list[tuple[str, str]], hosts: str, shared: Any = None) -> list[Worker]:
    """Start one worker per (kind, lock name), spread over the servers in
    ``hosts`` (``node_of``), and wait until each is connected."""
    workers: list[Worker] = []
    per_kind: dict[str, int] = {}
    try:
        for kind, name in specs:
            # Counted per kind, so every contender gets the same placement.
            index = per_kind[kind] = per_kind.get(kind, -1) + 1
            workers.append(Worker(kind, node_of(hosts, index), name, shared))
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
    out: dict[str, Any] = {
        w.kind: {"lat_ns": [], "cpu_per_cycle_s": [], "round_p50_ns": [], "errors": 0}
        for w in workers
    }
    for _ in range(cfg.rounds):
        this_round: dict[str, list[int]] = {kind: [] for kind in out}
        for worker in random.sample(workers, len(workers)):
            worker.send("batch", cfg.batch)
            res = worker.result()
            this_round[worker.kind].extend(res["lat_ns"])
            out[worker.kind]["errors"] += res["errors"]
            out[worker.kind]["cpu_per_cycle_s"].append(res["cpu_s"] / cfg.batch)
        for kind, lat in this_round.items():
            out[kind]["lat_ns"].extend(lat)
            # Each round's median: ratios round by round give the spread.
            out[kind]["round_p50_ns"].append(statistics.median(lat))
    return out
