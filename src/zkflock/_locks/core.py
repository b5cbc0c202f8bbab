"""The private core of a session: what every lock of the session shares.

As in Curator, the public ``Session`` is a thin face; this object owns the
registry of held nodes, loss epochs, wake-ups and node deletion, and the
connection states turned into lock-loss events:

- ``suspended`` means *maybe lost*: ``ensure_held`` raises at once, and a local
  timer starts. kazoo reports LOST only once it reaches a server again, so a
  partitioned client would go on believing it holds locks the ensemble has
  already handed on; like Curator 3, when the timer passes the session
  timeout we declare every lock lost without waiting for the server.
- ``lost`` (expired or closed) and a reconnect under a new session id are
  definite losses.

Each declared loss bumps an *epoch*; a lock is held only while the epoch it
was acquired in is current and the connection is up. Nodes of lost locks, and
of every failed acquire, are deleted by the reaper, which retries until they
are gone (kazoo #732).

Nothing here costs more with what the session holds: the registry is keyed
by lock and by queue (parent), so an acquire looks only at its own queues.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from zkflock._config import Settings
from zkflock._errors import ZkflockError
from zkflock._locks.reaper import Reaper
from zkflock._names import lock_parent, normalize_name
from zkflock._zk.client import CONNECTED, LOST, SUSPENDED, ZkClient
from zkflock._zk.errors import Disconnected
from zkflock.metrics import NOOP, Observer, safely

log = logging.getLogger("zkflock")

_MAX_CACHED = 100_000  # names and parents remembered per session (then forgotten)


@dataclass(frozen=True)
class Holding:
    """A held lock as the core sees it: its nodes, its owner, and what to do
    when the session loses it (``lost(reason)`` forgets the lock and returns
    the user callbacks to run on the worker thread) or closes (``release(delete)``
    forgets it, and deletes its nodes if ``delete``)."""

    paths: tuple[str, ...]
    owner: object
    lost: Callable[[str], Callable[[], None] | None]
    release: Callable[[bool], None]


class LockCore:
    """One session's shared lock state (private: reached through ``Session``)."""

    def __init__(self, zk: ZkClient, settings: Settings, observer: Observer) -> None:
        self.zk = zk
        self.settings = settings
        self.observer = observer
        self._mutex = threading.RLock()
        self._epoch = 0
        self._session_id = zk.session_id
        self._state = zk.state
        self._timer: threading.Timer | None = None
        self._held: dict[int, Holding] = {}
        self._owned: dict[str, dict[str, object]] = {}  # parent -> {node: owner}
        self._keys = itertools.count(1)
        self._wakeups: set[threading.Event] = set()
        self._known_bases: set[str] = set()
        self._known_parents: set[str] = set()
        self._paths: dict[str, tuple[str, str]] = {}
        self._closed = False
        # Held by the one lock_many in batches of this session that may own
        # the gate node (_locks/batches.py), and by the background retry of
        # its deletion: while it is free, a gate of our session is stale.
        self.gate_mutex = threading.Lock()
        self._reaper = Reaper(zk, lambda: self._state == CONNECTED and not self._closed)
        zk.add_listener(self._on_state)
        if observer is not NOOP:  # the state it starts in: later ones are changes
            safely(observer.session_state, self._state)

    # -- liveness -----------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def connected(self) -> bool:
        return self._state == CONNECTED

    def is_live(self, epoch: int) -> bool:
        return self._state == CONNECTED and epoch == self._epoch

    def state_reason(self, epoch: int) -> str:
        if epoch != self._epoch:
            return "the ZooKeeper session was lost (expired, or unreachable past its timeout)"
        if self._state == SUSPENDED:
            return "the connection to ZooKeeper is suspended, so it may have been handed on"
        return "the session is closed"

    # -- names and parents --------------------------------------------------

    def lock_path(self, name: str) -> tuple[str, str]:
        """(normalised name, lock parent znode) for a lock name."""
        # Cached: normalising and encoding cost more than the rest of an
        # uncontended acquire's Python; only valid names are ever stored.
        found = self._paths.get(name)
        if found is None:
            norm = normalize_name(name, self.settings.root)
            found = (norm, lock_parent(norm, self.settings.namespace))
            if len(self._paths) >= _MAX_CACHED:
                self._paths.clear()
            self._paths[name] = found
        return found

    def parent_known(self, parent: str) -> bool:
        """Whether ``parent`` existed when we last queued there. A container
        may be removed by the server once empty: the create then fails with
        NodeMissingError and the caller makes it again."""
        return parent in self._known_parents

    def parents_seen(self, parents: Iterable[str]) -> None:
        if len(self._known_parents) >= _MAX_CACHED:
            self._known_parents.clear()
        self._known_parents.update(parents)

    def ensure_parent(self, parent: str) -> None:
        """Make the lock parent exist: a container, so the server removes it
        once empty; its ancestors are plain persistent nodes."""
        base = parent.rsplit("/", 1)[0]
        if base not in self._known_bases:
            self.zk.ensure_persistent(base)
            self._known_bases.add(base)
        self.zk.create_container(parent)

    # -- the registry of held nodes -----------------------------------------

    def register(self, holding: Holding) -> int:
        """Record a held lock; returns its key for :meth:`unregister`."""
        key = next(self._keys)
        with self._mutex:
            self._held[key] = holding
            for path in holding.paths:
                parent, node = path.rsplit("/", 1)
                self._owned.setdefault(parent, {})[node] = holding.owner
        return key

    def unregister(self, key: int) -> None:
        with self._mutex:
            holding = self._held.pop(key, None)
            if holding is None:
                return
            for path in holding.paths:
                parent, node = path.rsplit("/", 1)
                nodes = self._owned.get(parent)
                if nodes is not None:
                    nodes.pop(node, None)
                    if not nodes:
                        del self._owned[parent]

    def own_nodes(self, parent: str, owner: object) -> set[str]:
        """Nodes ``owner`` (a thread or task) holds under ``parent``: its own
        holds on that one lock, for downgrades and refused upgrades."""
        with self._mutex:
            nodes = self._owned.get(parent)
            if not nodes:
                return set()
            return {node for node, who in nodes.items() if who is owner}

    def held_count(self) -> int:
        return len(self._held)

    # -- wake-ups and deletion ----------------------------------------------

    def add_wakeup(self, event: threading.Event) -> None:
        with self._mutex:
            self._wakeups.add(event)

    def remove_wakeup(self, event: threading.Event) -> None:
        with self._mutex:
            self._wakeups.discard(event)

    def discard(self, paths: Sequence[str]) -> None:
        """Delete our nodes now (several: one multi), or have the reaper
        retry until they are gone."""
        if not paths:
            return
        try:
            if len(paths) == 1:
                self.zk.delete(paths[0])
                errors: list[ZkflockError | None] = [None]
            else:
                errors = list(self.zk.delete_many(paths))
        except ZkflockError as exc:
            errors = [exc] * len(paths)
        for path, error in zip(paths, errors, strict=True):
            if error is not None and (isinstance(error, Disconnected) or self._state != LOST):
                log.info("deleting %s failed (%s); retrying in the background", path, error)
                self._reaper.doom(path)

    def discard_guid(self, parent: str, guid: str) -> None:
        """A create whose reply never came may have made a node: find and delete it."""
        self._reaper.doom_guid(parent, guid)

    @property
    def gate_path(self) -> str:
        """The gate node every lock_many's multi creates and deletes."""
        return f"{self.settings.namespace}/lock-many-gate"

    def drop_gate(self) -> None:
        """Holding ``gate_mutex``: delete our gate node (if we own it), or
        retry in the background until it is gone."""
        try:
            self.zk.drop_gate(self.gate_path)
        except ZkflockError as exc:
            log.info("deleting the lock_many gate failed (%s); retrying in the background", exc)
            self._reaper.retry(self._drop_gate_later)

    def _drop_gate_later(self) -> bool:
        if not self.gate_mutex.acquire(blocking=False):
            return False  # a lock_many in batches uses it now, and deletes it itself
        try:
            self.zk.drop_gate(self.gate_path)
            return True
        except ZkflockError:
            return False
        finally:
            self.gate_mutex.release()

    # -- closing ------------------------------------------------------------

    def close(self) -> None:
        """Release every lock the session holds and end the session."""
        if self._closed:
            return
        with self._mutex:
            holdings = list(self._held.values())
        # Ending a session we own deletes its ephemeral nodes on the server,
        # all at once: 10,000 held locks need no 10,000 deletes. An adopted
        # client lives on, so its nodes are deleted one lock at a time.
        delete = not self.zk.owned
        for holding in holdings:
            try:
                holding.release(delete)
            except ZkflockError as exc:  # pragma: no cover - best effort on close
                log.warning("releasing %s on close failed: %s", holding.paths[:1], exc)
        self._closed = True
        self._cancel_timer()
        self._reaper.stop()
        self.zk.close()

    # -- connection states --------------------------------------------------

    def _on_state(self, state: str) -> None:
        # kazoo's connection thread: record, wake waiters, defer real work.
        # Locks are told of a loss after the mutex is let go: a lock calls
        # into the core under its own lock, never the other way round.
        loss: tuple[str, list[Holding]] | None = None
        with self._mutex:
            self._state = state
            if state == SUSPENDED:
                self._start_timer()
            elif state == LOST:
                self._cancel_timer()
                loss = self._bump_epoch("the ZooKeeper session expired")
            else:
                self._cancel_timer()
                new_id = self.zk.session_id
                if new_id != self._session_id:
                    loss = self._bump_epoch("the ZooKeeper session was replaced by a new one")
                    self._session_id = new_id
                self._reaper.kick()
            for event in self._wakeups:
                event.set()
        if loss is not None:
            self._tell_lost(*loss)
        if self.observer is not NOOP:
            safely(self.observer.session_state, state)

    def _start_timer(self) -> None:
        if self._timer is not None:
            return
        timer = threading.Timer(
            self.zk.negotiated_timeout,
            self._declare_lost,
            args=("ZooKeeper was unreachable for longer than the session timeout",),
        )
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _declare_lost(self, reason: str) -> None:
        with self._mutex:
            loss = self._bump_epoch(reason)
        self._tell_lost(*loss)

    def _bump_epoch(self, reason: str) -> tuple[str, list[Holding]]:
        # Under the mutex: from here on no lock of the old epoch is live.
        self._timer = None
        self._epoch += 1
        lost = list(self._held.values())
        self._held.clear()
        self._owned.clear()
        for event in self._wakeups:
            event.set()
        return reason, lost

    def _tell_lost(self, reason: str, lost: list[Holding]) -> None:
        if lost:
            log.warning("%s: %d lock(s) lost", reason, len(lost))
        for holding in lost:
            for path in holding.paths:
                self._reaper.doom(path)
            callbacks = holding.lost(reason)
            if callbacks is not None:
                self._reaper.submit(callbacks)
