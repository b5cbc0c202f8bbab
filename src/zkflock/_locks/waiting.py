"""The one waiting loop of every lock kind, as a base of ``Lock``.

A kind is only a node prefix plus the pure decision of ``protocol``; this
loop does the I/O: queue (create and list, pipelined), decide, watch the
nodes the decision names, and wait with one monotonic deadline for the whole
acquire. ``Lock.acquire`` owns the deadline, the counters and the clean-up;
``_many.MultiLock`` only enqueues differently (one multi-transaction) and
then waits here queue by queue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError, LockTimeoutError, SessionExpiredError, ZkflockError
from zkflock._locks.protocol import (
    EXCLUSIVE,
    SEMAPHORE,
    Decision,
    NotQueuedError,
    decide,
    node_prefix,
    parse_node,
)
from zkflock._zk.client import new_guid, remaining
from zkflock._zk.errors import Disconnected, NodeMissingError
from zkflock._zk.queue import Enqueued

if TYPE_CHECKING:
    from zkflock._session import Session

log = logging.getLogger("zkflock")

KIND_NAMES = {"x": "exclusive", "r": "shared", "s": "semaphore"}


class AcquireCancelledError(ZkflockError):
    """A waiting acquire was cancelled from another thread."""

    exit_code = 4


_HEADS: dict[tuple[int, str, str], str] = {}


def process_start() -> float | None:
    """When this process started (epoch seconds), from /proc: with the pid it
    tells a holder apart from a later process that reused the pid."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def holder_data(kind: str, purpose: str, acquired: bool) -> bytes:
    """What a contender's node says about it: shown by ``zkflock status``."""
    # gethostname() and encoding the fixed fields cost tens of microseconds
    # per acquire (the bench's hot path); they change only with the process
    # (the pid is in the key, so a fork gets its own), so encode them once.
    pid = os.getpid()
    key = (pid, kind, purpose)
    head = _HEADS.get(key)
    if head is None:
        fixed = {"host": socket.gethostname(), "pid": pid, "started": process_start(),
                 "kind": KIND_NAMES.get(kind, kind), "purpose": purpose}
        head = json.dumps(fixed, separators=(",", ":"))[:-1]
        if len(_HEADS) < 256:
            _HEADS[key] = head
    now = time.time()
    acquired_at = repr(now) if acquired else "null"
    return f'{head},"queued_at":{now!r},"acquired_at":{acquired_at}}}'.encode()


class QueueWaiting:
    """The per-queue waiting machinery shared by every lock kind."""

    _session: Session
    _name: str
    _parents: tuple[str, ...]
    _kind: str
    _leases: int
    _timeout: float | None
    _purpose: str
    _cancel: threading.Event
    _wakeup: threading.Event | None

    @property
    def names(self) -> tuple[str, ...]:
        """Every normalised name this lock covers (one, except for ``lock_many``)."""
        return (self._name,)

    def _refuse_upgrade(self) -> None:
        """An exclusive node queued behind one this session holds would wait
        for itself forever: refuse before anything is enqueued."""
        if self._kind != EXCLUSIVE:
            return
        for name, parent in zip(self.names, self._parents, strict=True):
            if self._session.own_nodes(parent):
                raise ConfigError(
                    f"this session already holds {name!r}; a write/exclusive lock behind it "
                    "would wait for itself forever (upgrading a read lock is not supported: "
                    "release it first, then take the write lock)"
                )

    def _enqueue(self, deadline: float | None) -> list[Enqueued]:
        """Create our node (and the parent when missing); after a lost reply,
        adopt the node we made rather than leak it."""
        zk = self._session.zk
        parent = self._parents[0]
        guid = new_guid()
        prefix = node_prefix(self._kind, guid, self._leases)
        data = holder_data(self._kind, self._purpose, acquired=False)
        maybe_created = False
        while True:
            try:
                if maybe_created:
                    found = zk.find_own(parent, guid)
                    if found is not None:
                        return [found]
                return [zk.enqueue(parent, prefix, data, guid)]
            except NodeMissingError:
                self._session.ensure_parent(parent)
            except Disconnected:
                maybe_created = True
                if not zk.wait_connected(remaining(deadline)):
                    self._session.discard_guid(parent, guid)
                    raise LockTimeoutError(self._name, self._timeout) from None

    def _wait(self, parent: str, entry: Enqueued, deadline: float | None, epoch: int) -> bool:
        """Wait until the decision for our node under ``parent`` says held;
        False on timeout."""
        zk = self._session.zk
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
        if waited and self._kind == SEMAPHORE:
            # Only a semaphore's successor needs the touch (its grant signal).
            # For the other kinds it cost a write per handoff and woke the
            # waiter behind us for nothing (an exists watch fires on a data
            # change too), which then listed the queue and watched again:
            # `zkflock bench contended` measured it. A holder that waited
            # shows its queued-at as `since`.
            self._touch(parent, entry.node, decision)
        return True

    def _decide(self, parent: str, children: list[str], node: str) -> Decision:
        own = self._session.own_nodes(parent)
        try:
            decision = decide(children, node, own)
        except NotQueuedError:
            raise SessionExpiredError(
                f"our place in the queue for {self._name!r} vanished: "
                "the ZooKeeper session expired while waiting"
            ) from None
        if not decision.held and self._kind != SEMAPHORE:
            _refuse_waiting_on_self(self._name, decision, own)
        return decision

    def _watch_and_wait(
        self, parent: str, decision: Decision, deadline: float | None
    ) -> bool | None:
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
                paths = [f"{parent}/{n}" for n in decision.watch]
                present = self._session.zk.watch(paths, on_event)
            except (Disconnected, NodeMissingError):
                present = True  # the state change wakes us; look again then
            if not present:
                return True
            self._check_cancelled()
            if not event.wait(remaining(deadline)):
                return None
            self._check_cancelled()
            return any(deleted)
        finally:
            self._session.remove_wakeup(event)
            self._wakeup = None

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise AcquireCancelledError(f"acquiring {self._name!r} was cancelled")

    def _touch(self, parent: str, node: str, decision: Decision) -> None:
        """Record acquired-at in our node. It is sent without waiting for the
        reply, so a handoff costs no round trip; for a semaphore it is also
        the signal that wakes our successor (Decision.signal_grant)."""
        try:
            self._session.zk.set_data_nowait(
                f"{parent}/{node}", holder_data(self._kind, self._purpose, acquired=True)
            )
        except ZkflockError as exc:
            if decision.signal_grant:
                raise
            log.debug("recording acquired-at for %s failed: %s", self._name, exc)


def _refuse_waiting_on_self(name: str, decision: Decision, own: set[str]) -> None:
    """A reader that must wait on a writer queued behind this session's own
    hold (a downgrade with another writer already waiting) would wait for
    itself: that writer waits for our hold to go. Refuse rather than hang."""
    seqs = [c.seq for c in map(parse_node, own) if c is not None]
    if not seqs:
        return
    for watched in decision.watch:
        contender = parse_node(watched)
        if contender is not None and contender.seq > min(seqs):
            raise ConfigError(
                f"taking {name!r} now would wait for this session's own hold: another "
                "writer is queued behind it. Release the lock you hold first (a downgrade "
                "works only while no other writer waits)"
            )
