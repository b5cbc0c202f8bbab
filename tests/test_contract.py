"""One contract suite, parametrized over every lock kind, against real ZooKeeper.

Each kind is a pair (holder, contender): the contender must be excluded while
the holder holds. "read-vs-write" is a writer holding against a reader.
"""

# ruff: noqa: F811 - the shared fixtures are imported from _family_workers

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from kazoo.client import KazooClient

from _family_workers import (  # noqa: F401 - fixtures
    Spawner,
    check,
    family,
    herd_problems,
    wait_until,
    watchers,
)
from zkflock import (
    AcquireCancelledError,
    ConfigError,
    Lock,
    LockNotHeldError,
    LockTimeoutError,
    Session,
)

NAME = "data/q3.csv"
Make = Callable[..., Lock]


@dataclass(frozen=True)
class Kind:
    id: str
    holder: Make
    contender: Make
    workers: tuple[str, ...]  # worker kinds for the cross-process run
    kind_name: str  # Holder.kind of the holder


def _lock(s: Session, n: str, **kw: Any) -> Lock:
    return s.lock(n, **kw)


def _write(s: Session, n: str, **kw: Any) -> Lock:
    return s.write_lock(n, **kw)


def _read(s: Session, n: str, **kw: Any) -> Lock:
    return s.read_lock(n, **kw)


def _sem1(s: Session, n: str, **kw: Any) -> Lock:
    return s.semaphore(n, 1, **kw)


def _many1(s: Session, n: str, **kw: Any) -> Lock:
    return s.lock_many([n], **kw)


KINDS = [
    Kind("exclusive", _lock, _lock, ("exclusive",) * 3, "exclusive"),
    Kind("write", _write, _write, ("write",) * 3, "exclusive"),
    Kind("read-vs-write", _write, _read, ("write", "read", "write", "read"), "exclusive"),
    Kind("semaphore-1", _sem1, _sem1, ("semaphore",) * 3, "semaphore"),
    Kind("many-1", _many1, _many1, ("many",) * 3, "exclusive"),
]


