"""Benchmarks of the kinds built on the lock: ``lock_many`` and fenced files."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from zkflock._bench.contenders import (
    Contender,
    ZkflockContender,
    kazoo_client,
    )

if TYPE_CHECKING:
    pass


class ZkflockMany(ZkflockContender):
    """``session.lock_many`` of ``count`` names: one multi for every queue."""

    def __init__(self, hosts: str, name: str, count: int) -> None:
        super().__init__(hosts, name)
        self._names = [f"{name}-{i}" for i in range(count)]
        self._many: Any = None

    def acquire(self) -> int:
        self._many = self._session.lock_many(self._names)
        self._many.acquire()
        return 0

    def release(self) -> None:
        self._many.release()


class KazooMany(Contender):
    """kazoo's Lock on each name, one after another (in a fixed order, the
    only deadlock-free way kazoo offers), released in reverse."""

    def __init__(self, hosts: str, name: str, count: int) -> None:
        self._client = kazoo_client(hosts)
        self._locks = [self._client.Lock(f"/kazoo-bench/{name}-{i}") for i in range(count)]

    def acquire(self) -> int:
        for lock in self._locks:
            lock.acquire()
        return 0

    def release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()

    def close(self) -> None:
        self._client.stop()
        self._client.close()


class FencedAppend(ZkflockContender):
    """``SharedFile.append`` of a small line: lock, fenced commit, release."""

    def __init__(self, hosts: str, name: str) -> None:
        root, rel = name.split("::", 1)
        from zkflock._session import connect

        self._session = connect(hosts, root=root, session_timeout=10, connect_timeout=30)
        self._file: Any = self._session.shared_file(rel)

    def acquire(self) -> int:
        self._file.append("a small line\n")
        return 0

    def release(self) -> None:
        pass


class PlainAppend(ZkflockContender):
    """The unfenced baseline: zkflock lock, append, fsync, release."""

    def __init__(self, hosts: str, name: str) -> None:
        root, rel = name.split("::", 1)
        super().__init__(hosts, rel)
        self._path = os.path.join(root, rel + ".plain")

    def acquire(self) -> int:
        with self._session.lock(self._name), open(self._path, "a") as f:
            f.write("a small line\n")
            f.flush()
            os.fsync(f.fileno())
        return 0

    def release(self) -> None:
        pass


def make_extra(kind: str, hosts: str, name: str) -> Contender:
    base, _, arg = kind.partition(":")
    if base == "zkflock_many":
        return ZkflockMany(hosts, name, int(arg))
    if base == "kazoo_many":
        return KazooMany(hosts, name, int(arg))
    if base == "fenced":
        return FencedAppend(hosts, name)
    if base == "plain":
        return PlainAppend(hosts, name)
    if base in ("zkflock_epoll", "kazoo_select"):
        from zkflock._bench.hotpath import KazooSelect, ZkflockEpoll

        return (ZkflockEpoll if base == "zkflock_epoll" else KazooSelect)(hosts, name)
    raise ValueError(f"unknown benchmark contender {kind!r}")
