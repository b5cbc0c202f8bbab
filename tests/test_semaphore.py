"""Semaphores on real ZooKeeper: at most N holders, N when N or more wait,
FIFO, no herd, a clear error when callers disagree on N."""

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
    herd_problems,
    wait_until,
    watchers,
)
from zkflock import ConfigError, Lock, Session

NAME = "gpu-slots"


def queued(session: Session) -> int:
    return len(session.holders(NAME))


def test_two_leases_five_contenders_never_three_and_reaches_two(family: Spawner) -> None:
    # Each holder waits inside (bounded) for a second holder: a semaphore that
    # let only one in would never reach two.
    for _ in range(5):
        family.start("semaphore", NAME, rounds=4, leases=2, company=1, company_wait=2.0)
    family.run_all()
    problems, most = check(family.log, limit=2)
    assert problems == []
    assert most[NAME] == 2


def test_detector_fires_when_three_leases_are_handed_out(family: Spawner) -> None:
    # The broken variant: callers with max_leases=3, checked against 2.
    for _ in range(4):
        family.start("semaphore", NAME, rounds=2, leases=3, company=2, company_wait=3.0)
    family.run_all()
    problems, most = check(family.log, limit=2)
    assert problems
    assert most[NAME] == 3


def _waiting(session: Session, n: int) -> tuple[Lock, threading.Thread]:
    lock = session.semaphore(NAME, n, timeout=60)
    thread = threading.Thread(target=lock.acquire, daemon=True)
    thread.start()
    return lock, thread


def test_fifo_and_no_herd(
    sessions: Callable[[], Session], zk_server: Any, zk_hosts: str
) -> None:
    chroot = "/" + zk_hosts.split("/", 1)[1]
    observer = sessions()
    holders = [sessions().semaphore(NAME, 2) for _ in range(2)]
    assert all(h.acquire() for h in holders)
    waiters = []
    for n in range(4):
        waiters.append(_waiting(sessions(), 2)[0])
        wait_until(lambda n=n: queued(observer) == n + 3, 10, "waiters to queue in order")
    # The first waiter watches both holders, each later waiter only its
    # predecessor: every node is watched by one session. (A waiter's node is
    # listed before its watch is set: wait for the watches, not the nodes.)
    wait_until(lambda: len(watchers(zk_server, chroot)) >= 2 + 3, 10, "every waiter to watch")
    watch = watchers(zk_server, chroot)
    assert herd_problems(watch) == []
    assert len(watch) == 2 + 3
    holders[1].release()
    wait_until(lambda: waiters[0].is_held, 10, "the first waiter")
    holders[0].release()
    wait_until(lambda: waiters[1].is_held, 10, "the second waiter")
    assert not waiters[2].is_held
    assert not waiters[3].is_held
    waiters[0].release()
    wait_until(lambda: waiters[2].is_held, 10, "the third waiter")
    assert not waiters[3].is_held
    for w in waiters[1:3]:
        w.release()
    wait_until(lambda: waiters[3].is_held, 10, "the last waiter")
    waiters[3].release()


def test_disagreeing_max_leases_is_refused_and_leaves_no_node(
    sessions: Callable[[], Session],
) -> None:
    observer = sessions()
    held = sessions().semaphore(NAME, 2)
    assert held.acquire()
    with pytest.raises(ConfigError, match="disagree on max_leases"):
        sessions().semaphore(NAME, 3).acquire(timeout=10)
    wait_until(lambda: queued(observer) == 1, 10, "the refused node to go")
    held.release()


def test_semaphore_and_lock_on_one_name_is_refused(sessions: Callable[[], Session]) -> None:
    held = sessions().lock(NAME)
    assert held.acquire()
    with pytest.raises(ConfigError, match="share one name"):
        sessions().semaphore(NAME, 2).acquire(timeout=10)
    held.release()


@pytest.mark.parametrize("bad", [0, -1, 1_000_000, 2.5])
def test_max_leases_must_be_a_sensible_integer(
    sessions: Callable[[], Session], bad: Any
) -> None:
    with pytest.raises(ConfigError, match="max_leases"):
        sessions().semaphore(NAME, bad)


def test_holders_show_leases_and_waiters(sessions: Callable[[], Session]) -> None:
    a, b = sessions().semaphore(NAME, 2), sessions().semaphore(NAME, 2)
    assert a.acquire()
    assert b.acquire()
    waiter, thread = _waiting(sessions(), 2)
    observer = sessions()
    wait_until(lambda: queued(observer) == 3, 10, "the waiter")
    rows = [(h.kind, h.state) for h in a.holders()]
    assert rows == [("semaphore", "holding")] * 2 + [("semaphore", "waiting")]
    a.release()
    thread.join(timeout=10)
    assert waiter.is_held
    waiter.release()
    b.release()
