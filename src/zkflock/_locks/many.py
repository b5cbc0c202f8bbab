"""``lock_many``: several names, all or none, without deadlock.

Every queue is joined with ONE multi-transaction (DESIGN): all nodes of one
multi share one zxid, so any two ``lock_many`` calls are ordered the same way
in every queue they share, whatever order their callers named the files in.
A waiter therefore only ever waits on older transactions and no cycle can
form. Queueing, adopting after a lost reply and waiting are the one path of
``waiting.Waiter``; this class only names the queues. More names than one
ZooKeeper packet holds are queued in several multis, in the sorted order,
behind the gate that keeps every other lock_many out meanwhile (``batches``):
batches alone would let two callers interleave and deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError
from zkflock._locks.drivers import MANY_DRIVER
from zkflock._locks.lock import Lock
from zkflock._names import describe_names

if TYPE_CHECKING:
    from zkflock._session import Session


class MultiLock(Lock):
    """An exclusive lock on several names at once: all or none.

    >>> with zk.lock_many(["b.txt", "a.txt"], timeout=10) as held:   # doctest: +SKIP
    ...     print(held.names, held.token)
    ('a.txt', 'b.txt') 123
    """

    def __init__(
        self,
        session: Session,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        reentrant: bool = False,
        on_lost: Callable[[Lock], None] | None = None,
        purpose: str = "",
    ) -> None:
        from zkflock._session import core_of

        if isinstance(names, str):
            raise ConfigError("lock_many takes a list of names, not one string")
        # Normalise, dedupe and sort: the order callers give never matters.
        core = core_of(session)
        paths = sorted({core.lock_path(name) for name in names})
        if not paths:
            raise ConfigError("lock_many needs at least one name")
        super().__init__(
            session, paths[0][0], timeout=timeout, reentrant=reentrant,
            on_lost=on_lost, purpose=purpose, driver=MANY_DRIVER,
        )
        self._names = tuple(name for name, _ in paths)
        self._parents = tuple(parent for _, parent in paths)
        self._name = describe_names(self._names)
