"""lock_many on real ZooKeeper: all or none, one multi-transaction, and no
deadlock whatever order callers name the files in."""

# ruff: noqa: F811 - the shared fixtures are imported from _family_workers

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from _family_workers import (  # noqa: F401 - fixtures
    Spawner,
    check,
    family,
    wait_until,
)
from zkflock import ConfigError, InvalidNameError, MultiLock, Session

NAMES = ["a.txt", "b.txt", "c.txt", "d.txt"]


def test_four_processes_four_orders_fifty_rounds(family: Spawner) -> None:
    orders = [NAMES, NAMES[::-1], NAMES[1:] + NAMES[:1], [NAMES[2], NAMES[0], NAMES[3], NAMES[1]]]
    for order in orders:
        family.start("many", ",".join(order), rounds=50)
    family.run_all(timeout=100)  # all finish: no deadlock
    problems, most = check(family.log)
    assert problems == []
    assert most == dict.fromkeys(NAMES, 1)
    enters = [line for line in family.log.read_text().splitlines() if " enter " in line]
    assert len(enters) == 4 * 50 * 4


def test_one_multi_shares_one_token_across_queues(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    held = sessions().lock_many(["c.txt", "a.txt", "b.txt"])
    with held:
        paths = held.node_paths()
        assert len(paths) == 3
        # One transaction: every node has the same czxid, which is the token.
        czxids = {kazoo_client.exists(p).czxid for p in paths}  # type: ignore[union-attr]
        assert czxids == {held.token}


def test_all_or_none(sessions: Callable[[], Session]) -> None:
    observer = sessions()
    b = sessions().lock("b.txt")
    assert b.acquire()
    many = sessions().lock_many(["a.txt", "b.txt"], timeout=0.3)
    assert many.acquire(blocking=False) is False
    assert many.acquire() is False
    with pytest.raises(TimeoutError), many:
        pytest.fail("ran without the locks")
    # Nothing was left in either queue, and a.txt was never held.
    assert observer.holders("a.txt") == []
    assert len(observer.holders("b.txt")) == 1
    b.release()
    with many as held:
        assert held.is_held
        assert {h.lock for h in held.holders()} == {"a.txt", "b.txt"}


def test_waits_for_every_name_then_holds_all(sessions: Callable[[], Session]) -> None:
    a, c = sessions().lock("a.txt"), sessions().lock("c.txt")
    assert a.acquire()
    assert c.acquire()
    many = sessions().lock_many(["c.txt", "b.txt", "a.txt"], timeout=60)
    thread = threading.Thread(target=many.acquire, daemon=True)
    thread.start()
    observer = sessions()
    wait_until(lambda: len(observer.holders("b.txt")) == 1, 10, "the multi to queue")
    a.release()
    assert not many.is_held  # still waiting for c.txt
    c.release()
    thread.join(timeout=10)
    assert many.is_held
    assert sessions().lock("b.txt").acquire(blocking=False) is False
    many.release()
    assert all(observer.holders(n) == [] for n in NAMES)


def test_names_are_normalised_sorted_and_deduplicated(sessions: Callable[[], Session]) -> None:
    many = sessions().lock_many(["d.txt", "./a.txt", "a.txt", "x//y.txt"])
    assert isinstance(many, MultiLock)
    assert many.names == ("a.txt", "d.txt", "x/y.txt")
    with pytest.raises(ConfigError):
        sessions().lock_many([])
    with pytest.raises(ConfigError):
        sessions().lock_many("a.txt")
    with pytest.raises(InvalidNameError):
        sessions().lock_many(["ok.txt", "../escape"])


def test_reentrant_many_counts(sessions: Callable[[], Session]) -> None:
    many = sessions().lock_many(NAMES[:2], reentrant=True)
    assert many.acquire()
    assert many.acquire()
    many.release()
    many.ensure_held()
    many.release()
    assert not many.is_held


def test_release_deletes_every_node_even_when_one_is_already_gone(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    # The release is one multi of deletes, which is all or nothing: with one
    # node already gone it must fall back to deleting the others one by one.
    session = sessions()
    held = session.lock_many(NAMES)
    assert held.acquire()
    paths = held.node_paths()
    assert len(paths) == len(NAMES)
    kazoo_client.delete(paths[1])  # e.g. an admin broke one of the locks
    held.release()
    for path in paths:
        assert kazoo_client.exists(path) is None, path
    again = sessions().lock_many(NAMES)
    assert again.acquire(timeout=5)
    again.release()


GATE = "/zkflock/lock-many-gate"


def remove_empty_queues(client: KazooClient, prefix: str) -> None:
    """Delete the lock queues (containers) a big test made: ZooKeeper's
    container manager would otherwise remove them for minutes afterwards
    (10,000 a minute), moving the zxid under later tests."""
    base = "/zkflock/locks"
    pending = [client.delete_async(f"{base}/{child}") for child in client.get_children(base)
               if child.startswith(prefix)]
    for result in pending:
        with contextlib.suppress(NoNodeError):  # the container manager was first
            result.get(timeout=30)


def test_lock_many_of_10000_names_is_held_in_batches_and_the_session_keeps_its_locks(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    # 10,000 names of holder data are ~2.7 MB, more than one multi may carry
    # (jute.maxbuffer): they are queued in batches behind the gate. Before,
    # this was refused; before that, sent whole, it cost the session its locks.
    zk, other = sessions(), sessions()
    kept, reading = zk.lock("keep"), zk.read_lock("shared")
    assert kept.acquire()
    assert reading.acquire()
    blocker = other.lock("many/9999")  # in the last batch
    assert blocker.acquire()
    names = [f"many/{n}" for n in range(10_000)]
    many = zk.lock_many(names[::-1], timeout=1.0)
    assert many.acquire() is False  # timed out part-way: what it queued is gone
    assert zk.holders("many/0") == []
    assert len(zk.holders("many/9999")) == 1
    assert not kazoo_client.exists(GATE)
    kept.ensure_held()  # the session's other locks are untouched
    reading.ensure_held()
    blocker.release()
    many = zk.lock_many(names[::-1], timeout=120)
    assert many.acquire()
    paths = many.node_paths()
    assert len(paths) == 10_000
    czxids = [kazoo_client.exists(p).czxid for p in paths[::1000]]  # type: ignore[union-attr]
    assert len(set(czxids)) > 1  # several multis ...
    assert max(czxids) <= many.token  # ... and the token is the last one's
    assert not kazoo_client.exists(GATE)  # deleted once every batch was queued
    assert other.lock("many/5000").acquire(blocking=False) is False
    kept.ensure_held()
    reading.ensure_held()
    assert zk.connected
    many.release()  # the deletes go in multis that fit, too
    for path in paths[::500]:
        assert kazoo_client.exists(path) is None, path
    again = other.lock_many(["many/0", "many/9999"])
    assert again.acquire(blocking=False)
    again.release()
    kept.ensure_held()
    kept.release()
    reading.release()
    remove_empty_queues(kazoo_client, "many%2F")


def test_lock_many_that_cannot_fit_even_one_name_is_refused_before_sending(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    zk = sessions()
    kept = zk.lock("keep")
    assert kept.acquire()
    many = zk.lock_many([f"big/{n}" for n in range(10)], purpose="p" * 990_000)
    with pytest.raises(ConfigError) as refused:
        many.acquire()
    message = str(refused.value)
    assert "jute.maxbuffer" in message
    assert "Nothing was sent" in message
    assert "and 7 more" in message  # a few names, not all
    assert not kazoo_client.exists("/zkflock/locks/big%2F0")
    kept.ensure_held()
    assert zk.connected
    kept.release()


def test_a_lock_many_waits_while_the_gate_is_held(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    # The gate is what keeps batches deadlock-free: while a lock_many in
    # batches queues, no other lock_many's multi may commit (a lock_many that
    # ignored the gate would be granted here at once).
    zk = sessions()
    kazoo_client.ensure_path("/zkflock")
    kazoo_client.create(GATE, ephemeral=True)
    many = zk.lock_many(["g1", "g2"], timeout=0.5)
    assert many.acquire() is False
    assert zk.holders("g1") == []
    waiting = zk.lock_many(["g1", "g2"], timeout=30)
    thread = threading.Thread(target=waiting.acquire, daemon=True)
    thread.start()
    kazoo_client.delete(GATE)
    thread.join(timeout=10)
    assert waiting.is_held
    waiting.release()


def test_overlapping_lock_manys_in_batches_never_deadlock(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    # Two lock_many in batches (4,500 names each: two batches, boundaries in
    # different places) in opposite orders, and a small one across both,
    # from three sessions at once: all finish, and never overlap.
    first = [f"o/{n:05d}" for n in range(4500)]
    second = [f"o/{n:05d}" for n in range(1500, 6000)]
    small = ["o/01000", "o/03000", "o/05000"]
    holding: dict[str, str] = {}
    mutex = threading.Lock()
    errors: list[str] = []

    def take(who: str, names: list[str], rounds: int) -> None:
        lock = sessions().lock_many(names, timeout=120)
        for _ in range(rounds):
            if not lock.acquire():
                errors.append(f"{who} timed out")
                return
            with mutex:
                clash = [n for n in names if n in holding]
                holding.update(dict.fromkeys(names, who))
            if clash:
                errors.append(f"{who} overlaps on {clash[:3]}")
            time.sleep(0.02)  # widen the window another holder would overlap in
            with mutex:
                for n in names:
                    holding.pop(n, None)
            lock.release()

    threads = [threading.Thread(target=take, args=args, daemon=True) for args in
               [("first", first[::-1], 2), ("second", second, 1), ("small", small, 6)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    remove_empty_queues(kazoo_client, "o%2F")


def test_batches_without_the_gate_deadlock(
    sessions: Callable[[], Session],
) -> None:
    # Why lock_many's batches need the gate: two callers each taking their
    # names in one global order, in batches that fit a packet, deadlock when
    # their batch boundaries differ. A takes {1, 2}
    # (its first batch); B's one batch {2, 3} queues behind A in 2 and first
    # in 3; A's second batch {3, 4} then waits for B in 3, while B waits for A
    # in 2 — and A keeps {1, 2} until its second batch is granted. Each batch
    # here is a real lock_many (one multi), as batches without a gate would be.
    a, b, observer = sessions(), sessions(), sessions()
    first = a.lock_many(["n1", "n2"])
    assert first.acquire()
    other = b.lock_many(["n2", "n3"], timeout=60)
    waiting = threading.Thread(target=other.acquire, daemon=True)
    waiting.start()
    wait_until(lambda: len(observer.holders("n3")) == 1, 10, "B to queue in n2 and n3")
    second = a.lock_many(["n3", "n4"], timeout=1.0)
    assert second.acquire() is False  # A waits for B in n3 ...
    assert not other.is_held  # ... and B for A in n2: a cycle, broken only by a timeout
    # One multi for all of A's names (what lock_many does) has no such cycle:
    first.release()
    waiting.join(timeout=10)
    assert other.is_held
    whole = a.lock_many(["n1", "n2", "n3", "n4"], timeout=60)
    taker = threading.Thread(target=whole.acquire, daemon=True)
    taker.start()
    wait_until(lambda: len(observer.holders("n4")) == 1, 10, "A's one multi to queue")
    other.release()
    taker.join(timeout=10)
    assert whole.is_held
    whole.release()
