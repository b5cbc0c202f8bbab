"""The pure core of every lock kind: node names, queue order, and the decision.

A contender is an ephemeral sequential znode under the lock's parent, named
``{kind}-{guid}-{seq}``:

- ``kind`` is ``x`` (exclusive / write), ``r`` (read, shared) or ``s{N}``
  (one lease of a semaphore of N). Putting the kind in the name lets every
  contender decide from one children listing, without reading anyone's data.
- ``guid`` is fresh per acquire attempt: a create whose reply was lost in a
  connection drop is found again by it ("protected" names, as kazoo and
  Curator do).
- ``seq`` is ZooKeeper's sequence suffix, which orders the queue.

:func:`decide` answers "do I hold it, and whom do I watch" as a pure function
of the children listing, the way Curator's lock drivers do. Each waiter
watches as few nodes as it can so that a release wakes one waiter, not a herd.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from zkflock._errors import ConfigError

EXCLUSIVE = "x"
READ = "r"
SEMAPHORE = "s"

_NODE_RE = re.compile(r"^(x|r|s[1-9][0-9]{0,5})-([0-9a-f]{32})-([0-9]{10,})$")


@dataclass(frozen=True)
class Contender:
    """One node in a lock's queue, parsed from its name."""

    name: str
    kind: str
    leases: int
    guid: str
    seq: int


def node_prefix(kind: str, guid: str, max_leases: int = 1) -> str:
    """The name a contender asks ZooKeeper for; the server appends the sequence."""
    if kind == SEMAPHORE:
        return f"s{max_leases}-{guid}-"
    return f"{kind}-{guid}-"


def parse_node(name: str) -> Contender | None:
    """Parse a child name; ``None`` for names that are not ours."""
    match = _NODE_RE.match(name)
    if match is None:
        return None
    kind_text, guid, seq = match.groups()
    if kind_text.startswith("s"):
        return Contender(name, SEMAPHORE, int(kind_text[1:]), guid, int(seq))
    return Contender(name, kind_text, 1, guid, int(seq))


def queue(children: Iterable[str]) -> list[Contender]:
    """Our contenders in grant order (by sequence number)."""
    parsed = (parse_node(c) for c in children)
    return sorted((c for c in parsed if c is not None), key=lambda c: c.seq)


@dataclass(frozen=True)
class Decision:
    """What a contender should do next.

    ``held``: it holds the lock now. ``watch``: the nodes whose change may let
    it in (each watched with a getData watch). ``grant_on_delete``: if any
    watched node is deleted, it holds the lock without listing the children
    again, because nothing else stands before it and newcomers queue behind.
    ``signal_grant``: on being granted after waiting it must touch its own
    node, because its successor watches it to learn that it moved up.
    """

    held: bool
    position: int
    watch: tuple[str, ...] = ()
    grant_on_delete: bool = False
    signal_grant: bool = False


_ALONE = Decision(held=True, position=0)


class NotQueuedError(LookupError):
    """Our node is not in the listing: the session that made it is gone."""


def _locate(children: Iterable[str], me: str) -> tuple[Contender, list[Contender]]:
    """Our contender and everyone queued before it; NotQueuedError if absent."""
    contenders = queue(children)
    index = next((i for i, c in enumerate(contenders) if c.name == me), None)
    if index is None:
        raise NotQueuedError(me)
    return contenders[index], contenders[:index]


def _alone(children: Iterable[str], me: str) -> bool:
    # The uncontended fast path: alone in the queue, any kind holds.
    return isinstance(children, list) and children == [me] and parse_node(me) is not None


def decide(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """Decide for node ``me`` given the parent's children, by the kind its
    name carries (for ``status``; a waiter calls its driver's function).

    ``own`` names nodes the deciding owner (a thread) already holds on the
    same lock: a reader is not blocked by its own writer (downgrade), and a
    writer that would queue behind its own holds would wait forever
    (upgrade), which is refused.
    """
    if _alone(children, me):
        return _ALONE
    mine, _ = _locate(children, me)
    decider = {SEMAPHORE: decide_semaphore, READ: decide_read}.get(mine.kind, decide_exclusive)
    return decider(children, me, own)


def decide_exclusive(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """An exclusive (write) contender: held when first; else watch the predecessor."""
    if _alone(children, me):
        return _ALONE
    _, before = _locate(children, me)
    if any(c.kind == SEMAPHORE for c in before):
        raise ConfigError("a semaphore and a lock share one name; use distinct names")
    own_set = set(own)
    if any(c.name in own_set for c in before):
        raise ConfigError(
            "this thread already holds this lock; a write lock behind it would wait "
            "forever (upgrading a read lock is not supported: release it first)"
        )
    index = len(before)
    if not before:
        return Decision(held=True, position=0)
    return Decision(
        held=False,
        position=index,
        watch=(before[-1].name,),
        grant_on_delete=index == 1,
    )


def decide_read(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """A reader: held unless a writer (not our own) is queued before it."""
    if _alone(children, me):
        return _ALONE
    _, before = _locate(children, me)
    if any(c.kind == SEMAPHORE for c in before):
        raise ConfigError("a semaphore and a lock share one name; use distinct names")
    return _decide_read(before, len(before), set(own))


def decide_semaphore(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """One lease of a semaphore: held among the first ``leases`` contenders."""
    if _alone(children, me):
        return _ALONE
    mine, before = _locate(children, me)
    return _decide_semaphore(mine, before, len(before))


def _decide_read(before: list[Contender], index: int, own: set[str]) -> Decision:
    writers = [c for c in before if c.kind == EXCLUSIVE and c.name not in own]
    if not writers:
        return Decision(held=True, position=index)
    # Watch only the nearest writer: its release wakes the readers behind it
    # and nobody else; watches only ever point backwards, so no cycles form
    # between readers and writers (kazoo #649).
    return Decision(
        held=False,
        position=index,
        watch=(writers[-1].name,),
        grant_on_delete=len(writers) == 1,
    )


def _decide_semaphore(mine: Contender, before: list[Contender], index: int) -> Decision:
    if any(c.kind != SEMAPHORE for c in before):
        raise ConfigError("a semaphore and a lock share one name; use distinct names")
    disagree = {c.leases for c in before if c.leases != mine.leases}
    if disagree:
        raise ConfigError(
            f"callers disagree on max_leases for this semaphore: {mine.leases} here, "
            f"{sorted(disagree)} elsewhere; every caller must pass the same number"
        )
    limit = mine.leases
    if index < limit:
        return Decision(held=True, position=index)
    if index == limit:
        # The first waiter: any holder leaving lets it in, so it watches all.
        return Decision(
            held=False,
            position=index,
            watch=tuple(c.name for c in before),
            grant_on_delete=True,
            signal_grant=limit > 1,
        )
    # A later waiter watches its predecessor only. When the predecessor is
    # granted it touches its node (signal_grant), which wakes this waiter to
    # become the first waiter; when it leaves, this waiter moves up.
    return Decision(
        held=False,
        position=index,
        watch=(before[-1].name,),
        signal_grant=limit > 1,
    )