@pytest.fixture(params=KINDS, ids=[k.id for k in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


def queued(session: Session) -> int:
    return len(session.holders(NAME))


def test_with_returns_the_held_lock_itself(
    kind: Kind, sessions: Callable[[], Session]
) -> None:
    lock = kind.holder(sessions(), NAME)
    with lock as held:
        assert held is lock
        assert isinstance(held.token, int)
        assert held.token > 0
        held.ensure_held()
        assert held.is_held
    assert not lock.is_held
    with pytest.raises(LockNotHeldError):
        lock.release()
    with pytest.raises(LockNotHeldError):
        _ = lock.token


def test_contender_excluded_nonblocking_timeout_with_and_no_node_left(
    kind: Kind, sessions: Callable[[], Session]
) -> None:
    holder, other, observer = sessions(), sessions(), sessions()
    held = kind.holder(holder, NAME)
    assert held.acquire(timeout=10)
    contender = kind.contender(other, NAME, timeout=0.3)
    assert contender.acquire(blocking=False) is False
    assert queued(observer) == 1
    assert contender.acquire(timeout=0.3) is False
    assert queued(observer) == 1
    with pytest.raises(LockTimeoutError), contender:
        pytest.fail("the block ran without the lock")
    assert queued(observer) == 1
    held.release()
    assert contender.acquire(timeout=10)
    assert contender.token > 0
    contender.release()
    wait_until(lambda: queued(observer) == 0, 10, "the queue to empty")


def test_reentrant_hold_counts(kind: Kind, sessions: Callable[[], Session]) -> None:
    lock = kind.holder(sessions(), NAME, reentrant=True)
    contender = kind.contender(sessions(), NAME)
    assert lock.acquire()
    assert lock.acquire()
    lock.release()
    assert lock.is_held
    assert contender.acquire(blocking=False) is False
    lock.release()
    assert not lock.is_held
    assert contender.acquire(timeout=10)
    contender.release()
    plain = kind.holder(sessions(), NAME)
    with plain, pytest.raises(ConfigError, match="reentrant=True"):
        plain.acquire()


def test_cancel_stops_a_waiting_acquire_and_deletes_its_node(
    kind: Kind, sessions: Callable[[], Session]
) -> None:
    held, observer = kind.holder(sessions(), NAME), sessions()
    assert held.acquire()
    waiter = kind.contender(sessions(), NAME, timeout=60)
    outcome: list[BaseException | bool] = []

    def wait() -> None:
        try:
            outcome.append(waiter.acquire())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    wait_until(lambda: queued(observer) == 2, 10, "the waiter to queue")
    waiter.cancel()
    thread.join(timeout=10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], AcquireCancelledError)
    wait_until(lambda: queued(observer) == 1, 10, "the cancelled node to go")
    held.release()


def test_holders_list_holder_then_waiter(kind: Kind, sessions: Callable[[], Session]) -> None:
    import os
    import socket

    held, observer = kind.holder(sessions(), NAME, purpose="nightly"), sessions()
    assert held.acquire()
    waiter = kind.contender(sessions(), NAME, timeout=30)
    thread = threading.Thread(target=waiter.acquire, daemon=True)
    thread.start()
    wait_until(lambda: queued(observer) == 2, 10, "the waiter to queue")
    first, second = held.holders()
    assert (first.state, second.state) == ("holding", "waiting")
    assert first.kind == kind.kind_name
    assert first.token == held.token
    assert first.pid == os.getpid()
    assert first.host == socket.gethostname()
    assert first.purpose == "nightly"
    assert first.lock == NAME
    assert second.token > first.token
    assert second.since >= first.since - 5
    held.release()
    thread.join(timeout=10)
    assert waiter.is_held
    (only,) = observer.holders(NAME)
    assert only.state == "holding"
    assert only.token == waiter.token
    waiter.release()


def test_exclusion_across_processes(kind: Kind, family: Spawner) -> None:
    for worker in kind.workers:
        family.start(worker, NAME, rounds=12, hold=0.003, leases=1)
    family.run_all()
    problems, most = check(family.log)
    assert problems == []
    if "read" not in kind.workers:
        assert most[NAME] == 1
    enters = sum(1 for line in family.log.read_text().splitlines() if " enter " in line)
    assert enters == 12 * len(kind.workers)


def test_detector_fires_when_the_lock_is_bypassed(family: Spawner) -> None:
    # Without a lock, each worker waits inside for another: they must overlap.
    for _ in range(3):
        family.start("none", NAME, rounds=1, hold=0.3, company=1, company_wait=5.0)
    family.run_all()
    problems, most = check(family.log)
    assert problems
    assert most[NAME] >= 2


def _queue_waiters(sessions: Callable[[], Session], count: int) -> list[Lock]:
    observer = sessions()
    waiters = []
    for n in range(count):
        lock = sessions().lock(NAME, timeout=60)
        threading.Thread(target=lock.acquire, daemon=True).start()
        wait_until(lambda n=n: queued(observer) == n + 2, 10, "waiters to queue in order")
        waiters.append(lock)
    return waiters


def test_no_herd_each_waiter_watches_one_node_and_one_wakes_per_release(
    sessions: Callable[[], Session], zk_server: Any, zk_hosts: str
) -> None:
    chroot = "/" + zk_hosts.split("/", 1)[1]
    holder = sessions().lock(NAME)
    assert holder.acquire()
    waiters = _queue_waiters(sessions, 10)
    # A waiter's node is listed before its watch is set: wait for the watches.
    wait_until(lambda: len(watchers(zk_server, chroot)) >= 10, 10, "every waiter to watch")
    watch = watchers(zk_server, chroot)
    assert herd_problems(watch) == []
    assert len(watch) == 10  # ten waiters, ten distinct watched nodes
    current = holder
    for nxt in waiters:
        current.release()
        wait_until(lambda nxt=nxt: nxt.is_held, 10, "the next waiter")
        # Only the next waiter was granted: everyone behind still waits.
        assert [w.is_held for w in waiters].count(True) == 1
        current = nxt
    current.release()


def test_herd_check_fires_when_every_waiter_watches_the_holder(
    sessions: Callable[[], Session], zk_server: Any, zk_hosts: str
) -> None:
    # The broken variant: kazoo-style clients that all watch the holder's node.
    chroot = "/" + zk_hosts.split("/", 1)[1]
    holder = sessions().lock(NAME)
    assert holder.acquire()
    (node,) = holder.node_paths()
    clients = [KazooClient(hosts=zk_hosts) for _ in range(3)]
    try:
        for client in clients:
            client.start(timeout=10)
            assert client.exists(node, watch=lambda event: None) is not None
        assert herd_problems(watchers(zk_server, chroot))
    finally:
        for client in clients:
            client.stop()
            client.close()
    holder.release()
