"""Observers of zkflock's events: the interface, and Prometheus metrics.

``connect(..., metrics=observer)`` and ``Session(client=..., metrics=...)``
take an :class:`Observer`. The library calls its methods as things happen;
every method of this base class does nothing, so a subclass overrides only
what it wants, and the default observer (:data:`NOOP`) costs one attribute
look-up per lock object (the core skips every call when it is NOOP). This
module imports nothing heavy: :class:`PrometheusObserver` imports
``prometheus_client`` (``pip install 'zkflock[metrics]'``) only when it is
built.

Kinds are ``"exclusive"``, ``"read"``, ``"write"``, ``"semaphore"`` and
``"many"``; names are the normalised lock names. An observer must be quick and
must not raise: the library logs and drops what an observer raises, so a
broken observer never costs a lock.

>>> class Printing(Observer):                                 # doctest: +SKIP
...     def acquired(self, kind, name, wait):
...         print(f"{kind} {name} after {wait:.3f} s")
>>> zkflock.connect(metrics=Printing())                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zkflock._errors import ConfigError

if TYPE_CHECKING:
    import threading

    from prometheus_client import CollectorRegistry

log = logging.getLogger("zkflock")

#: Outcomes of a fenced commit, as passed to :meth:`Observer.committed`.
COMMIT_OUTCOMES = ("accepted", "stale", "failed")
#: Session states, as passed to :meth:`Observer.session_state`.
SESSION_STATES = ("connected", "suspended", "lost")


class Observer:
    """Receives the library's events; every method here is a no-op."""

    def acquire_started(self, kind: str, name: str) -> None:
        """An ``acquire`` began waiting (or trying) for ``name``."""

    def acquired(self, kind: str, name: str, wait: float) -> None:
        """The lock was granted after ``wait`` seconds (re-entries excluded)."""

    def timed_out(self, kind: str, name: str, wait: float) -> None:
        """An acquire gave up: its timeout passed, or it was non-blocking."""

    def cancelled(self, kind: str, name: str, wait: float) -> None:
        """An acquire was cancelled (``cancel()``, a signal, a cancelled task)."""

    def failed(self, kind: str, name: str, wait: float) -> None:
        """An acquire ended with an error (ZooKeeper unreachable, a request
        refused, a self-deadlock refused): it no longer waits, and holds nothing."""

    def released(self, kind: str, name: str, held: float) -> None:
        """The lock was released after being held ``held`` seconds."""

    def lost(self, kind: str, name: str, reason: str) -> None:
        """A held lock was lost (session expired, connection cut too long)."""

    def committed(self, name: str, outcome: str, seconds: float) -> None:
        """A fenced commit of file ``name`` ended: ``outcome`` is one of
        :data:`COMMIT_OUTCOMES`; ``seconds`` is the whole write's duration."""

    def session_state(self, state: str) -> None:
        """The session's connection changed to one of :data:`SESSION_STATES`."""


#: The default observer: does nothing.
NOOP = Observer()


def safely(call: Callable[..., object], *args: object) -> None:
    """Call an observer's bound method, logging and dropping what it raises:
    an observer's bug must never cost the session a lock or a node."""
    try:
        call(*args)
    except Exception:  # the observer's bug is logged, not ours to raise
        log.exception("zkflock: metrics observer %r raised; event dropped", call)


#: Upper bounds (seconds) of the wait and hold histograms: a lock is waited
#: for and held from a millisecond (uncontended) to many minutes (a batch job).
TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 300.0, 1800.0)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigError(
            "Prometheus metrics need the prometheus_client package: "
            "pip install 'zkflock[metrics]'"
        ) from exc
    return prometheus_client


class _LockSeries:
    """The labelled children of one (kind[, lock]) label set."""

    __slots__ = ("acquired", "cancelled", "failed", "held", "hold", "lost", "timed_out",
                 "wait", "waiting")

    def __init__(self, owner: PrometheusObserver, labels: tuple[str, ...]) -> None:
        self.wait = owner._wait.labels(*labels)
        self.hold = owner._hold.labels(*labels)
        self.held = owner._held.labels(*labels)
        self.waiting = owner._waiting.labels(*labels)
        self.lost = owner._lost.labels(*labels)
        self.acquired = owner._acquires.labels(*labels, "acquired")
        self.timed_out = owner._acquires.labels(*labels, "timed_out")
        self.cancelled = owner._acquires.labels(*labels, "cancelled")
        self.failed = owner._acquires.labels(*labels, "failed")


