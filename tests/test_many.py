"""lock_many on real ZooKeeper: all or none, one multi-transaction, and no
deadlock whatever order callers name the files in."""

# ruff: noqa: F811 - the shared fixtures are imported from _family_workers

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient

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


def test_oversized_lock_many_fails_fast_and_the_session_keeps_its_locks(
    sessions: Callable[[], Session], kazoo_client: KazooClient
) -> None:
    # 5,000 names of holder data are ~1.3 MB in one multi, over jute.maxbuffer:
    # the old core sent it, the server dropped the connection, kazoo resent it
    # for ever and every other lock of the session was lost meanwhile.
    zk = sessions()
    kept, reading = zk.lock("keep"), zk.read_lock("shared")
    assert kept.acquire()
    assert reading.acquire()
    names = [f"many/{n}" for n in range(5000)]
    many = zk.lock_many(names, timeout=30)
    with pytest.raises(ConfigError) as refused:
        many.acquire()
    message = str(refused.value)
    assert "jute.maxbuffer" in message
    assert "Nothing was sent" in message
    fit = int(re.search(r"at most ([0-9,]+) of these names fit", message)[1].replace(",", ""))
    assert 1000 < fit < 5000
    assert message.count("many/") <= 3  # a few names, not 5,000
    assert "and 4,997 more" in message
    assert not many.is_held
    kept.ensure_held()  # the session's other locks are untouched
    reading.ensure_held()
    assert zk.connected
    assert kazoo_client.get_children("/zkflock/locks/keep") != []
    assert not kazoo_client.exists("/zkflock/locks/many%2F0")  # nothing was created
    # What fits (the first names in sorted order) is taken, in one multi.
    with zk.lock_many(sorted(names)[:fit], timeout=30) as held:
        assert held.is_held
    kept.release()
    reading.release()


def test_batches_in_global_order_would_deadlock_which_is_why_one_multi_or_refusal(
    sessions: Callable[[], Session],
) -> None:
    # Why an oversized lock_many is refused rather than taken in batches: two
    # callers each taking their names in one global order, in batches that fit
    # a packet, deadlock when their batch boundaries differ. A takes {1, 2}
    # (its first batch); B's one batch {2, 3} queues behind A in 2 and first
    # in 3; A's second batch {3, 4} then waits for B in 3, while B waits for A
    # in 2 — and A keeps {1, 2} until its second batch is granted. Each batch
    # here is a real lock_many (one multi), as a batching lock_many would send.
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
