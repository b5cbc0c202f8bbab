"""The cluster's locks as Prometheus metrics: a custom collector over snapshots.

A scrape turns one :class:`Snapshot` into metric families (prometheus_client's
custom-collector pattern), so everything one scrape shows was read together;
nothing is mutated from a thread between scrapes. ZooKeeper is read at most
once per ``interval``: scrapes within it (two Prometheus servers, a person with
curl) are served from the last snapshot, and no scrape means no reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from zkflock._errors import ConfigError, ZkflockError
from zkflock._observe.snapshot import GrantMemory, Snapshot, read_snapshot

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from zkflock._session import Session

log = logging.getLogger("zkflock")


def _prometheus_core() -> Any:
    try:
        from prometheus_client import metrics_core
    except ImportError as exc:
        raise ConfigError("zkflock exporter needs the prometheus_client package: "
                          "pip install 'zkflock[metrics]'") from exc
    return metrics_core


def families(snapshot: Snapshot | None, up: bool) -> list[Metric]:
    """The metric families of one snapshot (None: ZooKeeper could not be read)."""
    core = _prometheus_core()
    gauge = core.GaugeMetricFamily
    out = [gauge("zkflock_exporter_up",
                 "1 if the last read of ZooKeeper succeeded, else 0.", value=1 if up else 0)]
    if snapshot is None:
        return out
    holders = gauge("zkflock_lock_holders", "Holders of each lock, by kind.",
                    labels=("lock", "kind"))
    waiters = gauge("zkflock_lock_waiters", "Waiters queued for each lock, by kind.",
                    labels=("lock", "kind"))
    held_age = gauge("zkflock_lock_holder_age_seconds",
                     "How long the oldest holder has held each lock (an upper bound "
                     "for one that waited: see zkflock's README).", labels=("lock",))
    wait_age = gauge("zkflock_lock_oldest_waiter_age_seconds",
                     "How long the oldest waiter of each lock has waited.", labels=("lock",))
    now = snapshot.taken_at
    for lock in snapshot.locks:
        for kind in sorted(lock.holders.keys() | lock.waiters.keys()):
            holders.add_metric((lock.name, kind), lock.holders.get(kind, 0))
            waiters.add_metric((lock.name, kind), lock.waiters.get(kind, 0))
        if lock.holder_since is not None:
            held_age.add_metric((lock.name,), max(0.0, now - lock.holder_since))
        if lock.waiter_since is not None:
            wait_age.add_metric((lock.name,), max(0.0, now - lock.waiter_since))
    out += [holders, waiters, held_age, wait_age]
    out.append(gauge("zkflock_lock_queues", "Locks with a queue (holders or waiters) now.",
                     value=len(snapshot.locks)))
    out.append(gauge("zkflock_exporter_read_seconds",
                     "Seconds the last read of ZooKeeper took.", value=snapshot.seconds))
    out.append(gauge("zkflock_exporter_read_requests",
                     "ZooKeeper requests of the last read.", value=snapshot.requests))
    return out


class ClusterCollector:
    """Registered on a prometheus_client registry: every lock under the
    session's namespace, read at most once per ``interval`` seconds."""

    def __init__(self, session: Session, *, interval: float,
                 read: Callable[[Session, GrantMemory], Snapshot] = read_snapshot) -> None:
        self._session = session
        self._interval = interval
        self._read = read
        self._memory = GrantMemory()
        self._mutex = threading.Lock()  # concurrent scrapes share one read
        self._snapshot: Snapshot | None = None
        self._up = False
        self._read_at: float | None = None
        self.reads = 0

    def describe(self) -> list[Metric]:
        # Registering calls describe(), else collect(): no ZooKeeper read then.
        return []

    def latest(self) -> tuple[Snapshot | None, bool]:
        """The snapshot to serve, read again when older than the interval."""
        with self._mutex:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self._interval:
                self._read_at = now
                self.reads += 1
                try:
                    self._snapshot, self._up = self._read(self._session, self._memory), True
                except ZkflockError as exc:
                    # Served as zkflock_exporter_up 0; no stale lock state.
                    log.warning("reading the locks failed: %s", exc)
                    self._snapshot, self._up = None, False
            return self._snapshot, self._up

    def collect(self) -> Iterator[Metric]:
        snapshot, up = self.latest()
        yield from families(snapshot, up)


def cluster_registry(session: Session, interval: float) -> tuple[CollectorRegistry,
                                                                 ClusterCollector]:
    """A registry of its own holding only the cluster collector."""
    _prometheus_core()  # the clear error first, when prometheus_client is missing
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    collector = ClusterCollector(session, interval=interval)
    registry.register(collector)
    return registry, collector
