"""Benchmarks, side by side with kazoo's recipe: contenders and their processes.

Every contender runs in its own OS process with its own ZooKeeper session
(forked before any client thread exists in the parent), so no two share a
connection, a GIL or a callback thread. The parent only coordinates: it tells
each worker when to run and collects raw samples; statistics and plots are
in ``_bench_report``, the scenarios in ``_bench_scenarios``.

Contenders:

- ``zkflock``: ``with session.lock(name) as held: held.token`` (a fresh lock
  object per cycle, as the documented idiom does).
- ``kazoo``: kazoo's own ``client.Lock(path)`` recipe, one object reused (its
  best case: a fresh one would re-check the parent path every time).
- ``raw``: a bare kazoo create of an ephemeral sequential node, then delete:
  two writes, the floor for any queue lock on ZooKeeper.
- ``rawlist``: ``raw`` plus the parent's listing pipelined behind the create:
  the floor for a lock that knows after one round trip whether it holds.
- ``naive``: the herd control, every waiter watching the parent's children.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from kazoo.client import KazooClient

_SEQ_RE = re.compile(r"(\d{10,})$")
# fork: workers start in milliseconds (64 herd waiters would take a minute
# to spawn on 2 cores); the parent holds no ZooKeeper client when it forks.
_CTX = mp.get_context("fork")
SESSION_TIMEOUT = 10.0


def _seq(node: str) -> int:
    match = _SEQ_RE.search(node)
    return int(match.group(1)) if match else -1


class Contender:
    """One way of taking a lock; ``acquire`` returns the grant's token/sequence."""

    wakes = 0  # watch notifications this contender received

    def __init__(self, hosts: str, name: str) -> None:
        raise NotImplementedError

    def acquire(self) -> int:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ZkflockContender(Contender):
    def __init__(self, hosts: str, name: str) -> None:
        from zkflock._locks import Lock
        from zkflock._session import connect

        self._session = connect(hosts, session_timeout=SESSION_TIMEOUT, connect_timeout=30)
        self._name = name
        self._lock: Lock | None = None
        zk = self._session.zk
        original = zk.watch

        def counted(paths: Any, on_event: Callable[[bool], None]) -> bool:
            def fire(deleted: bool) -> None:
                self.wakes += 1
                on_event(deleted)

            return original(paths, fire)

        setattr(zk, "watch", counted)  # noqa: B010 - count wakes without touching the library

    def acquire(self) -> int:
        self._lock = self._session.lock(self._name)
        self._lock.acquire()
        return self._lock.token

    def release(self) -> None:
        assert self._lock is not None
        self._lock.release()

    def close(self) -> None:
        self._session.close()


def _kazoo(hosts: str) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    client.start(timeout=30)
    return client


class KazooContender(Contender):
    def __init__(self, hosts: str, name: str) -> None:
        self._client = _kazoo(hosts)
        self._lock = self._client.Lock(f"/kazoo-bench/{name}")
        original = self._lock._watch_predecessor

        def counted(event: Any) -> None:
            self.wakes += 1
            original(event)

        self._lock._watch_predecessor = counted

    def acquire(self) -> int:
        self._lock.acquire()
        return _seq(self._lock.node)

    def release(self) -> None:
        self._lock.release()

    def close(self) -> None:
        self._client.stop()
        self._client.close()


class RawContender(Contender):
    def __init__(self, hosts: str, name: str) -> None:
        self._client = _kazoo(hosts)
        self._parent = f"/raw-bench/{name}"
        self._client.ensure_path(self._parent)
        self._path = ""

    def acquire(self) -> int:
        self._path = self._client.create(f"{self._parent}/n-", ephemeral=True, sequence=True)
        return _seq(self._path)

    def release(self) -> None:
        self._client.delete(self._path)

    def close(self) -> None:
        self._client.stop()
        self._client.close()


class RawListContender(RawContender):
    """The floor for a lock that learns in one round trip whether it holds:
    the create, the parent's listing pipelined behind it, then the delete
    (three requests, two writes). zkflock's uncontended cycle is exactly this."""

    def acquire(self) -> int:
        created = self._client.create_async(f"{self._parent}/n-", ephemeral=True, sequence=True)
        listed = self._client.get_children_async(self._parent)
        self._path = created.get()
        listed.get()
        return _seq(self._path)


class NaiveContender(RawContender):
    """Everyone watches the parent's children: every create and delete wakes
    every waiter (the herd), each of which lists the queue again."""

    def acquire(self) -> int:
        self._path = self._client.create(f"{self._parent}/n-", ephemeral=True, sequence=True)
        me = self._path.rsplit("/", 1)[1]
        while True:
            woke = threading.Event()

            def fire(event: Any, woke: threading.Event = woke) -> None:
                self.wakes += 1
                woke.set()

            children = self._client.get_children(self._parent, watch=fire)
            if min(children, key=_seq) == me:
                return _seq(me)
            woke.wait(SESSION_TIMEOUT)


CONTENDERS: dict[str, type[Contender]] = {
    "zkflock": ZkflockContender,
    "kazoo": KazooContender,
    "raw": RawContender,
    "rawlist": RawListContender,
    "naive": NaiveContender,
}


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
    """A contender by kind; ``many``/``fenced`` kinds live in ``_bench_extra``."""
    if kind in CONTENDERS:
        return CONTENDERS[kind](hosts, name)
    from zkflock._bench_extra import make_extra

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


# -- the server ----------------------------------------------------------------


def four_letter(hosts: str, cmd: str, timeout: float = 5.0) -> str:
    """A four-letter word to the first server in ``hosts`` (chroot ignored)."""
    first = hosts.split(",")[0].split("/")[0]
    host, _, port = first.rpartition(":")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_zxid(hosts: str) -> int:
    for line in four_letter(hosts, "srvr").splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise RuntimeError("srvr did not report a Zxid; is 'srvr' allowed (4lw.commands.whitelist)?")


_FIRED = re.compile(r"^zk_sum_node_(created|deleted|children|changed)_watch_count\s+(\d+)")


def watches_fired(hosts: str) -> int:
    """How many watch notifications the server has sent so far (from ``mntr``)."""
    total = 0
    for line in four_letter(hosts, "mntr").splitlines():
        match = _FIRED.match(line)
        if match:
            total += int(match.group(2))
    return total


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy it was."""
    load = os.getloadavg()
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "python": ".".join(map(str, sys.version_info[:3])),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
