"""One driver per lock kind: what differs between kinds, and nothing else.

As Curator's ``LockInternalsDriver``: the waiting loop (``waiting.Waiter``)
is composed with a driver and never asks which kind it runs. A driver names
the node prefix, the pure decision "do I hold it, whom do I watch"
(``protocol``), whether a node of the same owner ahead in the queue would be
waited on forever (so the acquire is refused before anything is queued), and
whether a grant after waiting must signal the successor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from zkflock._locks.protocol import (
    EXCLUSIVE,
    READ,
    SEMAPHORE,
    Decision,
    decide_exclusive,
    decide_read,
    decide_semaphore,
    node_prefix,
)

MAX_LEASES = 999_999  # what the node name's s<N> field can carry


@dataclass(frozen=True)
class Driver:
    """A lock kind: ``letter`` is the node-name kind, ``label`` what observers
    and ``repr`` call it."""

    letter: str
    label: str
    decider: Callable[[Iterable[str], str, Iterable[str]], Decision]
    leases: int = 1
    #: Queued behind a node its own owner holds, it would wait for itself.
    excludes_own: bool = True
    #: Waiting on a node queued behind its owner's own hold waits for itself
    #: (a downgrade with another writer waiting): refused. Not for a
    #: semaphore, whose other holders may free a lease.
    refuses_self_wait: bool = True
    #: After waiting, the grant is touched on the node: a semaphore's
    #: successor watches it to learn that it moved up (Decision.signal_grant).
    signals_grant: bool = False

    def prefix(self, guid: str) -> str:
        return node_prefix(self.letter, guid, self.leases)

    def decide(self, children: Iterable[str], me: str, own: Iterable[str]) -> Decision:
        return self.decider(children, me, own)


EXCLUSIVE_DRIVER = Driver(EXCLUSIVE, "exclusive", decide_exclusive)
WRITE_DRIVER = Driver(EXCLUSIVE, "write", decide_exclusive)
READ_DRIVER = Driver(READ, "read", decide_read, excludes_own=False)
MANY_DRIVER = Driver(EXCLUSIVE, "many", decide_exclusive)


def semaphore_driver(max_leases: int) -> Driver:
    """One lease of a semaphore of ``max_leases``."""
    return Driver(
        SEMAPHORE, "semaphore", decide_semaphore, leases=max_leases,
        excludes_own=False, refuses_self_wait=False, signals_grant=True,
    )


def driver_for(kind: str, max_leases: int = 1) -> Driver:
    """The driver of a node kind letter (``Lock(session, name, kind=READ)``)."""
    if kind == SEMAPHORE:
        return semaphore_driver(max_leases)
    return {EXCLUSIVE: EXCLUSIVE_DRIVER, READ: READ_DRIVER}[kind]
