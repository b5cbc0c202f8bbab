"""``Lock``: the public face of every lock kind; the object owns the lock.

The owner of a lock is this object (and, for re-entrancy, the thread that
took it; the asyncio face uses the task), never the session (DESIGN, "Who
owns a lock"):

- Threads taking one object wait for it in FIFO order, locally, then queue
  in ZooKeeper like any other contender; two objects on one name queue two
  nodes and contend like two processes, whatever session they belong to.
- ``reentrant=True``: the holding thread may take it again; a count per
  thread, released at the outermost exit only.
- A held non-reentrant object: ``acquire(blocking=False)`` and
  ``acquire(timeout=t)`` give False (unless another thread releases it in
  time, as with ``threading.Lock``); a blocking ``acquire()`` from the
  holding thread, a certain self-deadlock, raises ConfigError at once.

The state is one value (``state``) swapped under the object's condition; the
I/O of an attempt is a ``waiting.Waiter`` composed with the kind's driver.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError, LockLostError, LockNotHeldError, LockTimeoutError
from zkflock._locks.async_face import AsyncFace
from zkflock._locks.core import Holding
from zkflock._locks.drivers import MAX_LEASES, Driver, driver_for
from zkflock._locks.events import LockEvents, ending_of, run_lost_callbacks
from zkflock._locks.protocol import EXCLUSIVE, SEMAPHORE
from zkflock._locks.state import IDLE, Held, Idle, LockState, Lost, Queued
from zkflock._locks.turns import Turns
from zkflock._locks.waiting import AcquireCancelledError, Granted, Waiter, holder_data

if TYPE_CHECKING:
    from zkflock._locks.aio import AsyncLock
    from zkflock._locks.status import Holder
    from zkflock._session import Session

log = logging.getLogger("zkflock")

__all__ = ["AcquireCancelledError", "Lock", "MAX_LEASES", "holder_data"]


class Lock(AsyncFace):
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
        driver: Driver | None = None,
    ) -> None:
        from zkflock._session import core_of

        if timeout is not None and timeout < 0:
            raise ConfigError(f"timeout must be >= 0 seconds or None, not {timeout}")
        if kind == SEMAPHORE and not (
            isinstance(max_leases, int) and 1 <= max_leases <= MAX_LEASES
        ):
            raise ConfigError(f"max_leases must be an integer 1..{MAX_LEASES}, not {max_leases!r}")
        self._core = core_of(session)
        self._driver = driver or driver_for(kind, max_leases)
        self._name, parent = self._core.lock_path(name)
        self._names: tuple[str, ...] = (self._name,)
        self._parents: tuple[str, ...] = (parent,)
        self._timeout = timeout
        self._reentrant = reentrant
        self._on_lost: list[Callable[[Lock], None]] = [on_lost] if on_lost else []
        self._purpose = purpose
        self._cond = threading.Condition(threading.Lock())
        self._state: LockState = IDLE
        self._turns = Turns(self._cond)  # owners waiting for this object, FIFO
        self._cancels = 0
        self._waiter: Waiter | None = None
        self._events = LockEvents(self._core.observer, self._driver.label)

    # -- what it is -----------------------------------------------------------

    @property
    def name(self) -> str:
        """The normalised lock name (for ``lock_many``: the first few names)."""
        return self._name

    @property
    def names(self) -> tuple[str, ...]:
        """Every normalised name this lock covers (one, except for ``lock_many``)."""
        return self._names

    @property
    def timeout(self) -> float | None:
        """The default timeout of ``acquire`` and ``with`` (None: no limit)."""
        return self._timeout

    @property
    def state(self) -> LockState:
        """The object's state: Idle, Queued, Held or Lost (``_locks.state``)."""
        return self._state

    @property
    def token(self) -> int:
        """The fencing token: the czxid of our node, strictly increasing per lock."""
        state = self._state
        if not isinstance(state, Held):
            raise LockNotHeldError(f"lock {self._name!r} is not held, so it has no token")
        return state.token

    @property
    def is_held(self) -> bool:
        """True while held and the session is known to be alive."""
        state = self._state
        return isinstance(state, Held) and self._core.is_live(state.epoch)

    @property
    def aio(self) -> AsyncLock:
        """This lock's asyncio face: ``await lock.aio.acquire()``."""
        from zkflock._locks.aio import AsyncLock

        return AsyncLock(self)

    def ensure_held(self) -> None:
        """Raise LockLostError unless the lock is held for certain right now."""
        state = self._state
        if isinstance(state, Lost):
            raise LockLostError(f"lock {self._name!r} was lost: {state.reason}")
        if not isinstance(state, Held):
            raise LockNotHeldError(f"lock {self._name!r} is not held")
        if not self._core.is_live(state.epoch):
            raise LockLostError(
                f"lock {self._name!r} may be lost: {self._core.state_reason(state.epoch)}; "
                "stop writing and acquire it again"
            )

    def node_paths(self) -> list[str]:
        """Our node in each queue while held (empty otherwise): what a fenced
        commit deletes, and so checks still exists."""
        state = self._state
        return list(state.paths) if isinstance(state, Held) else []

    def add_lost_callback(self, callback: Callable[[Lock], None]) -> None:
        self._on_lost.append(callback)

    def holders(self) -> list[Holder]:
        """Holders and waiters of this lock in queue order (of every name, for
        ``lock_many``): id, host, pid, kind, token, since, state."""
        from zkflock._locks.status import list_holders

        return [h for n in self._names for h in list_holders(self._core, n)]

    # -- acquire ----------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True once held, False when ``timeout`` passes first.

        ``timeout`` is how long to wait in seconds (None: the lock's default,
        itself None for no limit); ``blocking=False`` means do not wait.
        Raises AcquireCancelledError when :meth:`cancel` stops the wait, and
        ConfigError for a blocking acquire that would wait for itself.
        """
        return self.acquire_as(threading.current_thread(), blocking, timeout)

    def acquire_as(
        self, owner: object, blocking: bool = True, timeout: float | None = None
    ) -> bool:
        """:meth:`acquire` on behalf of ``owner`` (the asyncio face passes its task)."""
        wait = 0.0 if not blocking else (timeout if timeout is not None else self._timeout)
        started = time.monotonic()
        deadline = None if wait is None else started + wait
        cancels = self._cancels
        with self._cond:
            if self._reentered(owner, deadline):
                return True
            self._events.started(self._name)
            try:
                turn = self._turns.take(self._free, deadline, partial(self._check_cancel, cancels))
            except BaseException as exc:
                self._events.ended(ending_of(exc), self._name, started)
                raise
            if not turn:
                self._events.ended("timed_out", self._name, started)
                return False
            self._state = Queued(owner)
        return self._queue(owner, deadline, cancels, started)

    def _reentered(self, owner: object, deadline: float | None) -> bool:
        """Under the condition: True if ``owner`` already holds it and took it
        again. A hold that may be lost (suspended) is given up first, so its
        node is deleted rather than leaked."""
        state = self._state
        if not isinstance(state, Held) or not self._same_owner(state.owner, owner):
            return False
        if not self._core.is_live(state.epoch):
            self._drop(state)
            self._core.discard(state.paths)
            return False
        if self._reentrant:
            self._state = replace(state, count=state.count + 1)
            return True
        if deadline is None:
            raise ConfigError(
                f"lock {self._name!r} is already held by this thread, so a blocking acquire "
                "would wait for itself forever; pass reentrant=True to take it again, or a "
                "timeout to wait for another thread to release it"
            )
        return False

    def _same_owner(self, holder: object, owner: object) -> bool:
        return holder is owner

    def _free(self) -> bool:
        return isinstance(self._state, (Idle, Lost))

    def _check_cancel(self, cancels: int) -> None:
        if self._cancels != cancels:
            raise AcquireCancelledError(f"acquiring {self._name!r} was cancelled")

    def _queue(self, owner: object, deadline: float | None, cancels: int, started: float) -> bool:
        """The ZooKeeper part, outside the condition: queue, wait, then record."""
        waiter = Waiter(
            self._core, self._driver, self._names, self._parents, owner=owner,
            purpose=self._purpose, cancelled=lambda: self._cancels != cancels,
        )
        self._waiter = waiter
        try:
            granted = waiter.run(deadline)
        except BaseException as exc:
            self._set_state(IDLE)
            self._events.ended(ending_of(exc), self._name, started)
            raise
        finally:
            self._waiter = None
        if granted is None:
            self._set_state(IDLE)
            self._events.ended("timed_out", self._name, started)
            return False
        self._hold(owner, granted)
        self._events.ended("acquired", self._name, started)
        return True

    def _hold(self, owner: object, granted: Granted) -> None:
        paths, token, epoch = granted
        with self._cond:
            key = self._core.register(Holding(
                paths, owner, partial(self._session_lost, paths), self._release_on_close,
            ))
            self._state = Held(owner, 1, paths, token, epoch, time.monotonic(), key)
            self._cond.notify_all()
        log.debug("acquired %s as %s (token %d)", self._name, paths, token)

    def cancel(self) -> None:
        """Make a waiting ``acquire`` in another thread give up (it raises
        AcquireCancelledError and deletes its node)."""
        with self._cond:
            self._cancels += 1
            self._cond.notify_all()
        waiter = self._waiter
        if waiter is not None:
            waiter.wake()

    # -- release ----------------------------------------------------------------

    def release(self) -> None:
        """Release one hold; the node goes with the last. Safe after a loss."""
        self.release_as(threading.current_thread())

    def release_as(self, owner: object) -> None:
        """:meth:`release` on behalf of ``owner`` (the asyncio face passes its task)."""
        with self._cond:
            state = self._state
            if isinstance(state, Lost):
                self._state = IDLE  # the loss is acknowledged
                self._cond.notify_all()
                return
            if not isinstance(state, Held):
                raise LockNotHeldError(
                    f"lock {self._name!r} is not held, so it cannot be released"
                )
            if self._reentrant and not self._same_owner(state.owner, owner):
                raise LockNotHeldError(
                    f"lock {self._name!r} is held by another thread; a reentrant lock is "
                    "released by the thread that took it"
                )
            if state.count > 1:
                self._state = replace(state, count=state.count - 1)
                return
            self._drop(state)
        self._core.discard(state.paths)  # lock_many's N deletes: one multi

    def _drop(self, state: Held) -> None:
        """Under the condition: forget the hold and tell the observer."""
        self._state = IDLE
        self._core.unregister(state.key)
        self._cond.notify_all()
        self._events.released(self._name, state.since)

    def released_by_commit(self) -> None:
        """Our node was deleted by a transaction of ours (a fenced commit
        releases the lock with the same multi): forget it without a delete."""
        with self._cond:
            state = self._state
            if isinstance(state, Held):
                self._drop(state)

    def _release_on_close(self, delete: bool) -> None:
        with self._cond:
            state = self._state
            if not isinstance(state, Held):
                return
            self._drop(state)
        if delete:
            self._core.discard(state.paths)

    def _session_lost(self, paths: tuple[str, ...], reason: str) -> Callable[[], None] | None:
        """The core declared the session's locks lost (its nodes are being
        deleted): become Lost, and return the callbacks to run."""
        with self._cond:
            state = self._state
            if not isinstance(state, Held) or state.paths is not paths:
                return None
            self._state = Lost(reason)
            self._cond.notify_all()
        self._events.lost(self._name, reason)
        return partial(run_lost_callbacks, self._on_lost, self)

    # -- with ---------------------------------------------------------------------

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
        self.exit_as(threading.current_thread(), exc_type)

    def exit_as(self, owner: object, exc_type: type[BaseException] | None) -> None:
        """The end of a ``with`` block of ``owner``: release one hold; raise
        LockLostError if the lock was (or may be) lost while the block ran
        and the block raised nothing itself."""
        gone: tuple[str, ...] = ()
        with self._cond:
            state = self._state
            if isinstance(state, Lost):
                self._state = IDLE
                self._cond.notify_all()
                reason = state.reason
            elif isinstance(state, Held) and self._same_owner(state.owner, owner):
                live = self._core.is_live(state.epoch)
                reason = "" if live else self._core.state_reason(state.epoch)
                if state.count > 1:
                    self._state = replace(state, count=state.count - 1)
                else:
                    self._drop(state)
                    gone = state.paths
            else:
                return  # released inside the block (and maybe taken by another thread)
        self._core.discard(gone)
        if reason and exc_type is None:
            raise LockLostError(
                f"lock {self._name!r} was lost while the block ran ({reason}); "
                "its work may have overlapped with another holder"
            )

    # -- helpers ------------------------------------------------------------------

    def _set_state(self, state: LockState) -> None:
        with self._cond:
            self._state = state
            self._cond.notify_all()

    def __repr__(self) -> str:
        state = self._state
        text = f"held, token {state.token}" if isinstance(state, Held) else "not held"
        return f"<{type(self).__name__} {self._name!r} {self._driver.label} {text}>"
