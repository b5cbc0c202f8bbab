"""The exclusive lock against a real ZooKeeper: exclusion across processes,
FIFO order, timeouts, one deadline per acquire, tokens, holders."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkflock
from _workers import Spawner, entry_tokens, find_overlaps, read_log, wait_until
from zkflock import LocalZooKeeper, Lock, LockNotHeldError, LockTimeoutError, Session
from zkflock._locks.waiting import Waiter
from zkflock._session import core_of

NAME = "data/data.txt"


def _contend(
    spawner: Spawner, tmp_path: Path, hosts: str, workers: int, *extra: str
) -> Path:
    """Run ``workers`` mutex workers that start together; return their log."""
    log, go = tmp_path / "log", tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(workers)]
    procs = [
        spawner.start(
            "mutex", "--hosts", hosts, "--log", str(log), "--go", str(go),
            "--ready", str(ready[i]), *extra,
        )
        for i in range(workers)
    ]
    if "--no-lock" not in extra:
        wait_until(lambda: all(r.exists() for r in ready), 60, "workers to connect")
    go.touch()
    for n, proc in enumerate(procs):
        proc.wait(timeout=90)
        assert proc.returncode == 0, spawner.stderr(n)
    return log


# -- mutual exclusion ---------------------------------------------------------


def test_mutual_exclusion_across_four_processes(
    zk_hosts: str, spawner: Spawner, tmp_path: Path
) -> None:
    log = _contend(spawner, tmp_path, zk_hosts, 4, "--rounds", "8", "--hold", "0.02")
    assert find_overlaps(log) == []
    tokens = entry_tokens(log)
    assert len(tokens) == 4 * 8
    assert len({pid for pid, *_ in read_log(log)}) == 4  # all four really took turns
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)  # strictly increasing in entry order


def test_overlap_detector_fires_when_the_lock_is_bypassed(
    zk_hosts: str, spawner: Spawner, tmp_path: Path
) -> None:
    # The same workers and detector without the lock: this is how we know the
    # test above could fail.
    log = _contend(
        spawner, tmp_path, zk_hosts, 4, "--no-lock", "--rounds", "5", "--hold", "0.05"
    )
    assert find_overlaps(log) != []


# -- FIFO -----------------------------------------------------------------------


def test_waiters_are_granted_in_queue_order(sessions: Callable[..., Session]) -> None:
    holder = sessions().lock(NAME)
    assert holder.acquire()
    observer = sessions()
    granted: list[int] = []
    threads = []
    for i in range(4):
        lock = sessions().lock(NAME)

        def wait_turn(i: int = i, lock: Lock = lock) -> None:
            assert lock.acquire(timeout=30)
            granted.append(i)
            time.sleep(0.02)
            lock.release()

        thread = threading.Thread(target=wait_turn, daemon=True)
        thread.start()
        threads.append(thread)
        # Enqueue one after another: the next starts once this one is queued.
        wait_until(lambda i=i: len(observer.holders(NAME)) == i + 2, 10, f"waiter {i} queued")

    queued = observer.holders(NAME)
    assert [h.state for h in queued] == ["holding"] + ["waiting"] * 4
    assert [h.token for h in queued] == sorted(h.token for h in queued)
    holder.release()
    for thread in threads:
        thread.join(timeout=30)
    assert granted == [0, 1, 2, 3]


# -- timeouts -------------------------------------------------------------------


def test_timeout_returns_false_raises_in_with_and_leaves_no_node(
    sessions: Callable[..., Session], kazoo_client: KazooClient
) -> None:
    holder = sessions().lock(NAME)
    assert holder.acquire()
    waiter_session = sessions()
    parent = core_of(waiter_session).lock_path(NAME)[1]
    assert len(kazoo_client.get_children(parent)) == 1

    waiter = waiter_session.lock(NAME)
    assert waiter.acquire(timeout=0.3) is False
    assert not waiter.is_held
    assert len(kazoo_client.get_children(parent)) == 1  # the waiter's node is gone

    ran = False
    with pytest.raises(LockTimeoutError) as info, waiter_session.lock(NAME, timeout=0.3):
        ran = True
    assert not ran  # the block never ran without the lock
    assert isinstance(info.value, TimeoutError)
    assert info.value.exit_code == 4
    assert len(kazoo_client.get_children(parent)) == 1

    holder.release()
    assert waiter.acquire(timeout=5)
    waiter.release()


def test_non_blocking_acquire(sessions: Callable[..., Session]) -> None:
    first, second = sessions().lock(NAME), sessions().lock(NAME)
    assert first.acquire(blocking=False)
    assert second.acquire(blocking=False) is False
    first.release()
    assert second.acquire(blocking=False)
    second.release()


def _deadline_scenario(
    sessions: Callable[..., Session], monkeypatch: pytest.MonkeyPatch, per_wake: bool
) -> tuple[bool, int]:
    """W (timeout T) queues behind a long holder A and three waiters that give
    up one after another (P3 first), each departure waking W. A releases at
    1.45 T after W started. Returns (W's result, calls of Waiter._watch_and_wait).
    ``per_wake`` wraps the wait so every wake-up gets a fresh T (kazoo's
    behaviour): the broken variant the test must catch."""
    T = 2.0
    holder = sessions().lock(NAME)
    assert holder.acquire()
    observer = sessions()
    waiters = []
    for n, give_up in enumerate((1.6, 1.2, 0.7)):  # P1, P2, P3
        lock = sessions().lock(NAME)
        thread = threading.Thread(
            target=lock.acquire, kwargs={"timeout": give_up}, daemon=True
        )
        thread.start()
        waiters.append(thread)
        wait_until(lambda n=n: len(observer.holders(NAME)) == n + 2, 10, "P queued")

    w = sessions().lock(NAME)
    calls = 0
    original = Waiter._watch_and_wait
    w_threads: list[threading.Thread] = []

    def counting(self: Waiter, *args: object) -> bool | None:
        # (..., decision, deadline): the deadline is the last argument.
        nonlocal calls
        if threading.current_thread() in w_threads:
            calls += 1
            if per_wake:
                args = (*args[:-1], time.monotonic() + T)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Waiter, "_watch_and_wait", counting)
    result: list[bool] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: result.append(w.acquire(timeout=T)), daemon=True)
    w_threads.append(thread)
    thread.start()
    wait_until(lambda: len(observer.holders(NAME)) == 5, 10, "W queued")
    # Scheduling, not an assertion on time: A lets go after W's one deadline
    # but before a deadline renewed at P1's departure would pass.
    time.sleep(max(0.0, started + 1.45 * T - time.monotonic()))
    holder.release()
    thread.join(timeout=15)
    assert result, "W's acquire never returned"
    if result[0]:
        w.release()
    for waiter in waiters:
        waiter.join(timeout=10)
    return result[0], calls


def test_one_deadline_across_several_wakeups(
    sessions: Callable[..., Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    acquired, calls = _deadline_scenario(sessions, monkeypatch, per_wake=False)
    assert calls >= 3  # woken more than once before giving up
    assert acquired is False


def test_deadline_check_catches_a_per_wakeup_timeout(
    sessions: Callable[..., Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the deadline renewed on every wake-up, W outlives its timeout and
    # gets the lock when A releases: the check above would fail.
    acquired, calls = _deadline_scenario(sessions, monkeypatch, per_wake=True)
    assert calls >= 3
    assert acquired is True


# -- tokens, holders, re-acquire ---------------------------------------------------


def test_token_strictly_increases_across_successive_holders(
    sessions: Callable[..., Session],
) -> None:
    a, b = sessions().lock(NAME), sessions().lock(NAME)
    tokens = []
    for lock in (a, b, a, b, a):
        with lock as held:
            tokens.append(held.token)
    assert all(x < y for x, y in itertools.pairwise(tokens))
    with pytest.raises(LockNotHeldError):
        _ = a.token


def test_ensure_held_passes_while_held_and_refuses_after_release(
    sessions: Callable[..., Session],
) -> None:
    lock = sessions().lock(NAME)
    with pytest.raises(LockNotHeldError):
        lock.ensure_held()
    with lock:
        lock.ensure_held()
        assert lock.is_held
    with pytest.raises(LockNotHeldError):
        lock.ensure_held()
    with pytest.raises(LockNotHeldError):
        lock.release()


def test_context_manager_returns_the_lock_itself(sessions: Callable[..., Session]) -> None:
    lock = sessions().lock(NAME)
    with lock as held:
        assert held is lock
        assert isinstance(held.token, int)
    assert not lock.is_held


def test_reacquire_after_release(sessions: Callable[..., Session]) -> None:
    lock = sessions().lock(NAME)
    assert lock.acquire()
    first = lock.token
    lock.release()
    assert lock.acquire(timeout=5)
    assert lock.token > first
    lock.release()


def test_reentrancy_is_opt_in(sessions: Callable[..., Session]) -> None:
    session = sessions()
    plain = session.lock(NAME)
    with plain, pytest.raises(zkflock.ConfigError, match="reentrant"):
        plain.acquire()
    counted = session.lock(NAME, reentrant=True)
    with counted, counted:
        pass
    other = sessions().lock(NAME)
    assert other.acquire(blocking=False)  # the counter reached zero: released
    other.release()


def test_holders_show_host_pid_and_state(
    sessions: Callable[..., Session], spawner: Spawner, zk_hosts: str
) -> None:
    victim = spawner.start(
        "hold", "--hosts", zk_hosts, "--name", NAME, "--session-timeout", "1.0"
    )
    assert victim.stdout is not None
    line = victim.stdout.readline()
    assert line.startswith("held "), spawner.stderr(0)
    token = int(line.split()[1])

    session = sessions()
    waiter = session.lock(NAME)
    thread = threading.Thread(target=waiter.acquire, kwargs={"timeout": 20}, daemon=True)
    thread.start()
    wait_until(lambda: len(session.holders(NAME)) == 2, 10, "the waiter queued")
    first, second = session.holders(NAME)
    assert (first.state, first.pid, first.token, first.lock) == ("holding", victim.pid, token, NAME)
    assert first.host == socket.gethostname()
    assert first.kind == "exclusive"
    assert (second.state, second.pid) == ("waiting", os.getpid())
    assert second.token > first.token
    # The process start tells a holder apart from a later process reusing its pid:
    # the victim started after this test process, and neither in the future.
    assert first.process_start is not None
    assert second.process_start is not None
    assert second.process_start <= first.process_start <= time.time()
    victim.kill()
    thread.join(timeout=30)
    assert waiter.is_held
    (only,) = session.holders(NAME)
    assert (only.state, only.pid) == ("holding", os.getpid())
    waiter.release()
    assert session.holders(NAME) == []


# -- watches: none left on a vanished node ------------------------------------------


def _watched(zk_server: LocalZooKeeper, zk_hosts: str) -> set[str]:
    from _family_workers import watchers

    return set(watchers(zk_server, "/" + zk_hosts.split("/", 1)[1]))


def test_watching_a_vanished_node_leaves_no_watch_on_the_server(
    sessions: Callable[..., Session], zk_server: LocalZooKeeper, zk_hosts: str,
    kazoo_client: KazooClient,
) -> None:
    # The predecessor may be gone by the time its watch is set: getData fails
    # on it and leaves nothing, where an exists watch would wait for its
    # re-creation for the session's whole life.
    zk = sessions()
    with zk.lock(NAME) as held:
        (path,) = held.node_paths()
    assert zk.zk.watch([path], lambda deleted: None) is False  # gone: look again
    assert path not in _watched(zk_server, zk_hosts)
    # The check can fail: kazoo's exists watch on the same vanished path stays.
    kazoo_client.exists(path, watch=lambda event: None)
    assert path in _watched(zk_server, zk_hosts)


def test_handoffs_leave_no_watch_behind(
    sessions: Callable[..., Session], zk_server: LocalZooKeeper, zk_hosts: str
) -> None:
    holder = sessions().lock(NAME)
    assert holder.acquire()
    waiters = [sessions().lock(NAME) for _ in range(3)]
    threads = [threading.Thread(target=w.acquire, daemon=True) for w in waiters]
    for n, thread in enumerate(threads):
        thread.start()
        wait_until(lambda n=n: len(holder.holders()) == n + 2, 10, "the waiter to queue")
    wait_until(lambda: len(_watched(zk_server, zk_hosts)) == 3, 10, "three watches")
    current = holder
    for waiter, thread in zip(waiters, threads, strict=True):
        current.release()
        thread.join(10)
        current = waiter
    current.release()
    assert _watched(zk_server, zk_hosts) == set()
