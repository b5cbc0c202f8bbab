"""``async with lock`` on ``Lock`` itself, without importing asyncio.

``Lock`` inherits this mixin, so it must be importable on the command's hot
path (``zkflock run``) where asyncio is never used: the asyncio machinery in
``aio`` is imported only when an ``async`` method is first awaited.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock


class AsyncFace:
    """``async with lock`` and ``await lock.acquire_async()`` on ``Lock``
    itself, through the same functions as :class:`AsyncLock`."""

    async def __aenter__(self) -> Lock:
        from zkflock._locks.aio import enter_async

        return await enter_async(self._as_lock())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from zkflock._locks.aio import exit_async

        await exit_async(self._as_lock(), exc_type)

    async def acquire_async(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """``acquire`` off the event loop; cancelling the task cancels the wait."""
        from zkflock._locks.aio import acquire_async

        return await acquire_async(self._as_lock(), blocking, timeout)

    async def release_async(self) -> None:
        """``release`` off the event loop."""
        from zkflock._locks.aio import release_async

        await release_async(self._as_lock())

    def _as_lock(self) -> Lock:
        return self  # type: ignore[return-value]  # mixed into Lock only
