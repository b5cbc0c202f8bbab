"""Read/write locks on real ZooKeeper: readers share, writers exclude,
no herd and no watch cycle, downgrade works, upgrade is refused."""

# ruff: noqa: F811 - the shared fixtures are imported from _family_workers

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from _family_workers import (  # noqa: F401 - fixtures
    Spawner,
    check,
    family,
    wait_until,
    watchers,
)
from zkflock import ConfigError, Lock, Session
from zkflock._session import core_of

NAME = "reports/q3.csv"


def queued(session: Session) -> int:
    return len(session.holders(NAME))


def test_readers_overlap_across_processes(family: Spawner) -> None:
    # Each reader waits inside for another reader: only a shared lock lets
    # them both in, so a read lock that excluded would fail "most >= 2".
    for _ in range(3):
        family.start("read", NAME, rounds=3, company=1, company_wait=3.0, hold=0.01)
    family.run_all()
    problems, most = check(family.log)
    assert problems == []
    assert most[NAME] >= 2


def test_writers_exclude_readers_and_writers_across_processes(family: Spawner) -> None:
    for worker in ("write", "read", "write", "read", "read"):
        family.start(worker, NAME, rounds=10, hold=0.005)
    family.run_all()
    problems, _most = check(family.log)
    assert problems == []


def test_detector_fires_when_a_writer_only_takes_a_read_lock(family: Spawner) -> None:
    # The broken variant: "writers" that take the shared lock overlap readers.
    for worker in ("fake-write", "read", "fake-write"):
        family.start(worker, NAME, rounds=2, company=1, company_wait=3.0, hold=0.05)
    family.run_all()
    problems, _most = check(family.log)
    assert problems


def _start(lock: Lock) -> threading.Thread:
    thread = threading.Thread(target=lock.acquire, daemon=True)
    thread.start()
    return thread


def test_writer_release_wakes_only_the_readers_behind_it(
    sessions: Callable[[], Session], zk_server: Any, zk_hosts: str
) -> None:
    chroot = "/" + zk_hosts.split("/", 1)[1]
    observer = sessions()
    w1 = sessions().write_lock(NAME)
    assert w1.acquire()
    order: list[Lock] = []
    for make in ("read", "read", "read", "write", "read"):
        s = sessions()
        lock = s.read_lock(NAME, timeout=60) if make == "read" else s.write_lock(NAME, timeout=60)
        _start(lock)
        order.append(lock)
        count = len(order) + 1
        wait_until(lambda count=count: queued(observer) == count, 10, "contenders to queue")
    r1, r2, r3, w2, r4 = order
    nodes = [h.id for h in observer.holders(NAME)]
    parent = core_of(observer).lock_path(NAME)[1]

    def watches() -> int:  # a node is listed before its watch is set
        return sum(len(s) for p, s in watchers(zk_server, chroot).items() if p.startswith(parent))

    wait_until(lambda: watches() >= 5, 10, "every waiter to watch")
    watch = watchers(zk_server, chroot)
    watched = {path.rsplit("/", 1)[1]: len(s) for path, s in watch.items()
               if path.startswith(parent)}
    # The three readers watch w1; w2 watches the last reader; r4 watches w2.
    # Every watch points backwards (no cycle) and nobody watches the parent.
    assert watched == {nodes[0]: 3, nodes[3]: 1, nodes[4]: 1}
    w1.release()
    wait_until(lambda: r1.is_held and r2.is_held and r3.is_held, 10, "the readers")
    assert not w2.is_held
    assert not r4.is_held
    for reader in (r1, r2, r3):
        reader.release()
    wait_until(lambda: w2.is_held, 10, "the second writer")
    assert not r4.is_held
    w2.release()
    wait_until(lambda: r4.is_held, 10, "the last reader")
    r4.release()


def test_downgrade_write_to_read(sessions: Callable[[], Session]) -> None:
    """Holding the write lock, take the read lock in the same session, then
    release the write lock: the read lock stays held throughout."""
    zk, other, third = sessions(), sessions(), sessions()
    write = zk.write_lock(NAME)
    assert write.acquire()
    read = zk.read_lock(NAME)
    assert read.acquire(blocking=False)  # granted at once: our own writer
    write.release()
    assert read.is_held
    other_read, other_write = other.read_lock(NAME), third.write_lock(NAME)
    assert other_read.acquire(timeout=10)  # readers share with the downgraded hold
    assert other_write.acquire(blocking=False) is False
    other_read.release()
    read.release()
    assert other_write.acquire(timeout=10)
    other_write.release()


def test_downgrade_refused_when_another_writer_waits(sessions: Callable[[], Session]) -> None:
    # A writer queued behind our write lock would wait for our read node and
    # our read node for it: refused at once, its node removed.
    zk, other, observer = sessions(), sessions(), sessions()
    write = zk.write_lock(NAME)
    assert write.acquire()
    _start(other.write_lock(NAME, timeout=60))
    wait_until(lambda: queued(observer) == 2, 10, "the other writer")
    with pytest.raises(ConfigError, match="downgrade"):
        zk.read_lock(NAME).acquire(timeout=30)
    assert queued(observer) == 2
    write.release()


def test_upgrade_refused_before_queueing(sessions: Callable[[], Session]) -> None:
    zk, observer = sessions(), sessions()
    read = zk.read_lock(NAME)
    assert read.acquire()
    with pytest.raises(ConfigError, match="upgrading a read lock is not supported"):
        zk.write_lock(NAME).acquire(timeout=30)
    assert queued(observer) == 1  # nothing was enqueued
    read.release()
    write = zk.write_lock(NAME)
    assert write.acquire(timeout=10)  # released first: fine
    write.release()


def test_holders_show_shared_and_exclusive(sessions: Callable[[], Session]) -> None:
    r1, r2 = sessions().read_lock(NAME), sessions().read_lock(NAME)
    assert r1.acquire()
    assert r2.acquire()
    w = sessions().write_lock(NAME, timeout=60)
    _start(w)
    observer = sessions()
    wait_until(lambda: queued(observer) == 3, 10, "the writer to queue")
    rows = [(h.kind, h.state) for h in observer.holders(NAME)]
    assert rows == [("shared", "holding"), ("shared", "holding"), ("exclusive", "waiting")]
    r1.release()
    r2.release()
    wait_until(lambda: w.is_held, 10, "the writer")
    w.release()
