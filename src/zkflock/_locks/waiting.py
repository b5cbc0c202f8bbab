"""The one waiting loop of every lock kind: ``Waiter``, composed with a driver.

The loop does the I/O of one acquire attempt: queue (create and list,
pipelined; one multi-transaction for ``lock_many``, through the same enqueue
and adopt path, or batches behind the gate when one packet cannot hold it),
decide with the driver, watch the nodes the decision names, and wait with
one monotonic deadline for the whole acquire. Our nodes are
deleted on every way out that does not end in a grant. ``Lock`` owns the
object's state, the per-thread counts and the events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError, SessionExpiredError, ZkflockError
from zkflock._locks.batches import Batches
from zkflock._locks.holder import KIND_NAMES, holder_data, process_start
from zkflock._locks.protocol import Decision, NotQueuedError, parse_node
from zkflock._names import describe_names
from zkflock._zk.client import new_guid, remaining
from zkflock._zk.errors import (
    Disconnected,
    GateClosedError,
    NodeMissingError,
    RequestTooLargeError,
)
from zkflock._zk.queue import Enqueued

if TYPE_CHECKING:
    from zkflock._locks.core import LockCore
    from zkflock._locks.drivers import Driver

log = logging.getLogger("zkflock")

__all__ = ["KIND_NAMES", "AcquireCancelledError", "Granted", "Waiter", "holder_data",
           "process_start"]


class AcquireCancelledError(ZkflockError):
    """A waiting acquire was cancelled from another thread."""

    exit_code = 4


#: What one attempt gives once held: our node paths, the token, the epoch.
Granted = tuple[tuple[str, ...], int, int]


class Waiter:
    """One acquire attempt of ``owner`` on ``parents`` (one queue, or each of
    lock_many's), composed with the kind's ``driver``."""

    def __init__(
        self,
        core: LockCore,
        driver: Driver,
        names: tuple[str, ...],
        parents: tuple[str, ...],
        *,
        owner: object,
        purpose: str,
        cancelled: Callable[[], bool],
    ) -> None:
        self._core = core
        self._driver = driver
        self._names = names
        self._name = describe_names(names)
        self._parents = parents
        self._owner = owner
        self._purpose = purpose
        self._cancelled = cancelled
        self._wakeup: threading.Event | None = None

    def wake(self) -> None:
        """Wake the wait (cancel() from another thread)."""
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    def run(self, deadline: float | None) -> Granted | None:
        """Queue and wait: what was granted, or None when the deadline passed."""
        self._refuse_waiting_for_own()
        epoch = self._core.epoch
        entries = self._enqueue(deadline)
        if entries is None:
            return None  # ZooKeeper stayed out of reach until the deadline
        paths = tuple(f"{p}/{e.node}" for p, e in zip(self._parents, entries, strict=True))
        try:
            granted = all(
                self._wait(parent, entry, deadline, epoch)
                for parent, entry in zip(self._parents, entries, strict=True)
            )
        except BaseException:
            # Ours or the caller's (KeyboardInterrupt, a bug): the node goes,
            # the exception passes through unchanged.
            self._core.discard(paths)
            raise
        if not granted:
            self._core.discard(paths)
            return None
        # One multi: one czxid. Batches: the last, so that in every queue the
        # token is above every earlier holder's (they all came before it).
        return paths, max(e.token for e in entries), epoch

    def _refuse_waiting_for_own(self) -> None:
        """An exclusive node queued behind one its own owner holds would wait
        for itself forever: refuse before anything is enqueued."""
        if not self._driver.excludes_own:
            return
        for name, parent in zip(self._names, self._parents, strict=True):
            if self._core.own_nodes(parent, self._owner):
                raise ConfigError(
                    f"this thread already holds {name!r}; a write/exclusive lock behind it "
                    "would wait for itself forever (upgrading a read lock is not supported: "
                    "release it first, then take the write lock)"
                )

    # -- queueing: one path for one queue and for lock_many's ---------------

    def _enqueue(self, deadline: float | None) -> list[Enqueued] | None:
        """Create our node in every queue (making missing parents); after a
        lost reply, adopt the nodes we made rather than leak them. None when
        ZooKeeper stayed unreachable until the deadline."""
        zk = self._core.zk
        guid = new_guid()
        data = holder_data(self._driver.letter, self._purpose, acquired=False)
        maybe_created = False
        while True:
            try:
                if maybe_created:
                    found = self._adopt(guid)
                    if found is not None:
                        return found
                    # Strays of that guid are being deleted: queue afresh.
                    maybe_created, guid = False, new_guid()
                return self._send(guid, data)
            except NodeMissingError:
                for parent in self._parents:
                    self._core.ensure_parent(parent)
            except GateClosedError:  # a lock_many in batches is queueing
                if self._wait_on([self._core.gate_path], deadline) is None:
                    return None
            except RequestTooLargeError:  # more names than one multi holds
                return self._batches(data).enqueue(deadline)
            except Disconnected:
                maybe_created = True
                if not zk.wait_connected(remaining(deadline)):
                    for parent in self._parents:
                        self._core.discard_guid(parent, guid)
                    return None

    def _send(self, guid: str, data: bytes) -> list[Enqueued]:
        zk, parents = self._core.zk, self._parents
        prefix = self._driver.prefix(guid)
        unknown = [p for p in parents if not self._core.parent_known(p)]
        if len(parents) == 1:
            entries = [zk.enqueue(parents[0], prefix, data, make_parent=bool(unknown))]
        else:
            entries = zk.enqueue_many(
                parents, [prefix] * len(parents), data, make_parents=unknown,
                gate=self._core.gate_path,
            )
        self._core.parents_seen(unknown)
        return entries

    def _batches(self, data: bytes) -> Batches:
        return Batches(self._core, self._name, self._parents, self._driver.prefix, data,
                       self._wait_on, self._check_cancelled)

    def _adopt(self, guid: str) -> list[Enqueued] | None:
        """Our nodes of ``guid``, if the lost create made them (a multi makes
        all or none); else delete any strays of it and return None."""
        found = []
        for parent in self._parents:
            entry = self._core.zk.find_own(parent, guid)
            if entry is None:
                for other in self._parents:
                    self._core.discard_guid(other, guid)
                return None
            found.append(entry)
        return found

    # -- waiting, queue by queue --------------------------------------------

    def _wait(self, parent: str, entry: Enqueued, deadline: float | None, epoch: int) -> bool:
        """Wait until the decision for our node under ``parent`` says held;
        False on timeout. Being granted in a queue is permanent until we
        release, so waiting for lock_many's queues in turn takes as long as
        the slowest."""
        core, zk = self._core, self._core.zk
        children = entry.children
        waited = False
        while True:
            if children is None:
                children = zk.children(parent)
            decision = self._decide(parent, children, entry.node)
            if decision.held:
                break
            waited = True
            deleted = self._watch_and_wait(parent, decision, deadline)
            if deleted is None:
                return False
            if epoch != core.epoch:
                raise SessionExpiredError(
                    f"the ZooKeeper session was lost while waiting for {self._name!r}"
                )
            if not core.connected and not zk.wait_connected(remaining(deadline)):
                return False
            if deleted and decision.grant_on_delete:
                break  # we were next: no need to list the queue again
            children = None
        if epoch != core.epoch:
            raise SessionExpiredError(f"the ZooKeeper session was lost while taking {self._name!r}")
        if waited and self._driver.signals_grant:
            # Only a semaphore's successor needs the touch (its grant signal).
            # For the other kinds it cost a write per handoff and woke the
            # waiter behind us for nothing (a data watch fires on a change
            # too): `zkflock bench contended` measured it.
            self._touch(parent, entry.node, decision)
        return True

    def _decide(self, parent: str, children: list[str], node: str) -> Decision:
        own = self._core.own_nodes(parent, self._owner)
        try:
            decision = self._driver.decide(children, node, own)
        except NotQueuedError:
            raise SessionExpiredError(
                f"our place in the queue for {self._name!r} vanished: "
                "the ZooKeeper session expired while waiting"
            ) from None
        if not decision.held and own and self._driver.refuses_self_wait:
            _refuse_waiting_on_self(self._name, decision, own)
        return decision

    def _watch_and_wait(
        self, parent: str, decision: Decision, deadline: float | None
    ) -> bool | None:
        """Watch the decision's nodes and wait. None: timed out; else whether a
        watched node was deleted."""
        return self._wait_on([f"{parent}/{n}" for n in decision.watch], deadline)

    def _wait_on(self, paths: list[str], deadline: float | None) -> bool | None:
        """Watch ``paths`` (data watches) and wait for a change. None: timed
        out; else whether a watched node was deleted (True at once when one
        is already gone)."""
        event = threading.Event()
        deleted: list[bool] = []

        def on_event(was_deleted: bool) -> None:
            deleted.append(was_deleted)
            event.set()

        self._wakeup = event
        self._core.add_wakeup(event)
        try:
            try:
                present = self._core.zk.watch(paths, on_event)
            except Disconnected:
                present = True  # the state change wakes us; look again then
            if not present:
                return True
            self._check_cancelled()
            if not event.wait(remaining(deadline)):
                return None
            self._check_cancelled()
            return any(deleted)
        finally:
            self._core.remove_wakeup(event)
            self._wakeup = None

    def _check_cancelled(self) -> None:
        if self._cancelled():
            raise AcquireCancelledError(f"acquiring {self._name!r} was cancelled")

    def _touch(self, parent: str, node: str, decision: Decision) -> None:
        """Record acquired-at in our node. It is sent without waiting for the
        reply, so a handoff costs no round trip; for a semaphore it is also
        the signal that wakes our successor (Decision.signal_grant)."""
        try:
            self._core.zk.set_data_nowait(
                f"{parent}/{node}", holder_data(self._driver.letter, self._purpose, acquired=True)
            )
        except ZkflockError as exc:
            if decision.signal_grant:
                raise
            log.debug("recording acquired-at for %s failed: %s", self._name, exc)


def _refuse_waiting_on_self(name: str, decision: Decision, own: set[str]) -> None:
    """A reader that must wait on a writer queued behind its own thread's hold
    (a downgrade with another writer already waiting) would wait for itself:
    that writer waits for our hold to go. Refuse rather than hang."""
    seqs = [c.seq for c in map(parse_node, own) if c is not None]
    if not seqs:
        return
    for watched in decision.watch:
        contender = parse_node(watched)
        if contender is not None and contender.seq > min(seqs):
            raise ConfigError(
                f"taking {name!r} now would wait for this thread's own hold: another "
                "writer is queued behind it. Release the lock you hold first (a downgrade "
                "works only while no other writer waits)"
            )
