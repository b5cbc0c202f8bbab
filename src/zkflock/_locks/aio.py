"""The asyncio face of every lock kind.

The blocking parts (ZooKeeper round trips, waiting in the queue) run in a
worker thread (``asyncio.to_thread``), so the event loop keeps running while
a task waits, as filelock's ``AsyncFileLock`` does. Cancelling the awaiting
task cancels the underlying acquire: its node is deleted, and a grant that
raced with the cancellation is released again, so a cancelled task never
leaves the lock held.

The owner of a hold taken here is the awaiting task (not the worker thread,
which may differ between acquire and release): re-entrancy is counted per
task, as it is per thread for the blocking face.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from zkflock._errors import LockTimeoutError

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock

_CANCEL_POLL = 0.05  # seconds between cancel() calls until the thread gives up


async def acquire_async(lock: Lock, blocking: bool = True, timeout: float | None = None) -> bool:
    """``lock.acquire`` in a thread; cancelling the caller cancels the wait."""
    owner = asyncio.current_task()
    thread = asyncio.ensure_future(asyncio.to_thread(lock.acquire_as, owner, blocking, timeout))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        await _cancel_thread(lock, thread, owner)
        raise


async def _cancel_thread(lock: Lock, thread: asyncio.Future[bool], owner: object) -> None:
    # cancel() only reaches an acquire that is already waiting, and the thread
    # may not have started yet: repeat it until the thread has finished.
    while not thread.done():
        lock.cancel()
        await asyncio.wait({thread}, timeout=_CANCEL_POLL)
    if not thread.cancelled() and thread.exception() is None and thread.result():
        await asyncio.to_thread(lock.release_as, owner)  # granted just before the cancel


async def release_async(lock: Lock) -> None:
    """``lock.release`` in a thread (it deletes the node: one round trip)."""
    await asyncio.to_thread(lock.release_as, asyncio.current_task())


async def enter_async(lock: Lock) -> Lock:
    if not await acquire_async(lock):
        raise LockTimeoutError(lock.name, lock.timeout)
    return lock


async def exit_async(lock: Lock, exc_type: type[BaseException] | None) -> None:
    await asyncio.to_thread(lock.exit_as, asyncio.current_task(), exc_type)


class AsyncLock:
    """A lock's asyncio face: ``await acquire()``, ``await release()``,
    ``async with``. Get one from ``lock.aio``.

    >>> async with zk.lock("data/data.txt").aio as held:   # doctest: +SKIP
    ...     print(held.token)
    """

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    @property
    def lock(self) -> Lock:
        """The underlying (blocking) lock."""
        return self._lock

    @property
    def name(self) -> str:
        return self._lock.name

    @property
    def token(self) -> int:
        return self._lock.token

    @property
    def is_held(self) -> bool:
        return self._lock.is_held

    def ensure_held(self) -> None:
        self._lock.ensure_held()

    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return await acquire_async(self._lock, blocking, timeout)

    async def release(self) -> None:
        await release_async(self._lock)

    async def __aenter__(self) -> AsyncLock:
        await enter_async(self._lock)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await exit_async(self._lock, exc_type)
