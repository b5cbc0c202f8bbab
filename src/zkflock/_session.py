"""``connect()`` and ``Session``: one ZooKeeper session, shared by threads.

``Session`` is a thin face: the locks, the registry of held nodes, loss
epochs and node deletion live in the session's private core
(``_locks.core.LockCore``), reached by the lock kinds through
:func:`core_of`. The owner of a lock is the lock object, never the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from zkflock._config import Settings, resolve
from zkflock._locks.core import LockCore
from zkflock._zk.client import ZkClient
from zkflock.metrics import NOOP, Observer

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from zkflock._files.shared_file import SharedFile
    from zkflock._locks.lock import Lock
    from zkflock._locks.many import MultiLock
    from zkflock._locks.status import Holder
    from zkflock._security import AclPolicy, TLSConfig

class Session:
    """A ZooKeeper session that threads share; each lock belongs to its lock object.

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
            zk = ZkClient(client, owned=False)
        else:
            from zkflock._security import open_client

            # auth/tls: the arguments, then ZKFLOCK_AUTH(_FILE) / ZKFLOCK_TLS_*.
            zk = open_client(self.settings, auth=auth, tls=tls, acl=acl)
        self._core = LockCore(zk, self.settings, NOOP if metrics is None else metrics)

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
        from zkflock._locks.drivers import EXCLUSIVE_DRIVER
        from zkflock._locks.lock import Lock

        return Lock(
            self, name, timeout=timeout, reentrant=reentrant, on_lost=on_lost, purpose=purpose,
            driver=EXCLUSIVE_DRIVER,
        )

    def read_lock(self, name: str, **kw: Any) -> Lock:
        """A shared lock on ``name``: readers share it, waiting only on an
        earlier writer. Takes the keywords of :meth:`lock`."""
        from zkflock._locks.drivers import READ_DRIVER
        from zkflock._locks.lock import Lock

        return Lock(self, name, driver=READ_DRIVER, **kw)

    def write_lock(self, name: str, **kw: Any) -> Lock:
        """An exclusive lock on ``name`` against readers and writers alike.
        Holding it, a ``read_lock`` on the same name taken by the same thread
        is granted at once (a downgrade); another thread's waits. Takes the
        keywords of :meth:`lock`."""
        from zkflock._locks.drivers import WRITE_DRIVER
        from zkflock._locks.lock import Lock

        return Lock(self, name, driver=WRITE_DRIVER, **kw)

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

        return list_holders(self._core, name)

    def lock_names(self) -> list[str]:
        """Names of every lock that has a queue now."""
        from zkflock._locks.status import list_lock_names

        return list_lock_names(self._core)

    def shared_file(self, name: str) -> SharedFile:
        """A fenced file ``name`` (relative to the root): see :class:`SharedFile`."""
        from zkflock._files.shared_file import SharedFile

        return SharedFile(self, name)

    @property
    def observer(self) -> Observer:
        """The observer given as ``metrics=`` (:data:`zkflock.metrics.NOOP` if none)."""
        return self._core.observer

    @property
    def hosts(self) -> str:
        return self.settings.hosts

    @property
    def connected(self) -> bool:
        return self._core.connected

    def lock_path(self, name: str) -> tuple[str, str]:
        """(normalised name, the lock's parent znode) of lock ``name``."""
        return self._core.lock_path(name)

    @property
    def zk(self) -> ZkClient:
        """The kazoo boundary (for the fenced files, the benchmarks and tests)."""
        return self._core.zk

    def close(self) -> None:
        """Release every lock this session holds and end the session."""
        self._core.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def core_of(session: Session) -> LockCore:
    """The private core of ``session``, for the lock kinds (``_locks``)."""
    return session._core


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
