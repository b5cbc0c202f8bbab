"""Observers of zkflock's events: the interface, and (later) Prometheus.

``connect(..., metrics=observer)`` and ``Session(client=..., metrics=...)``
take an :class:`Observer`. The library calls its methods as things happen;
every method of this base class does nothing, so a subclass overrides only
what it wants, and the default observer (:data:`NOOP`) costs one attribute
look-up and one empty call per event. This module imports nothing heavy:
the Prometheus observer imports ``prometheus_client`` (the ``metrics``
extra) only when it is built.

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
from collections.abc import Callable

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


__all__ = ["COMMIT_OUTCOMES", "NOOP", "SESSION_STATES", "Observer", "safely"]
