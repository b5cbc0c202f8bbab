"""``Lock``: the public face of every lock kind.

``acquire`` owns the deadline, the re-entrancy counter, logging and the
clean-up on every failure path; the waiting itself is the one loop of
``waiting.QueueWaiting``, and a kind is only a node prefix plus the pure
decision of ``protocol``.

A :class:`Lock` holds one place in each of its queues: one queue for every
kind, several for ``lock_many`` (``many.MultiLock``), which only enqueues
differently and then waits queue by queue with this same loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from zkflock._errors import (
    ConfigError,
    ConnectError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    ZkflockError,
)
from zkflock._locks.protocol import EXCLUSIVE, SEMAPHORE
from zkflock._locks.waiting import KIND_NAMES, AcquireCancelledError, QueueWaiting, holder_data
from zkflock.metrics import NOOP, safely

if TYPE_CHECKING:
    from zkflock._locks.aio import AsyncLock
    from zkflock._locks.status import Holder
    from zkflock._session import Session

log = logging.getLogger("zkflock")

KIND_LABELS = {"x": "exclusive", "r": "read", "s": "semaphore"}
MAX_LEASES = 999_999  # what the node name's s<N> field can carry
__all__ = ["AcquireCancelledError", "Lock", "MAX_LEASES", "holder_data"]


class Lock(QueueWaiting):
    """A lock on one name; ``with`` returns this same object once held.

    >>> with zk.lock("data/data.txt", timeout=10) as held:   # doctest: +SKIP
    ...     held.ensure_held()
    ...     print(held.token)
    """

    def __init__(
        self,
        session: Session,
        name: str,
        *,
        kind: str = EXCLUSIVE,
        max_leases: int = 1,
        timeout: float | None = None,
        reentrant: bool = False,
        on_lost: Callable[[Lock], None] | None = None,
        purpose: str = "",
        label: str | None = None,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ConfigError(f"timeout must be >= 0 seconds or None, not {timeout}")
        if kind == SEMAPHORE and not (
            isinstance(max_leases, int) and 1 <= max_leases <= MAX_LEASES
        ):
            raise ConfigError(f"max_leases must be an integer 1..{MAX_LEASES}, not {max_leases!r}")
        self._session = session
        self._name, parent = session.lock_path(name)
        self._parents: tuple[str, ...] = (parent,)
        self._kind = kind
        self._leases = max_leases
        self._timeout = timeout
        self._reentrant = reentrant
        self._on_lost: list[Callable[[Lock], None]] = [on_lost] if on_lost else []
        self._purpose = purpose
        self._nodes: tuple[str, ...] = ()  # our node in each queue while held
        self._token: int | None = None
        self._epoch = -1
        self._count = 0
        self._lost_reason: str | None = None
        self._cancel = threading.Event()
        self._wakeup: threading.Event | None = None
        self._label = label or KIND_LABELS[kind]  # the kind as observers see it
        observer = session.observer
        self._observer = None if observer is NOOP else observer  # NOOP: no calls at all
        self._since = 0.0

    # -- public -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The normalised lock name."""
        return self._name

    @property
    def token(self) -> int:
        """The fencing token: the czxid of our node, strictly increasing per lock."""
        if self._token is None:
            raise LockNotHeldError(f"lock {self._name!r} is not held, so it has no token")
        return self._token

    @property
    def is_held(self) -> bool:
        """True while held and the session is known to be alive."""
        return bool(self._nodes) and self._session.is_live(self._epoch)

    @property
    def aio(self) -> AsyncLock:
        """This lock's asyncio face: ``await lock.aio.acquire()``."""
        from zkflock._locks.aio import AsyncLock

        return AsyncLock(self)

    def ensure_held(self) -> None:
        """Raise LockLostError unless the lock is held for certain right now."""
        if not self._nodes:
            if self._lost_reason:
                raise LockLostError(f"lock {self._name!r} was lost: {self._lost_reason}")
            raise LockNotHeldError(f"lock {self._name!r} is not held")
        if not self._session.is_live(self._epoch):
            raise LockLostError(
                f"lock {self._name!r} may be lost: {self._session.state_reason(self._epoch)}; "
                "stop writing and acquire it again"
            )

    def add_lost_callback(self, callback: Callable[[Lock], None]) -> None:
        self._on_lost.append(callback)

    def holders(self) -> list[Holder]:
        """Holders and waiters of this lock in queue order (of every name, for
        ``lock_many``): id, host, pid, kind, token, since, state."""
        from zkflock._locks.status import list_holders

        return [h for n in self.names for h in list_holders(self._session, n)]

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True once held, False when ``timeout`` passes first.

        ``timeout`` is how long to wait in seconds (None: the lock's default,
        itself None for no limit); ``blocking=False`` means do not wait.
        Raises AcquireCancelledError when :meth:`cancel` stops the wait.
        """
        if self._nodes:
            if not self._session.is_live(self._epoch):
                # Held, but maybe lost (suspended): give up the old place, so it
                # is deleted rather than leaked, before queueing again.
                self._release_all()
            elif not self._reentrant:
                raise ConfigError(
                    f"lock {self._name!r} is already held by this object; "
                    "pass reentrant=True to take it again"
                )
            else:
                self._count += 1
                return True
        wait = 0.0 if not blocking else (timeout if timeout is not None else self._timeout)
        started = time.monotonic()
        deadline = None if wait is None else started + wait
        if self._observer is not None:
            safely(self._observer.acquire_started, self._label, self._name)
        try:
            granted = self._acquire_queued(deadline)
        except (AcquireCancelledError, KeyboardInterrupt, SystemExit):
            self._report("cancelled", time.monotonic() - started)
            raise
        now = time.monotonic()
        if granted:
            self._since = now
        self._report("acquired" if granted else "timed_out", now - started)
        return granted

    def _report(self, event: str, seconds: float) -> None:
        if self._observer is not None:
            safely(getattr(self._observer, event), self._label, self._name, seconds)

    def _acquire_queued(self, deadline: float | None) -> bool:
        self._cancel.clear()
        self._lost_reason = None
        self._refuse_upgrade()
        epoch = self._session.epoch
        try:
            entries = self._enqueue(deadline)
        except LockTimeoutError:
            return False  # ZooKeeper stayed out of reach until the deadline
        paths = [f"{p}/{e.node}" for p, e in zip(self._parents, entries, strict=True)]
        try:
            granted = all(
                self._wait(parent, entry, deadline, epoch)
                for parent, entry in zip(self._parents, entries, strict=True)
            )
        except BaseException as exc:
            for path in paths:
                self._session.discard(path)
            if isinstance(exc, (KeyboardInterrupt, ZkflockError)):
                raise
            raise ConnectError(f"acquiring {self._name!r} failed: {exc}") from exc
        if not granted:
            for path in paths:
                self._session.discard(path)
            return False
        self._nodes = tuple(e.node for e in entries)
        self._token, self._count, self._epoch = entries[0].token, 1, epoch
        self._session.register_held(self)
        log.debug("acquired %s as %s (token %d)", self._name, self._nodes, self._token)
        return True

    def release(self) -> None:
        """Release one hold; the node goes with the last. Safe after a loss."""
        if not self._nodes:
            if self._lost_reason is not None:
                self._lost_reason = None
                return
            raise LockNotHeldError(f"lock {self._name!r} is not held, so it cannot be released")
        self._count -= 1
        if self._count > 0:
            return
        self._release_all()

    def cancel(self) -> None:
        """Make a waiting ``acquire`` in another thread give up (it raises
        AcquireCancelledError and deletes its node)."""
        self._cancel.set()
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    def __enter__(self) -> Lock:
        if not self.acquire():
            raise LockTimeoutError(self._name, self._timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._nodes and self._lost_reason is None:
            return  # released inside the block
        lost = not self._nodes or not self._session.is_live(self._epoch)
        reason = self._lost_reason or self._session.state_reason(self._epoch)
        self._release_all()
        self._lost_reason = None
        if lost and exc_type is None:
            raise LockLostError(
                f"lock {self._name!r} was lost while the block ran ({reason}); "
                "its work may have overlapped with another holder"
            )

    async def __aenter__(self) -> Lock:
        from zkflock._locks.aio import enter_async

        return await enter_async(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from zkflock._locks.aio import exit_async

        await exit_async(self, exc_type, exc, tb)

    async def acquire_async(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """:meth:`acquire` off the event loop; cancelling the task cancels the wait."""
        from zkflock._locks.aio import acquire_async

        return await acquire_async(self, blocking, timeout)

    async def release_async(self) -> None:
        """:meth:`release` off the event loop."""
        from zkflock._locks.aio import release_async

        await release_async(self)

    def __repr__(self) -> str:
        state = f"held, token {self._token}" if self._nodes else "not held"
        return f"<{type(self).__name__} {self._name!r} {KIND_NAMES[self._kind]} {state}>"

    # -- for the session ------------------------------------------------------

    def nodes_under(self, parent: str) -> Iterator[str]:
        for mine, node in zip(self._parents, self._nodes, strict=False):
            if mine == parent:
                yield node

    def forget_lost(self, reason: str) -> list[str]:
        """The session declared us lost: forget the nodes, return them for deletion."""
        paths = self._paths()
        if paths and self._observer is not None:
            safely(self._observer.lost, self._label, self._name, reason)
        self._nodes, self._token, self._count = (), None, 0
        self._lost_reason = reason
        return paths

    def notify_lost(self) -> None:
        for callback in list(self._on_lost):
            try:
                callback(self)
            except Exception:
                log.exception("on_lost callback for %s failed", self._name)

    def released_by_commit(self) -> None:
        """Our node was deleted by a transaction of ours (a fenced commit
        releases the lock with the same multi): forget it without a delete."""
        if self._nodes:
            self._report("released", time.monotonic() - self._since)
        self._nodes, self._token, self._count = (), None, 0
        self._session.unregister_held(self)

    def node_paths(self) -> list[str]:
        """Our node in each queue while held (empty otherwise): what a fenced
        commit checks still exists."""
        return self._paths()

    def _paths(self) -> list[str]:
        return [f"{p}/{n}" for p, n in zip(self._parents, self._nodes, strict=False)]

    def _release_all(self) -> None:
        paths = self._paths()
        if paths:
            self._report("released", time.monotonic() - self._since)
        self._nodes, self._token, self._count = (), None, 0
        self._session.unregister_held(self)
        self._session.discard_many(paths)  # lock_many's N deletes: one round trip
