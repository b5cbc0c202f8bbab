"""Threads (or tasks) taking one lock object wait for it here, in arrival order.

One object is held by one owner at a time (DESIGN, "Who owns a lock"): the
others wait for it locally, FIFO, before queueing in ZooKeeper like any
contender. ``Turns`` is that local queue; the object's condition guards it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from zkflock._zk.client import remaining


class Turns:
    """The FIFO of owners waiting for one object, under its condition."""

    __slots__ = ("_cond", "_waiting")

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._waiting: deque[object] = deque()

    def take(
        self,
        free: Callable[[], bool],
        deadline: float | None,
        check_cancelled: Callable[[], None],
    ) -> bool:
        """Under the condition: wait until ``free()`` and no earlier caller
        waits. False at the deadline; ``check_cancelled()`` raises to give up."""
        ticket = object()
        self._waiting.append(ticket)
        try:
            while not (free() and self._waiting[0] is ticket):
                check_cancelled()
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._cond.wait(left)
            return True
        finally:
            self._waiting.remove(ticket)
            self._cond.notify_all()
