"""Benchmarks, side by side with kazoo's recipe: contenders and their processes.

Every contender runs in its own OS process with its own ZooKeeper session
(forked before any client thread exists in the parent), so no two share a
connection, a GIL or a callback thread. The parent only coordinates: it tells
each worker when to run and collects raw samples; statistics and plots are
in ``report``, the worker processes in ``workers``, the scenarios in
``scenarios``.

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

import re
import threading
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient

_SEQ_RE = re.compile(r"(\d{10,})$")
# fork: workers start in milliseconds (64 herd waiters would take a minute
# to spawn on 2 cores); the parent holds no ZooKeeper client when it forks.
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
        from zkflock._locks.lock import Lock
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


def kazoo_client(hosts: str) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    client.start(timeout=30)
    return client


class KazooContender(Contender):
    def __init__(self, hosts: str, name: str) -> None:
        self._client = kazoo_client(hosts)
        self._init_lock(name)

    def _init_lock(self, name: str) -> None:
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
        self._client = kazoo_client(hosts)
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


class PingContender(RawContender):
    """One read (``exists`` of the root): the path's round trip, for the
    delayed settings' report of what the path really adds."""

    def __init__(self, hosts: str, name: str) -> None:
        self._client = kazoo_client(hosts)

    def acquire(self) -> int:
        self._client.exists("/")
        return 0

    def release(self) -> None:
        pass


CONTENDERS["ping"] = PingContender
