"""One waiting loop for every lock kind.

A kind is only a node prefix plus the pure decision of ``_protocol``; the loop
here does the I/O: queue (create and list, pipelined), decide, watch the
nodes the decision names, wait with one monotonic deadline for the whole
acquire, and clean up on every failure path.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from zkflock._client import Disconnected, Enqueued, NodeMissingError, new_guid, remaining
from zkflock._errors import (
    ConfigError,
    ConnectError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    SessionExpiredError,
    ZkflockError,
)
from zkflock._protocol import EXCLUSIVE, Decision, NotQueuedError, decide, node_prefix

if TYPE_CHECKING:
    from zkflock._session import Session

log = logging.getLogger("zkflock")

_KIND_NAMES = {"x": "exclusive", "r": "shared", "s": "semaphore"}


class AcquireCancelledError(ZkflockError):
    """A waiting acquire was cancelled from another thread."""

    exit_code = 4


def holder_data(kind: str, purpose: str, acquired: bool) -> bytes:
    """What a contender's node says about it: shown by ``zkflock status``."""
    now = time.time()
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "kind": _KIND_NAMES.get(kind, kind),
        "purpose": purpose,
        "queued_at": now,
        "acquired_at": now if acquired else None,
    }
    return json.dumps(info, separators=(",", ":")).encode()


