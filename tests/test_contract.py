"""One contract suite, parametrized over every lock kind, against real ZooKeeper.

Each kind is a pair (holder, contender): the contender must be excluded while
the holder holds. "read-vs-write" is a writer holding against a reader.
"""

# ruff: noqa: F811 - the shared fixtures are imported from _family_workers

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
from zkflock._locks.core import LockCore
from zkflock._locks.state import Held

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


# -- every kind x every way of sharing, with the overlap detector ---------------
#
# Threads record enter/exit lines in the family's log format (the thread id
# in place of the pid), and the same detector reads them. The ways of
# sharing (DESIGN, "Who owns a lock"):
#   sessions       each thread its own session and lock object
#   threads        one session; each thread its own lock object
#   shared-object  one session; one (reentrant) object per role, shared by threads
#   nested         one session; each thread its own reentrant object, taken
#                  twice (with: with: pass) and the work done after the inner exit

SHARING = ["sessions", "threads", "shared-object", "nested"]
RECORD = {"exclusive": "x", "write": "x", "semaphore-1": "s", "many-1": "x"}


@pytest.fixture(params=SHARING)
def sharing(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def _record(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{threading.get_ident()} {line} {NAME}\n".encode())
    finally:
        os.close(fd)


def _inside(log: Path) -> int:
    inside: set[str] = set()
    for line in log.read_text().splitlines() if log.exists() else ():
        ident, what, _kind, _name = line.split()
        (inside.add if what == "enter" else inside.discard)(ident)
    inside.discard(str(threading.get_ident()))
    return len(inside)


def run_threads(
    kind: Kind, sharing: str, sessions: Callable[[], Session], log: Path, *,
    threads: int = 4, rounds: int = 3, company_wait: float = 0.0,
) -> list[BaseException]:
    """``threads`` threads take turns ``rounds`` times each; even threads use
    the holder's maker, odd ones the contender's. ``company_wait``: inside,
    wait that long for another thread to enter (how a broken variant is made
    to show its overlap; 0 for the real runs). Returns what the threads raised."""
    shared = sessions()
    roles = [kind.holder, kind.contender]
    objects = [make(shared, NAME, reentrant=True) for make in roles]
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def one(n: int) -> None:
        make = roles[n % 2]
        if sharing == "sessions":
            lock = make(sessions(), NAME)
        elif sharing == "threads":
            lock = make(shared, NAME)
        elif sharing == "shared-object":
            # One object for all, or one per role (the writer's, the readers').
            lock = objects[0 if kind.holder is kind.contender else n % 2]
        else:
            lock = make(shared, NAME, reentrant=True)
        recorded = "r" if make is _read else RECORD.get(kind.id, "x")
        start.wait(30)
        if company_wait and n % 2:
            # A broken variant's run: the even thread goes first, so that the
            # odd one meets the state its bug mishandles (a hold to join).
            wait_until(lambda: log.exists(), 30, "the first holder")
        for _ in range(rounds):
            with lock:
                if sharing == "nested":
                    with lock:
                        pass  # the inner exit must not release
                _record(log, f"enter {recorded}")
                deadline = time.monotonic() + company_wait
                while time.monotonic() < deadline and not _inside(log):
                    time.sleep(0.005)
                time.sleep(0.003)
                _record(log, f"exit {recorded}")

    def guarded(n: int) -> None:
        try:
            one(n)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(w.is_alive() for w in workers), "a thread never finished"
    return errors


def test_every_kind_excludes_in_every_way_of_sharing(
    kind: Kind, sharing: str, sessions: Callable[[], Session], tmp_path: Path
) -> None:
    log = tmp_path / "holds.log"
    assert run_threads(kind, sharing, sessions, log) == []
    problems, most = check(log)
    assert problems == []
    enters = [line for line in log.read_text().splitlines() if " enter " in line]
    assert len(enters) == 4 * 3
    if kind.id != "read-vs-write":
        assert most[NAME] == 1


def _exit_releases_everything(self: Lock, owner: object, exc_type: object) -> None:
    # Broken: the inner exit of a nested with releases the lock.
    while isinstance(self.state, Held) and self.state.owner is owner:
        self.release_as(owner)


def _session_is_the_owner(self: LockCore, parent: str, owner: object) -> set[str]:
    # Broken: every node the session holds counts as the caller's own, so a
    # reader of one thread is granted through another thread's write lock.
    return set(self._owned.get(parent, {}))


BROKEN = [
    ("nested", "exclusive", Lock, "exit_as", _exit_releases_everything),
    ("threads", "read-vs-write", LockCore, "own_nodes", _session_is_the_owner),
    ("shared-object", "exclusive", Lock, "_same_owner", lambda self, a, b: True),
]


@pytest.mark.parametrize(("how", "kind_id", "cls", "attr", "broken"), BROKEN,
                         ids=[f"{b[0]}-{b[3]}" for b in BROKEN])
def test_detector_catches_each_broken_way_of_sharing(
    how: str, kind_id: str, cls: type, attr: str, broken: object,
    sessions: Callable[[], Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each broken variant is the bug of issue 9 it stands for: released at the
    # inner exit; a read lock granted to another thread of the writer's
    # session; re-entry counted per object, not per thread.
    monkeypatch.setattr(cls, attr, broken)
    log = tmp_path / "holds.log"
    (kind,) = [k for k in KINDS if k.id == kind_id]
    # (A broken variant may also crash a thread, as the old core did.)
    run_threads(kind, how, sessions, log, threads=2, rounds=2, company_wait=1.0)
    problems, _ = check(log)
    assert problems


# -- ownership: per object, per thread ------------------------------------------------


def test_held_non_reentrant_object_false_for_nonblocking_and_timeout_config_error_blocking(
    kind: Kind, sessions: Callable[[], Session]
) -> None:
    lock = kind.holder(sessions(), NAME)
    assert lock.acquire()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(timeout=0.2) is False
    with pytest.raises(ConfigError, match="wait for itself"):
        lock.acquire()
    assert lock.is_held  # none of that cost the hold
    lock.release()
    assert not lock.is_held


def test_another_thread_waits_for_a_shared_object_then_takes_it(
    kind: Kind, sessions: Callable[[], Session]
) -> None:
    lock = kind.holder(sessions(), NAME, reentrant=True)
    assert lock.acquire()
    got: list[bool] = []
    other = threading.Thread(target=lambda: got.append(lock.acquire(timeout=30)), daemon=True)
    other.start()
    other.join(0.3)
    assert got == []  # waiting, not re-entering
    refused: list[LockNotHeldError] = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except LockNotHeldError as exc:
            refused.append(exc)

    elsewhere = threading.Thread(target=release_elsewhere)
    elsewhere.start()
    elsewhere.join(10)
    assert len(refused) == 1  # only the holding thread releases a reentrant hold
    assert "another thread" in str(refused[0])
    lock.release()
    other.join(30)
    assert got == [True]
    assert lock.is_held


def test_downgrade_and_refused_upgrade_are_decided_per_thread(
    sessions: Callable[[], Session],
) -> None:
    zk = sessions()
    write = zk.write_lock(NAME)
    assert write.acquire()
    mine = zk.read_lock(NAME)
    assert mine.acquire(timeout=5)  # the writer's own thread: a downgrade, at once
    theirs: list[bool] = []
    reader = zk.read_lock(NAME)
    thread = threading.Thread(target=lambda: theirs.append(reader.acquire(timeout=0.3)))
    thread.start()
    thread.join(10)
    assert theirs == [False]  # another thread of the same session waits for the writer
    write.release()
    mine.release()
    # Upgrade: this thread holds a read lock; its write lock would wait for itself.
    assert mine.acquire()
    with pytest.raises(ConfigError, match="wait for itself"):
        zk.write_lock(NAME).acquire()
    other_writer = zk.write_lock(NAME)
    granted: list[bool] = []
    thread = threading.Thread(target=lambda: granted.append(other_writer.acquire(timeout=30)))
    thread.start()
    thread.join(0.3)
    assert granted == []  # another thread's writer queues behind our reader
    mine.release()
    thread.join(30)
    assert granted == [True]
    other_writer.release()
