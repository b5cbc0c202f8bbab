"""kazoo's threading handler, tuned for lock handoffs (inside the kazoo boundary).

:class:`OneSelectHandler` selects with one system call and runs a lock
waiter's watch (:class:`Wakeup`) on the connection thread itself.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from typing import Any

from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.states import EventType, WatchedEvent

log = logging.getLogger("zkflock")


class OneSelectHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler with one ``select(2)`` per ``select`` call.

    kazoo's connection thread selects before every read and write and once
    per loop turn (~9 times per acquire+release); the stock handler builds
    and closes a new epoll selector each time (``selector_select``: 4 system
    calls and ~24 µs of CPU here, ``select.select`` ~2 µs). ``zkflock bench
    hotpath`` measured the stock and this handler side by side. A descriptor
    past ``FD_SETSIZE`` (what the selector exists for) takes kazoo's way.
    """

    def select(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return select.select(*args, **kwargs)
        except ValueError:  # a descriptor past FD_SETSIZE (or a closed one)
            return super().select(*args, **kwargs)

    def dispatch_callback(self, callback: Any) -> None:
        """A lock waiter's watch (:class:`Wakeup`) runs at once on the
        connection thread, the rest on kazoo's callback thread: a handoff no
        longer waits for that thread to be scheduled (or freed) first."""
        if isinstance(callback.func, Wakeup):
            callback.func(*callback.args)
        else:
            super().dispatch_callback(callback)


class Wakeup:
    """A watch that only records the event and wakes a waiter: never blocks."""

    def __init__(self, on_event: Callable[[bool], None]) -> None:
        self._on_event = on_event

    def __call__(self, event: WatchedEvent) -> None:
        try:
            self._on_event(event.type == EventType.DELETED)
        except Exception:  # never into kazoo's connection loop
            log.exception("a lock waiter's wake-up failed")
