"""The cluster's lock state, read from ZooKeeper in three waves of requests.

Per lock under the namespace: holders and waiters by kind, when the oldest
holder got it and when the oldest waiter queued. One pass costs one listing
of the namespace, one listing per lock and one read of the first holder's
and the first waiter's node per lock, the last two waves sent as multiReads
of up to 256 operations each: three round trips and about 1 + 3N/256
requests. Who holds is decided from the node names by the locks' own pure
``decide``, exactly as the contenders decide it.

A holder's age is exact for a lock granted at once, which records
``acquired_at`` in its node, and otherwise an upper bound: one granted after
waiting records nothing (that write would cost every handoff a request and
wake the next waiter for nothing), so the reader remembers which nodes it
saw waiting and dates a grant to the last read that still saw it waiting
(at most one interval early); a holder never seen waiting is dated by when
it queued.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError
from zkflock._locks.protocol import EXCLUSIVE, READ, SEMAPHORE, decide, queue
from zkflock._names import decode_node_name
from zkflock._zk.listing import (
    NodeRead,
    list_children_many,
    list_children_multi,
    multi_requests,
    read_multi,
)

if TYPE_CHECKING:
    from zkflock._session import Session

#: The kinds as ``zkflock status`` names them (a node name cannot tell an
#: exclusive lock from a write lock: both queue as ``x``).
KINDS = {EXCLUSIVE: "exclusive", READ: "shared", SEMAPHORE: "semaphore"}


@dataclass(frozen=True)
class QueueSummary:
    """Who holds and who waits in one lock's queue, from its children alone."""

    holders: dict[str, int]  # kind -> how many
    waiters: dict[str, int]
    first_holder: str | None  # the node names to read for the ages
    first_waiter: str | None
    waiting: tuple[str, ...] = ()  # every waiter's node name


@dataclass(frozen=True)
class LockState:
    """One lock in a snapshot; times are epoch seconds."""

    name: str
    holders: dict[str, int]
    waiters: dict[str, int]
    holder_since: float | None  # the oldest holder was granted then
    waiter_since: float | None  # the oldest waiter queued then


@dataclass(frozen=True)
class Snapshot:
    """Every lock at one moment, and what reading them cost."""

    taken_at: float  # epoch seconds, when the read began
    locks: tuple[LockState, ...]
    requests: int
    seconds: float


def summarize_queue(children: Sequence[str]) -> QueueSummary | None:
    """Holders and waiters by kind (None when no contender is queued)."""
    contenders = queue(children)
    if not contenders:
        return None
    names = [c.name for c in contenders]
    holders: dict[str, int] = {}
    waiters: dict[str, int] = {}
    first_holder = first_waiter = None
    waiting = []
    for contender in contenders:
        try:
            held = decide(names, contender.name).held
        except ConfigError:  # a semaphore and a lock on one name: it waits for ever
            held = False
        counts = holders if held else waiters
        kind = KINDS.get(contender.kind, contender.kind)
        counts[kind] = counts.get(kind, 0) + 1
        if held and first_holder is None:
            first_holder = contender.name
        if not held:
            waiting.append(contender.name)
            first_waiter = first_waiter or contender.name
    return QueueSummary(holders, waiters, first_holder, first_waiter, tuple(waiting))


class GrantMemory:
    """Which nodes the last read saw waiting; for each holder seen waiting
    before, the time of the last read that still saw it wait."""

    def __init__(self) -> None:
        self._waiting: set[str] = set()
        self._read_at = 0.0
        self._granted: dict[str, float] = {}

    def update(self, waiting: set[str], holding: set[str], now: float) -> None:
        """Record one read: ``waiting`` and (first) ``holding`` node paths."""
        granted = {n: t for n, t in self._granted.items() if n in holding}
        for node in holding - granted.keys():
            if node in self._waiting:
                granted[node] = self._read_at  # granted since then: at most this old
        self._granted, self._waiting, self._read_at = granted, waiting, now

    def granted_at(self, node: str) -> float | None:
        return self._granted.get(node)


def holder_since(read: NodeRead, granted_at: float | None = None) -> float:
    """When a holder was granted: the ``acquired_at`` it recorded, else the
    grant's earliest possible time from a :class:`GrantMemory`, else when it
    queued."""
    try:
        info = json.loads(read.data.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        info = None
    value = info.get("acquired_at") if isinstance(info, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return granted_at if granted_at is not None else read.ctime


def read_snapshot(session: Session, memory: GrantMemory | None = None) -> Snapshot:
    """Every lock with a queue under the session's namespace, now. Pass the
    same ``memory`` to every read to date the grants of holders that waited."""
    zk = session.zk
    started, taken_at = time.monotonic(), time.time()
    base = f"{session.settings.namespace}/locks"
    (names,) = list_children_many(zk, [base])
    names = sorted(names or [])
    parents = [f"{base}/{n}" for n in names]
    listings = list_children_multi(zk, parents)
    found: list[tuple[str, str, QueueSummary]] = []
    for name, parent, kids in zip(names, parents, listings, strict=True):
        summary = None if kids is None else summarize_queue(kids)
        if summary is not None:
            found.append((decode_node_name(name), parent, summary))
    wanted = [f"{parent}/{node}" for _n, parent, s in found
              for node in (s.first_holder, s.first_waiter) if node is not None]
    reads = dict(zip(wanted, read_multi(zk, wanted), strict=True))
    memory = memory or GrantMemory()
    memory.update({f"{parent}/{n}" for _n, parent, s in found for n in s.waiting},
                  {f"{parent}/{s.first_holder}" for _n, parent, s in found if s.first_holder},
                  taken_at)
    locks = []
    for name, parent, s in found:
        holder = f"{parent}/{s.first_holder}"
        held = reads.get(holder) if s.first_holder else None
        waiting = reads.get(f"{parent}/{s.first_waiter}") if s.first_waiter else None
        locks.append(LockState(
            name, s.holders, s.waiters,
            None if held is None else holder_since(held, memory.granted_at(holder)),
            None if waiting is None else waiting.ctime,
        ))
    requests = 1 + multi_requests(len(parents)) + multi_requests(len(wanted))
    return Snapshot(taken_at, tuple(locks), requests, time.monotonic() - started)
