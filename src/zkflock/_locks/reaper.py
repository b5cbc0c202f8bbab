"""The session's worker thread: callbacks, and deleting our nodes until gone.

A node of ours that could not be deleted (the connection was down, the reply
was lost) must not stay: it would block every other contender for as long as
the session lives (kazoo #732). The reaper retries every such delete while
connected, and finds nodes of creates whose reply never came by their guid.
The same thread runs ``on_lost`` callbacks, so that a slow callback never
stalls kazoo's connection thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from zkflock._errors import ZkflockError
from zkflock._zk.client import ZkClient
from zkflock._zk.errors import Disconnected

log = logging.getLogger("zkflock")

REAP_INTERVAL = 0.5  # seconds between retries while something is left to delete


class Reaper:
    """Deletes doomed nodes, retrying while connected; runs deferred tasks."""

    def __init__(self, zk: ZkClient, connected: Callable[[], bool]) -> None:
        self._zk = zk
        self._connected = connected
        self._mutex = threading.Lock()
        self._paths: set[str] = set()
        self._guids: set[tuple[str, str]] = set()
        self._retries: list[Callable[[], bool]] = []
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="zkflock-session", daemon=True)
        self._thread.start()

    def doom(self, path: str) -> None:
        """Delete ``path``, retrying until it is gone."""
        with self._mutex:
            self._paths.add(path)
        self.kick()

    def doom_guid(self, parent: str, guid: str) -> None:
        """Delete whatever node under ``parent`` carries ``guid``."""
        with self._mutex:
            self._guids.add((parent, guid))
        self.kick()

    def retry(self, task: Callable[[], bool]) -> None:
        """Run ``task`` on every round while connected until it returns True."""
        with self._mutex:
            self._retries.append(task)
        self.kick()

    def submit(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    def kick(self) -> None:
        """Try the pending deletes now (e.g. on reconnecting)."""
        self._tasks.put(self._reap)

    def stop(self) -> None:
        self._tasks.put(None)
        self._thread.join(timeout=5)

    def _pending(self) -> bool:
        return bool(self._paths or self._guids or self._retries)

    def _run(self) -> None:
        while True:
            try:
                task = self._tasks.get(timeout=REAP_INTERVAL if self._pending() else None)
            except queue.Empty:
                task = self._reap
            if task is None:
                return
            try:
                task()
            except Exception:  # pragma: no cover - keep the worker alive
                log.exception("zkflock session task failed")

    def _reap(self) -> None:
        if not self._connected():
            return
        with self._mutex:
            paths = list(self._paths)
            guids = list(self._guids)
        for path in paths:
            try:
                self._zk.delete(path)
            except ZkflockError:
                continue
            with self._mutex:
                self._paths.discard(path)
        for parent, guid in guids:
            try:
                for child in self._zk.children(parent):
                    if guid in child:
                        self._zk.delete(f"{parent}/{child}")
            except Disconnected:
                continue
            except ZkflockError:
                pass  # the parent is gone, or we may not list it: nothing to delete
            with self._mutex:
                self._guids.discard((parent, guid))
        with self._mutex:
            retries, self._retries = self._retries, []
        left = [task for task in retries if not task()]
        with self._mutex:
            self._retries.extend(left)