class Lock:
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
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ConfigError(f"timeout must be >= 0 seconds or None, not {timeout}")
        self._session = session
        self._name, self._parent = session.lock_path(name)
        self._kind = kind
        self._leases = max_leases
        self._timeout = timeout
        self._reentrant = reentrant
        self._on_lost: list[Callable[[Lock], None]] = [on_lost] if on_lost else []
        self._purpose = purpose
        self._mutex = threading.Lock()
        self._node: str | None = None
        self._token: int | None = None
        self._epoch = -1
        self._count = 0
        self._lost_reason: str | None = None
        self._cancel = threading.Event()
        self._wakeup: threading.Event | None = None

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
        return self._node is not None and self._session.is_live(self._epoch)

    def ensure_held(self) -> None:
        """Raise LockLostError unless the lock is held for certain right now."""
        if self._node is None:
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

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True once held, False when ``timeout`` passes first.

        ``timeout`` is how long to wait in seconds (None: the lock's default,
        itself None for no limit); ``blocking=False`` means do not wait.
        """
        if self._node is not None and self._session.is_live(self._epoch):
            if not self._reentrant:
                raise ConfigError(
                    f"lock {self._name!r} is already held by this object; "
                    "pass reentrant=True to take it again"
                )
            self._count += 1
            return True
        wait = 0.0 if not blocking else (timeout if timeout is not None else self._timeout)
        deadline = None if wait is None else time.monotonic() + wait
        self._cancel.clear()
        self._lost_reason = None
        epoch = self._session.epoch
        entry = self._enqueue(deadline)
        path = f"{self._parent}/{entry.node}"
        try:
            granted = self._wait(entry, deadline, epoch)
        except BaseException as exc:
            self._session.discard(path)
            if isinstance(exc, (KeyboardInterrupt, ZkflockError)):
                raise
            raise ConnectError(f"acquiring {self._name!r} failed: {exc}") from exc
        if not granted:
            self._session.discard(path)
            return False
        self._node, self._token, self._count = entry.node, entry.token, 1
        self._epoch = epoch
        self._session.register_held(self)
        log.debug("acquired %s as %s (token %d)", self._name, entry.node, entry.token)
        return True

    def release(self) -> None:
        """Release one hold; the node goes with the last. Safe after a loss."""
        if self._node is None:
            if self._lost_reason is not None:
                self._lost_reason = None
                return
            raise LockNotHeldError(f"lock {self._name!r} is not held, so it cannot be released")
        self._count -= 1
        if self._count > 0:
            return
        self._release_all()

    def cancel(self) -> None:
        """Make a waiting ``acquire`` in another thread give up (it raises)."""
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
        if self._node is None and self._lost_reason is None:
            return  # released inside the block
        lost = self._node is None or not self._session.is_live(self._epoch)
        reason = self._lost_reason or self._session.state_reason(self._epoch)
        self._release_all()
        self._lost_reason = None
        if lost and exc_type is None:
            raise LockLostError(
                f"lock {self._name!r} was lost while the block ran ({reason}); "
                "its work may have overlapped with another holder"
            )

    def __repr__(self) -> str:
        state = f"held, token {self._token}" if self._node else "not held"
        return f"<{type(self).__name__} {self._name!r} {_KIND_NAMES[self._kind]} {state}>"

    # -- for the session ------------------------------------------------------

    def nodes_under(self, parent: str) -> Iterator[str]:
        if self._node is not None and parent == self._parent:
            yield self._node

    def forget_lost(self, reason: str) -> list[str]:
        """The session declared us lost: forget the node, return it for deletion."""
        node, self._node, self._token, self._count = self._node, None, None, 0
        self._lost_reason = reason
        return [f"{self._parent}/{node}"] if node else []

    def notify_lost(self) -> None:
        for callback in list(self._on_lost):
            try:
                callback(self)
            except Exception:
                log.exception("on_lost callback for %s failed", self._name)

    def _release_all(self) -> None:
        node, self._node, self._token, self._count = self._node, None, None, 0
        self._session.unregister_held(self)
        if node is not None:
            self._session.discard(f"{self._parent}/{node}")

    # -- the acquire loop -----------------------------------------------------

    def _enqueue(self, deadline: float | None) -> Enqueued:
        """Create our node (and the parent when missing); after a lost reply,
        adopt the node we made rather than leak it."""
        zk = self._session.zk
        guid = new_guid()
        prefix = node_prefix(self._kind, guid, self._leases)
        data = holder_data(self._kind, self._purpose, acquired=False)
        maybe_created = False
        while True:
            try:
                if maybe_created:
                    found = zk.find_own(self._parent, guid)
                    if found is not None:
                        return found
                return zk.enqueue(self._parent, prefix, data, guid)
            except NodeMissingError:
                self._session.ensure_parent(self._parent)
            except Disconnected:
                maybe_created = True
                if not zk.wait_connected(remaining(deadline)):
                    self._session.discard_guid(self._parent, guid)
                    raise LockTimeoutError(self._name, self._timeout) from None

    def _wait(self, entry: Enqueued, deadline: float | None, epoch: int) -> bool:
        """Wait until the decision says held; False on timeout."""
        zk = self._session.zk
        children = entry.children
        waited = False
        while True:
            if children is None:
                children = zk.children(self._parent)
            decision = self._decide(children, entry.node)
            if decision.held:
                break
            waited = True
            deleted = self._watch_and_wait(decision, deadline)
            if deleted is None:
                return False
            if epoch != self._session.epoch:
                raise SessionExpiredError(
                    f"the ZooKeeper session was lost while waiting for {self._name!r}"
                )
            if not self._session.connected and not zk.wait_connected(remaining(deadline)):
                return False
            if deleted and decision.grant_on_delete:
                break  # we were next: no need to list the queue again
            children = None
        if epoch != self._session.epoch:
            raise SessionExpiredError(f"the ZooKeeper session was lost while taking {self._name!r}")
        if waited:
            self._touch(entry.node, decision)
        return True

    def _decide(self, children: list[str], node: str) -> Decision:
        try:
            return decide(children, node, self._session.own_nodes(self._parent))
        except NotQueuedError:
            raise SessionExpiredError(
                f"our place in the queue for {self._name!r} vanished: "
                "the ZooKeeper session expired while waiting"
            ) from None

    def _watch_and_wait(self, decision: Decision, deadline: float | None) -> bool | None:
        """Watch the decision's nodes and wait. None: timed out; else whether a
        watched node was deleted."""
        event = threading.Event()
        deleted: list[bool] = []

        def on_event(was_deleted: bool) -> None:
            deleted.append(was_deleted)
            event.set()

        self._wakeup = event
        self._session.add_wakeup(event)
        try:
            try:
                paths = [f"{self._parent}/{n}" for n in decision.watch]
                present = self._session.zk.watch(paths, on_event)
            except (Disconnected, NodeMissingError):
                present = True  # the state change wakes us; look again then
            if not present:
                return True
            if self._cancel.is_set():
                raise AcquireCancelledError(f"acquiring {self._name!r} was cancelled")
            if not event.wait(remaining(deadline)):
                return None
            if self._cancel.is_set():
                raise AcquireCancelledError(f"acquiring {self._name!r} was cancelled")
            return any(deleted)
        finally:
            self._session.remove_wakeup(event)
            self._wakeup = None

    def _touch(self, node: str, decision: Decision) -> None:
        """Record acquired-at in our node. It is sent without waiting for the
        reply, so a handoff costs no round trip; for a semaphore it is also
        the signal that wakes our successor (Decision.signal_grant)."""
        try:
            self._session.zk.set_data_nowait(
                f"{self._parent}/{node}", holder_data(self._kind, self._purpose, acquired=True)
            )
        except ZkflockError as exc:
            if decision.signal_grant:
                raise
            log.debug("recording acquired-at for %s failed: %s", self._name, exc)
