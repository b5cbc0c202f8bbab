"""``connect()`` and ``Session``: one ZooKeeper session and what it holds.

The session turns connection states into lock-loss events, as DESIGN says:

- ``suspended`` means *maybe lost*: ``ensure_held`` raises at once, and a local
  timer starts. kazoo reports LOST only once it reaches a server again, so a
  partitioned client would go on believing it holds locks the ensemble has
  already handed on; like Curator 3, when the timer passes the session
  timeout we declare every lock lost without waiting for the server.
- ``lost`` (expired or closed) and a reconnect under a new session id are
  definite losses.

Each declared loss bumps an *epoch*; a lock is held only while the epoch it
was acquired in is current and the connection is up. Nodes of lost locks, and
of every failed acquire, are deleted by a reaper thread that retries until
they are gone (kazoo #732: a swallowed delete during SUSPENDED leaves a node
that blocks everyone for as long as the session lives).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from zkflock._config import Settings, resolve
from zkflock._errors import ZkflockError
from zkflock._locks.reaper import Reaper
from zkflock._names import lock_parent, normalize_name
from zkflock._zk.client import CONNECTED, LOST, SUSPENDED, ZkClient
from zkflock._zk.errors import Disconnected
from zkflock.metrics import NOOP, Observer, safely

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from zkflock._files.shared_file import SharedFile
    from zkflock._locks.lock import Lock
    from zkflock._locks.many import MultiLock
    from zkflock._locks.status import Holder
    from zkflock._security import AclPolicy, TLSConfig

log = logging.getLogger("zkflock")


class Session:
    """A ZooKeeper session and the locks it holds.

    >>> with zkflock.connect("127.0.0.1:2181") as zk:          # doctest: +SKIP
    ...     with zk.lock("data/data.txt", timeout=10) as held:
    ...         print(held.token)
    """

    def __init__(
        self,
        hosts: str | None = None,
        *,
        client: KazooClient | None = None,
        root: str | os.PathLike[str] | None = None,
        namespace: str | None = None,
        session_timeout: float | None = None,
        connect_timeout: float | None = None,
        auth: Sequence[tuple[str, str]] | tuple[str, str] | str | None = None,
        tls: TLSConfig | None = None,
        acl: AclPolicy | None = None,
        metrics: Observer | None = None,
    ) -> None:
        self.settings: Settings = resolve(
            hosts,
            root=root,
            namespace=namespace,
            session_timeout=session_timeout,
            connect_timeout=connect_timeout,
        )
        if client is not None:
            self._zk = ZkClient(client, owned=False)
        else:
            from zkflock._security import open_client

            # auth/tls: the arguments, then ZKFLOCK_AUTH(_FILE) / ZKFLOCK_TLS_*.
            self._zk = open_client(self.settings, auth=auth, tls=tls, acl=acl)
        self._mutex = threading.RLock()
        self._epoch = 0
        self._session_id = self._zk.session_id
        self._state = self._zk.state
        self._timer: threading.Timer | None = None
        self._held: dict[int, Lock] = {}
        self._wakeups: set[threading.Event] = set()
        self._known_parents: set[str] = set()
        self._paths: dict[str, tuple[str, str]] = {}  # lock_path() cache, bounded
        self._closed = False
        self._observer: Observer = NOOP if metrics is None else metrics
        self._reaper = Reaper(self._zk, lambda: self._state == CONNECTED and not self._closed)
        self._zk.add_listener(self._on_state)

    # -- public surface -----------------------------------------------------

    def lock(
        self,
        name: str,
        *,
        timeout: float | None = None,
        reentrant: bool = False,
        on_lost: Callable[[Lock], None] | None = None,
        purpose: str = "",
    ) -> Lock:
        """An exclusive, FIFO lock on ``name`` (a path relative to the root)."""
        from zkflock._locks.lock import Lock

        return Lock(
            self, name, timeout=timeout, reentrant=reentrant, on_lost=on_lost, purpose=purpose
        )

    def read_lock(self, name: str, **kw: Any) -> Lock:
        """A shared lock on ``name``: readers share it, waiting only on an
        earlier writer. Takes the keywords of :meth:`lock`."""
        from zkflock._locks.lock import Lock
        from zkflock._locks.protocol import READ

        return Lock(self, name, kind=READ, **kw)

    def write_lock(self, name: str, **kw: Any) -> Lock:
        """An exclusive lock on ``name`` against readers and writers alike.
        Holding it, a ``read_lock`` on the same name in this session is granted
        at once (a downgrade). Takes the keywords of :meth:`lock`."""
        from zkflock._locks.lock import Lock

        return Lock(self, name, label="write", **kw)

    def semaphore(self, name: str, max_leases: int, **kw: Any) -> Lock:
        """At most ``max_leases`` holders of ``name`` at once, FIFO. Every
        caller must pass the same ``max_leases`` (else ConfigError)."""
        from zkflock._locks.lock import Lock
        from zkflock._locks.protocol import SEMAPHORE

        return Lock(self, name, kind=SEMAPHORE, max_leases=max_leases, **kw)

    def lock_many(self, names: Iterable[str], **kw: Any) -> MultiLock:
        """An exclusive lock on every name in ``names`` at once: all or none,
        no deadlock whatever order callers name them in."""
        from zkflock._locks.many import MultiLock

        return MultiLock(self, names, **kw)

    def holders(self, name: str) -> list[Holder]:
        """Holders and waiters of lock ``name``, in queue order."""
        from zkflock._locks.status import list_holders

        return list_holders(self, name)

    def lock_names(self) -> list[str]:
        """Names of every lock that has a queue now."""
        from zkflock._locks.status import list_lock_names

        return list_lock_names(self)

    def shared_file(self, name: str) -> SharedFile:
        """A fenced file ``name`` (relative to the root): see :class:`SharedFile`."""
        from zkflock._files.shared_file import SharedFile

        return SharedFile(self, name)

    @property
    def observer(self) -> Observer:
        """The observer given as ``metrics=`` (:data:`zkflock.metrics.NOOP` if none)."""
        return self._observer

    @property
    def hosts(self) -> str:
        return self.settings.hosts

    @property
    def connected(self) -> bool:
        return self._state == CONNECTED

    def close(self) -> None:
        """Release every lock this session holds and end the session."""
        if self._closed:
            return
        for held in list(self._held.values()):
            try:
                held._release_all()
            except ZkflockError as exc:  # pragma: no cover - best effort on close
                log.warning("releasing %s on close failed: %s", held.name, exc)
        self._closed = True
        self._cancel_timer()
        self._reaper.stop()
        self._zk.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for the lock kinds -------------------------------------------------

    @property
    def zk(self) -> ZkClient:
        return self._zk

    @property
    def epoch(self) -> int:
        return self._epoch

    def is_live(self, epoch: int) -> bool:
        return self._state == CONNECTED and epoch == self._epoch

    def state_reason(self, epoch: int) -> str:
        if epoch != self._epoch:
            return "the ZooKeeper session was lost (expired, or unreachable past its timeout)"
        if self._state == SUSPENDED:
            return "the connection to ZooKeeper is suspended, so it may have been handed on"
        return "the session is closed"

    def lock_path(self, name: str) -> tuple[str, str]:
        """(normalised name, lock parent znode) for a lock name."""
        # Cached: normalising and encoding cost more than the rest of an
        # uncontended acquire's Python; only valid names are ever stored.
        found = self._paths.get(name)
        if found is None:
            norm = normalize_name(name, self.settings.root)
            found = (norm, lock_parent(norm, self.settings.namespace))
            if len(self._paths) < 4096:
                self._paths[name] = found
        return found

    def ensure_parent(self, parent: str) -> None:
        """Make the lock parent exist: a container, so the server removes it
        once empty; its ancestors are plain persistent nodes."""
        base = parent.rsplit("/", 1)[0]
        if base not in self._known_parents:
            self._zk.ensure_persistent(base)
            self._known_parents.add(base)
        self._zk.create_container(parent)

    def register_held(self, held: Lock) -> None:
        with self._mutex:
            self._held[id(held)] = held

    def unregister_held(self, held: Lock) -> None:
        with self._mutex:
            self._held.pop(id(held), None)

    def own_nodes(self, parent: str) -> set[str]:
        """Nodes this session holds under ``parent`` (for downgrades)."""
        with self._mutex:
            return {n for h in self._held.values() for n in h.nodes_under(parent)}

    def add_wakeup(self, event: threading.Event) -> None:
        with self._mutex:
            self._wakeups.add(event)

    def remove_wakeup(self, event: threading.Event) -> None:
        with self._mutex:
            self._wakeups.discard(event)

    def discard(self, path: str) -> None:
        """Delete our node now, or have the reaper retry until it is gone."""
        try:
            self._zk.delete(path)
        except Disconnected:
            self._doom(path)
        except ZkflockError as exc:
            if self._state != LOST:
                log.info("deleting %s failed (%s); retrying in the background", path, exc)
                self._doom(path)

    def discard_many(self, paths: Sequence[str]) -> None:
        """discard() for several nodes (lock_many), deletes pipelined."""
        if len(paths) <= 1:
            for path in paths:
                self.discard(path)
            return
        try:
            errors: list[ZkflockError | None] = list(self._zk.delete_many(paths))
        except ZkflockError as exc:
            errors = [exc] * len(paths)
        for path, error in zip(paths, errors, strict=True):
            if error is not None and (isinstance(error, Disconnected) or self._state != LOST):
                log.info("deleting %s failed (%s); retrying in the background", path, error)
                self._doom(path)

    def discard_guid(self, parent: str, guid: str) -> None:
        """A create whose reply never came may have made a node: find and delete it."""
        self._reaper.doom_guid(parent, guid)

    def _doom(self, path: str) -> None:
        self._reaper.doom(path)

    # -- connection states --------------------------------------------------

    def _on_state(self, state: str) -> None:
        # kazoo's connection thread: record, wake waiters, defer real work.
        with self._mutex:
            self._state = state
            if state == SUSPENDED:
                self._start_timer()
            elif state == LOST:
                self._cancel_timer()
                self._declare_lost("the ZooKeeper session expired")
            else:
                self._cancel_timer()
                new_id = self._zk.session_id
                if new_id != self._session_id:
                    self._declare_lost("the ZooKeeper session was replaced by a new one")
                    self._session_id = new_id
                self._reaper.kick()
            for event in self._wakeups:
                event.set()
        if self._observer is not NOOP:
            safely(self._observer.session_state, state)

    def _start_timer(self) -> None:
        if self._timer is not None:
            return
        timer = threading.Timer(
            self._zk.negotiated_timeout,
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
            self._timer = None
            self._epoch += 1
            lost = list(self._held.values())
            self._held.clear()
            for event in self._wakeups:
                event.set()
        if lost:
            log.warning("%s: %d lock(s) lost", reason, len(lost))
        for held in lost:
            for node in held.forget_lost(reason):
                self._reaper.doom(node)
            self._reaper.submit(held.notify_lost)


def connect(
    hosts: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    namespace: str | None = None,
    session_timeout: float | None = None,
    connect_timeout: float | None = None,
    auth: Sequence[tuple[str, str]] | tuple[str, str] | str | None = None,
    tls: TLSConfig | None = None,
    acl: AclPolicy | None = None,
    metrics: Observer | None = None,
) -> Session:
    """Connect to ZooKeeper and return a :class:`Session`.

    ``hosts`` defaults to ``ZKFLOCK_HOSTS``, then ``127.0.0.1:2181``. Raises
    :class:`~zkflock.ConnectError` after ``connect_timeout`` if nobody answers.
    ``auth=("digest", "user:password")`` (else ``ZKFLOCK_AUTH`` or
    ``ZKFLOCK_AUTH_FILE``) gives every node zkflock creates the ``acl`` policy
    (default: we may do everything, others only read); ``tls=TLSConfig(...)``
    (else ``ZKFLOCK_TLS_*``) encrypts the connection. See README "Security".
    ``metrics``: an :class:`~zkflock.metrics.Observer` told of every lock event
    and connection state change (default: none).
    """
    return Session(
        hosts,
        root=root,
        namespace=namespace,
        session_timeout=session_timeout,
        connect_timeout=connect_timeout,
        auth=auth,
        tls=tls,
        acl=acl,
        metrics=metrics,
    )
