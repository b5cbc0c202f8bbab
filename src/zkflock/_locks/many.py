"""``lock_many``: several names, all or none, without deadlock.

Every queue is joined with ONE multi-transaction (DESIGN): all nodes of one
multi share one zxid, so any two ``lock_many`` calls are ordered the same way
in every queue they share, whatever order their callers named the files in.
A waiter therefore only ever waits on older transactions and no cycle can
form. Waiting is the shared loop of :class:`~zkflock._locks.lock.Lock`, queue by
queue under one deadline: being granted in a queue is permanent until we
release, so waiting for the queues in turn takes as long as the slowest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError, LockTimeoutError
from zkflock._locks.lock import Lock, holder_data
from zkflock._locks.protocol import EXCLUSIVE, node_prefix
from zkflock._zk.client import new_guid, remaining
from zkflock._zk.errors import Disconnected, NodeMissingError
from zkflock._zk.queue import Enqueued

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
        if isinstance(names, str):
            raise ConfigError("lock_many takes a list of names, not one string")
        # Normalise, dedupe and sort: the order callers give never matters.
        paths = sorted({session.lock_path(name) for name in names})
        if not paths:
            raise ConfigError("lock_many needs at least one name")
        super().__init__(
            session,
            paths[0][0],
            kind=EXCLUSIVE,
            timeout=timeout,
            reentrant=reentrant,
            on_lost=on_lost,
            purpose=purpose,
            label="many",
        )
        self._names = tuple(name for name, _ in paths)
        self._parents = tuple(parent for _, parent in paths)
        self._name = ", ".join(self._names)

    @property
    def names(self) -> tuple[str, ...]:
        """The normalised names, sorted."""
        return self._names

    def _enqueue(self, deadline: float | None) -> list[Enqueued]:
        """One multi-transaction for every queue; missing parents are made
        and the multi retried. After a lost reply, the multi either made
        every node or none (it is atomic), so finding one finds all."""
        zk = self._session.zk
        guid = new_guid()
        prefixes = [node_prefix(EXCLUSIVE, guid)] * len(self._parents)
        data = holder_data(EXCLUSIVE, self._purpose, acquired=False)
        maybe_created = False
        while True:
            try:
                if maybe_created:
                    found = self._find_own(guid)
                    if found is not None:
                        return found
                    # Strays of that guid are being deleted: queue afresh.
                    maybe_created = False
                    guid = new_guid()
                    prefixes = [node_prefix(EXCLUSIVE, guid)] * len(self._parents)
                return zk.enqueue_many(self._parents, prefixes, data)
            except NodeMissingError:
                for parent in self._parents:
                    self._session.ensure_parent(parent)
            except Disconnected:
                maybe_created = True
                if not zk.wait_connected(remaining(deadline)):
                    for parent in self._parents:
                        self._session.discard_guid(parent, guid)
                    raise LockTimeoutError(self._name, self._timeout) from None

    def _find_own(self, guid: str) -> list[Enqueued] | None:
        zk = self._session.zk
        found = []
        for parent in self._parents:
            entry = zk.find_own(parent, guid)
            if entry is None:
                # Not committed (or not by this session): delete any strays
                # found by guid, then send the multi again.
                for other in self._parents:
                    self._session.discard_guid(other, guid)
                return None
            found.append(entry)
        return found
