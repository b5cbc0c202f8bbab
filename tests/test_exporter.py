"""``zkflock exporter``: the cluster's locks on /metrics, read from real ZooKeeper."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from _workers import Spawner
from zkflock import Session
from zkflock._observe.exporter import ClusterCollector
from zkflock._observe.snapshot import GrantMemory, summarize_queue
from zkflock._zk.listing import MULTI_READ_OPS, list_children_multi, multi_requests, read_multi

BOUND = 30.0
NAME = "data/data.txt"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=BOUND) as reply:
        return parse(reply.read().decode())


def lock_labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {BOUND} s waiting for {what}")
        threading.Event().wait(0.05)


@pytest.fixture
def exporter(zk_hosts: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``zkflock exporter`` on a free loopback port, reading ZooKeeper on every scrape."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "exporter", "--port", "0",
         "--addr", "127.0.0.1", "--interval", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert found, f"the exporter did not say where it serves: {line!r}"
        yield proc, int(found.group(1))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=BOUND)


def test_exporter_shows_one_holder_and_two_waiters_of_other_processes(
    exporter: tuple[subprocess.Popen[str], int], spawner: Spawner, sessions: Callable[..., Session],
    zk_hosts: str,
) -> None:
    proc, port = exporter
    args = ("hold", "--hosts", zk_hosts, "--name", NAME, "--session-timeout", "1")
    holder = spawner.start(*args)
    assert holder.stdout is not None
    assert holder.stdout.readline().startswith("held")
    spawner.start(*args)
    spawner.start(*args)
    viewer = sessions()
    _until(lambda: len(viewer.holders(NAME)) == 3, "both waiters queued")

    m = scrape(port)
    ex = lock_labels(kind="exclusive", lock=NAME)
    assert m[("zkflock_exporter_up", ())] == 1
    assert m[("zkflock_lock_queues", ())] == 1
    assert m[("zkflock_lock_holders", ex)] == 1
    assert m[("zkflock_lock_waiters", ex)] == 2
    assert m[("zkflock_lock_holder_age_seconds", lock_labels(lock=NAME))] >= 0
    assert m[("zkflock_lock_oldest_waiter_age_seconds", lock_labels(lock=NAME))] >= 0
    # The namespace's listing, a multiRead listing the lock, a multiRead of the
    # holder's and the first waiter's node, whatever the queue's length.
    assert m[("zkflock_exporter_read_requests", ())] == 3

    holder.kill()  # no release: the server expires its session, the next one holds
    _until(lambda: scrape(port)[("zkflock_lock_waiters", ex)] == 1, "the handoff")
    m = scrape(port)
    assert m[("zkflock_lock_holders", ex)] == 1
    # The new holder waited, so it recorded no grant time: the exporter dates
    # the grant to the last read that saw it wait. Dated by its queued-at
    # instead, it would look older than the waiter queued after it.
    assert (m[("zkflock_lock_holder_age_seconds", lock_labels(lock=NAME))]
            < m[("zkflock_lock_oldest_waiter_age_seconds", lock_labels(lock=NAME))])
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=BOUND)
    assert proc.returncode == 0


def test_reads_at_most_once_per_interval_and_says_when_zookeeper_is_gone(
    sessions: Callable[..., Session],
) -> None:
    session = sessions()
    assert session.lock("x").acquire()
    collector = ClusterCollector(session, interval=3600.0)
    registry = CollectorRegistry()
    registry.register(collector)
    assert collector.reads == 0  # registering reads nothing
    assert registry.get_sample_value("zkflock_lock_holders", {"lock": "x", "kind": "exclusive"}
                                     ) == 1
    assert registry.get_sample_value("zkflock_exporter_up") == 1
    assert collector.reads == 1  # two scrapes, one read
    eager = ClusterCollector(session, interval=0.0)
    eager.latest()
    eager.latest()
    assert eager.reads == 2
    session.close()
    (up, *rest) = list(eager.collect())
    assert up.samples[0].value == 0  # ZooKeeper unreadable: up 0 and no stale lock state
    assert rest == []


@pytest.mark.parametrize(("children", "holders", "waiters"), [
    ([], None, None),
    (["x-" + "a" * 32 + "-0000000003", "x-" + "b" * 32 + "-0000000001"],
     {"exclusive": 1}, {"exclusive": 1}),
    (["r-" + "a" * 32 + "-0000000001", "r-" + "b" * 32 + "-0000000002",
      "x-" + "c" * 32 + "-0000000003", "r-" + "d" * 32 + "-0000000004"],
     {"shared": 2}, {"exclusive": 1, "shared": 1}),
    (["s2-" + "a" * 32 + f"-000000000{i}" for i in range(3)] + ["not-ours"],
     {"semaphore": 2}, {"semaphore": 1}),
])
def test_queue_summary_counts_holders_and_waiters_by_kind(
    children: list[str], holders: dict[str, int] | None, waiters: dict[str, int] | None
) -> None:
    summary = summarize_queue(children)
    if holders is None:
        assert summary is None
        return
    assert summary is not None
    assert (summary.holders, summary.waiters) == (holders, waiters)
    assert summary.first_holder is not None
    assert summary.first_waiter is not None


def test_grant_memory_dates_a_grant_only_after_seeing_the_node_wait() -> None:
    memory = GrantMemory()
    memory.update(waiting={"/l/b"}, holding={"/l/a"}, now=10.0)
    assert memory.granted_at("/l/a") is None  # first seen holding: unknown
    memory.update(waiting=set(), holding={"/l/b"}, now=20.0)
    assert memory.granted_at("/l/b") == 10.0  # granted after the read that saw it wait
    memory.update(waiting=set(), holding={"/l/b"}, now=30.0)
    assert memory.granted_at("/l/b") == 10.0  # kept while it holds
    memory.update(waiting=set(), holding=set(), now=40.0)
    assert memory.granted_at("/l/b") is None  # forgotten once gone


def test_multi_reads_in_chunks_and_give_none_for_missing_nodes(
    sessions: Callable[..., Session],
) -> None:
    session = sessions()
    lock = session.lock("x")
    assert lock.acquire()
    zk = session.zk
    _norm, parent = session.lock_path("x")
    (node,) = lock.node_paths()
    assert multi_requests(MULTI_READ_OPS + 1) == 2
    listed = list_children_multi(zk, [parent, parent + "-gone"] * (MULTI_READ_OPS // 2 + 1))
    assert len(listed) == MULTI_READ_OPS + 2  # two requests, answers in order
    assert listed[0] == [node.rsplit("/", 1)[1]]
    assert listed[1] is None
    first, missing = read_multi(zk, [node, parent + "/gone"])
    assert first is not None
    assert first.czxid == lock.token
    assert missing is None