class PrometheusObserver(Observer):
    """Prometheus metrics of this process's locks, fenced commits and sessions.

    >>> observer = PrometheusObserver()                        # doctest: +SKIP
    >>> zk = zkflock.connect(metrics=observer)                 # doctest: +SKIP
    >>> zkflock.metrics.serve(9464)       # doctest: +SKIP (a process with no HTTP server)

    Metrics go to ``registry`` (default: prometheus_client's ``REGISTRY``);
    build one observer per registry and share it between sessions. Lock
    metrics are labelled by ``kind``; ``lock_names=True`` adds a ``lock``
    label (the normalised name; ``lock_many`` joins its names) and a ``file``
    label to commits. Opt in only when the names are few: every name is a
    time series of its own for as long as the process lives.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        lock_names: bool = False,
        buckets: Sequence[float] = TIME_BUCKETS,
    ) -> None:
        prom = _prometheus()
        reg = prom.REGISTRY if registry is None else registry
        self._names = lock_names
        self._cache: dict[tuple[str, str], _LockSeries] = {}
        lock = ("kind", "lock") if lock_names else ("kind",)
        file = ("file", "outcome") if lock_names else ("outcome",)
        self._wait = prom.Histogram(
            "zkflock_lock_wait_seconds", "Seconds from acquire to grant, of granted acquires.",
            lock, buckets=buckets, registry=reg)
        self._hold = prom.Histogram(
            "zkflock_lock_hold_seconds", "Seconds a lock was held, from grant to release.",
            lock, buckets=buckets, registry=reg)
        self._acquires = prom.Counter(
            "zkflock_lock_acquires", "Acquires that ended, by outcome "
            "(acquired, timed_out, cancelled, failed).", (*lock, "outcome"), registry=reg)
        self._lost = prom.Counter(
            "zkflock_lock_lost", "Held locks lost (session expired or unreachable too long).",
            lock, registry=reg)
        self._held = prom.Gauge(
            "zkflock_locks_held", "Locks held now.", lock, registry=reg)
        self._waiting = prom.Gauge(
            "zkflock_locks_waiting", "Acquires waiting (or trying) now.", lock, registry=reg)
        self._commits = prom.Counter(
            "zkflock_fenced_commits", "Fenced commits, by outcome (accepted, stale, failed).",
            file, registry=reg)
        self._commit_time = prom.Histogram(
            "zkflock_fenced_commit_seconds", "Seconds of a whole fenced write, by outcome.",
            file, buckets=buckets, registry=reg)
        self._state = prom.Gauge(
            "zkflock_session_state", "1 for the state a session reported last, else 0.",
            ("state",), registry=reg)
        self._changes = prom.Counter(
            "zkflock_session_state_changes", "Connection state changes, by new state.",
            ("state",), registry=reg)
        for state in SESSION_STATES:
            self._state.labels(state).set(0)
            self._changes.labels(state)
        for outcome in COMMIT_OUTCOMES:
            if not lock_names:
                self._commits.labels(outcome)

    def _series(self, kind: str, name: str) -> _LockSeries:
        # prometheus_client's labels() costs a lock and a dict per call: each
        # event would pay it up to four times. Resolved once per label set.
        key = (kind, name) if self._names else (kind, "")
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _LockSeries(self, key[: 2 if self._names else 1])
        return found

    def acquire_started(self, kind: str, name: str) -> None:
        self._series(kind, name).waiting.inc()

    def acquired(self, kind: str, name: str, wait: float) -> None:
        s = self._series(kind, name)
        s.waiting.dec()
        s.held.inc()
        s.wait.observe(wait)
        s.acquired.inc()

    def timed_out(self, kind: str, name: str, wait: float) -> None:
        s = self._series(kind, name)
        s.waiting.dec()
        s.timed_out.inc()

    def cancelled(self, kind: str, name: str, wait: float) -> None:
        s = self._series(kind, name)
        s.waiting.dec()
        s.cancelled.inc()

    def failed(self, kind: str, name: str, wait: float) -> None:
        s = self._series(kind, name)
        s.waiting.dec()
        s.failed.inc()

    def released(self, kind: str, name: str, held: float) -> None:
        s = self._series(kind, name)
        s.held.dec()
        s.hold.observe(held)

    def lost(self, kind: str, name: str, reason: str) -> None:
        # The reason is free text: a label of it could grow without bound.
        s = self._series(kind, name)
        s.held.dec()
        s.lost.inc()

    def committed(self, name: str, outcome: str, seconds: float) -> None:
        labels = (name, outcome) if self._names else (outcome,)
        self._commits.labels(*labels).inc()
        self._commit_time.labels(*labels).observe(seconds)

    def session_state(self, state: str) -> None:
        for known in SESSION_STATES:
            self._state.labels(known).set(1 if known == state else 0)
        self._changes.labels(state).inc()


def serve(
    port: int, *, addr: str = "0.0.0.0", registry: CollectorRegistry | None = None
) -> tuple[Any, threading.Thread]:
    """Serve ``registry`` (default: prometheus_client's) on ``http://addr:port/metrics``
    from a daemon thread, for a process that has no HTTP server of its own.
    Port 0 picks a free port (``server.server_port``). Returns prometheus_client's
    ``(server, thread)``: ``server.shutdown(); server.server_close()`` stops it."""
    prom = _prometheus()
    server, thread = prom.start_http_server(
        port, addr=addr, registry=prom.REGISTRY if registry is None else registry)
    return server, thread


__all__ = [
    "COMMIT_OUTCOMES",
    "NOOP",
    "SESSION_STATES",
    "TIME_BUCKETS",
    "Observer",
    "PrometheusObserver",
    "safely",
    "serve",
]
