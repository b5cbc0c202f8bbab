"""A lock waiter's wake-up does not wait for kazoo's callback thread.

The watch that wakes a waiter runs on kazoo's connection thread
(``OneSelectHandler.dispatch_callback``): one thread switch less on every
handoff, and a callback thread kept busy (a slow listener, a status watch)
cannot hold up a handoff. Real ZooKeeper, two sessions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kazoo.protocol.states import Callback

from zkflock import Session


def test_a_waiter_is_woken_while_kazoos_callback_thread_is_busy(
    sessions: Callable[..., Session],
) -> None:
    holder, waiter = sessions(), sessions()
    held = holder.lock("wake")
    held.acquire()
    busy, release_busy = threading.Event(), threading.Event()

    def block() -> None:
        busy.set()
        release_busy.wait(60)

    handler = waiter.zk._client.handler
    handler.dispatch_callback(Callback("watch", block, ()))
    assert busy.wait(10)  # the waiter's callback thread is stuck from here on
    granted = threading.Event()

    def wait_for_it() -> None:
        with waiter.lock("wake", timeout=30):
            granted.set()

    thread = threading.Thread(target=wait_for_it)
    try:
        thread.start()
        while not waiter.holders("wake") or len(waiter.holders("wake")) < 2:
            time.sleep(0.01)  # until the waiter has queued
        held.release()
        # Before the change the grant waited for the callback thread: this
        # times out (30 s bound, not a timing assertion).
        assert granted.wait(30)
    finally:
        release_busy.set()
        thread.join(60)
