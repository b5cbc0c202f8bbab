"""What a lock object tells the session's observer (``zkflock.metrics``).

Every started acquire ends with exactly one event (acquired, timed_out,
cancelled or failed), or the waiting gauge drifts. With the NOOP observer no
call is made at all: this sits on every acquire's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from zkflock._locks.waiting import AcquireCancelledError
from zkflock.metrics import NOOP, Observer, safely

log = logging.getLogger("zkflock")

_CANCELS = (AcquireCancelledError, KeyboardInterrupt, SystemExit)


def ending_of(exc: BaseException) -> str:
    """The event that ends an acquire which raised ``exc``."""
    return "cancelled" if isinstance(exc, _CANCELS) else "failed"


def run_lost_callbacks(callbacks: Sequence[Callable[[Any], None]], lock: Any) -> None:
    """A lost lock's ``on_lost`` callbacks, on the session's worker thread;
    one that raises is logged and the others still run."""
    for callback in list(callbacks):
        try:
            callback(lock)
        except Exception:
            log.exception("on_lost callback for %s failed", lock.name)


class LockEvents:
    """One lock object's events, for the observer of its session."""

    __slots__ = ("_label", "_observer")

    def __init__(self, observer: Observer, label: str) -> None:
        self._observer = None if observer is NOOP else observer
        self._label = label

    def started(self, name: str) -> None:
        if self._observer is not None:
            safely(self._observer.acquire_started, self._label, name)

    def ended(self, event: str, name: str, started: float) -> None:
        """``event`` is acquired, timed_out, cancelled or failed."""
        if self._observer is not None:
            safely(getattr(self._observer, event), self._label, name,
                   time.monotonic() - started)

    def released(self, name: str, since: float) -> None:
        if self._observer is not None:
            safely(self._observer.released, self._label, name, time.monotonic() - since)

    def lost(self, name: str, reason: str) -> None:
        if self._observer is not None:
            safely(self._observer.lost, self._label, name, reason)
