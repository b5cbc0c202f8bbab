"""The Prometheus observer: scraped over HTTP after a known sequence on real ZooKeeper."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from zkflock import Session, StaleTokenError
from zkflock.metrics import PrometheusObserver, serve

HOLD = 0.2  # one hold of at least this long, so the hold histogram has a known floor


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` over HTTP, as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


@pytest.fixture
def served() -> Iterator[tuple[PrometheusObserver, int]]:
    """An observer on a registry of its own, served on a free loopback port."""
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    server, thread = serve(0, addr="127.0.0.1", registry=registry)
    try:
        yield observer, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _expire(session: Session, hosts: str) -> None:
    """Expire ``session`` as kazoo's harness does (tests/test_faults.py)."""
    other = KazooClient(hosts, client_id=session.zk.kazoo.client_id, timeout=1.0)
    other.start(timeout=10)
    other.stop()
    other.close()


def _until(predicate: Callable[[], bool], what: str, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {bound} s waiting for {what}")
        threading.Event().wait(0.05)


def test_scrape_carries_exactly_the_counts_of_a_known_sequence(
    served: tuple[PrometheusObserver, int], sessions: Callable[..., Session], zk_hosts: str,
    kazoo_client: KazooClient, tmp_path: Path,
) -> None:
    observer, port = served
    zk = sessions(metrics=observer, session_timeout=2.0, root=str(tmp_path))
    other = sessions()
    for i in range(3):  # three acquires; the last is held HOLD seconds
        with zk.lock("a"):
            if i == 2:
                time.sleep(HOLD)
    blocker = other.lock("b")
    assert blocker.acquire()
    assert zk.lock("b").acquire(timeout=0.1) is False  # a timeout
    blocker.release()
    shared = zk.shared_file("data/data.txt")
    shared.append("one\n")  # a fenced commit, accepted (its lock: one more acquire)
    with pytest.raises(StaleTokenError):
        _edit_after_losing_the_lock(zk, kazoo_client)  # and one refused
    doomed = zk.lock("e")
    assert doomed.acquire()
    during = scrape(port)
    _expire(zk, zk_hosts)  # a lost lock
    _until(lambda: not doomed.is_held and zk.connected, "the loss and the reconnect")
    _until(lambda: scrape(port)[("zkflock_lock_lost_total", labels(kind="exclusive"))] == 1,
           "the loss in the metrics")
    m = scrape(port)

    ex = labels(kind="exclusive")
    assert during[("zkflock_locks_held", ex)] == 1
    # 3 of "a", 2 of the file's lock (append, edit), 1 of "e".
    assert m[("zkflock_lock_acquires_total", labels(kind="exclusive", outcome="acquired"))] == 6
    assert m[("zkflock_lock_acquires_total", labels(kind="exclusive", outcome="timed_out"))] == 1
    assert m[("zkflock_lock_acquires_total", labels(kind="exclusive", outcome="cancelled"))] == 0
    assert m[("zkflock_lock_lost_total", ex)] == 1
    assert m[("zkflock_locks_held", ex)] == 0
    assert m[("zkflock_locks_waiting", ex)] == 0
    # Histograms: 6 grants waited for, 5 releases (the lost lock is no release).
    assert m[("zkflock_lock_wait_seconds_count", ex)] == 6
    assert m[("zkflock_lock_hold_seconds_count", ex)] == 5
    assert m[("zkflock_fenced_commits_total", labels(outcome="accepted"))] == 1
    assert m[("zkflock_fenced_commits_total", labels(outcome="stale"))] == 1
    assert m[("zkflock_fenced_commits_total", labels(outcome="failed"))] == 0
    assert m[("zkflock_fenced_commit_seconds_count", labels(outcome="stale"))] == 1
    assert m[("zkflock_lock_hold_seconds_sum", ex)] >= HOLD
    # 5 holds, one of them HOLD long: at most 4 in the buckets below HOLD.
    _assert_plausible_histogram(m, "zkflock_lock_hold_seconds", ex, at_most_below=(HOLD, 4))
    _assert_plausible_histogram(m, "zkflock_lock_wait_seconds", ex)
    # The session: lost, then connected again under a new session.
    assert m[("zkflock_session_state", labels(state="connected"))] == 1
    assert m[("zkflock_session_state", labels(state="lost"))] == 0
    assert m[("zkflock_session_state_changes_total", labels(state="lost"))] >= 1
    # Names stay out of the labels unless asked for: they can be unbounded.
    assert not any(dict(lab).get("lock") for _name, lab in m)


def _edit_after_losing_the_lock(zk: Session, kazoo_client: KazooClient) -> None:
    with zk.shared_file("data/data.txt").edit() as doc:
        (holder,) = zk.holders("data/data.txt")
        kazoo_client.delete(f"{zk.lock_path('data/data.txt')[1]}/{holder.id}")
        doc.text += "stale\n"


def _assert_plausible_histogram(
    m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
    base: tuple[tuple[str, str], ...], at_most_below: tuple[float, int] | None = None,
) -> None:
    buckets = sorted(
        (float(dict(lab)["le"]), value) for (sample, lab), value in m.items()
        if sample == f"{name}_bucket" and tuple(p for p in lab if p[0] != "le") == base
    )
    counts = [v for _le, v in buckets]
    assert counts == sorted(counts), f"{name}: buckets are not cumulative: {buckets}"
    assert buckets[-1] == (float("inf"), m[(f"{name}_count", base)])
    assert m[(f"{name}_sum", base)] >= 0
    if at_most_below is not None:  # e.g. the HOLD-long hold is in no bucket below HOLD
        bound, most = at_most_below
        assert max(v for le, v in buckets if le < bound) <= most


def test_lock_names_label_only_when_asked(
    sessions: Callable[..., Session],
) -> None:
    registry = CollectorRegistry()
    zk = sessions(metrics=PrometheusObserver(registry, lock_names=True))
    with zk.read_lock("reports/q3.csv"):
        pass
    value = registry.get_sample_value(
        "zkflock_lock_acquires_total",
        {"kind": "read", "lock": "reports/q3.csv", "outcome": "acquired"})
    assert value == 1


def test_commit_outcomes_are_counted_by_outcome() -> None:
    # The observer's own arithmetic, no server: the fenced-file code reports
    # commits (the real-ZooKeeper refused commit is in the files tests).
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    for outcome in ("accepted", "accepted", "stale", "failed"):
        observer.committed("data/data.txt", outcome, 0.01)
    counts = {o: registry.get_sample_value("zkflock_fenced_commits_total", {"outcome": o})
              for o in ("accepted", "stale", "failed")}
    assert counts == {"accepted": 2, "stale": 1, "failed": 1}
    assert registry.get_sample_value(
        "zkflock_fenced_commit_seconds_count", {"outcome": "stale"}) == 1


# -- the no-op path imports nothing of Prometheus ---------------------------------

_LOCK_CYCLE = """
import sys
{prelude}
import zkflock
with zkflock.connect({hosts!r}, root="/") as zk:
    with zk.lock("light"):
        pass
print("prometheus_client" in sys.modules)
"""


def _imports_prometheus(hosts: str, prelude: str = "") -> bool:
    code = _LOCK_CYCLE.format(prelude=prelude, hosts=hosts)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_the_noop_observer_path_never_imports_prometheus_client(zk_hosts: str) -> None:
    assert _imports_prometheus(zk_hosts) is False
    # The checker can fire: a variant whose import chain pulls prometheus_client
    # in (as a metrics module importing it at the top would) is caught.
    assert _imports_prometheus(zk_hosts, prelude="import prometheus_client") is True


def test_without_prometheus_client_the_observer_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from zkflock import ConfigError\n"
        "from zkflock.metrics import PrometheusObserver\n"
        "try:\n    PrometheusObserver()\n"
        "except ConfigError as exc:\n    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "refused:" in out.stdout
    assert "pip install 'zkflock[metrics]'" in out.stdout


def test_observer_benchmark_smoke(zk_hosts: str) -> None:
    # The quick form of `zkflock bench observer`: every figure is there and sane.
    from zkflock._bench.scenarios import SCENARIOS, BenchConfig

    result = SCENARIOS["observer"](zk_hosts, BenchConfig.quick())
    assert set(result["ratios"]) == {
        f"{k}{r}" for k in ("empty", "prometheus")
        for r in ("/noop p50", "/noop cpu p50", " events/noop cycle cpu")}
    assert all(0 < r < float("inf") for r in result["ratios"].values())
    assert result["events_per_cycle_us"]["noop"] == 0
    assert result["events_per_cycle_us"]["prometheus"] > 0
    exporter = result["exporter"]
    assert exporter["locks"] == 20  # each with one holder and two waiters
    # The namespace's listing, one multiRead of the (< 256) lock parents'
    # listings and one of the 40 node reads.
    assert exporter["requests_per_read"] == 3
