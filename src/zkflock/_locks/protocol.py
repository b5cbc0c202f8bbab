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

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from zkflock._errors import ConfigError

EXCLUSIVE = "x"
READ = "r"
SEMAPHORE = "s"

_NODE_RE = re.compile(r"(x|r|s[1-9][0-9]{0,5})-([0-9a-f]{32})-([0-9]{10,})")
#: ZooKeeper's sequence suffix is 10 digits (``%010d``).
_SEQ_DIGITS = 10
#: Names of ours with a 10-digit sequence, each followed by "/".
_LISTING_RE = re.compile(r"(?:(?:x|r|s[1-9][0-9]{0,5})-[0-9a-f]{32}-[0-9]{10}/)*")
_suffix = operator.itemgetter(slice(-_SEQ_DIGITS, None))


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
    match = _NODE_RE.fullmatch(name)
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


def _locate(children: Iterable[str], me: str) -> tuple[str, list[str]]:
    """Our node's kind field (``x``, ``r``, ``s3``) and the names of ours
    queued before it, in grant order; NotQueuedError if ours is absent.

    Every waiter does this on every wake-up, so it must not parse each child
    (a regex and an object per node cost ~350 µs per 100-node listing, ten
    times kazoo's sort by suffix): only children whose 10-digit suffix is not
    after ours can be before us, they are checked by one regex over the lot
    and ordered by that suffix. Anything unusual (a name that is not ours
    among them, a sequence longer than ZooKeeper's 10 digits) takes the
    per-name parse; both give the order :func:`queue` gives.
    """
    match = _NODE_RE.fullmatch(me)
    if match is None:
        raise NotQueuedError(me)
    names = children if isinstance(children, list) else list(children)
    ordered = None
    candidates = names
    if len(match[3]) == _SEQ_DIGITS:
        key = match[3]
        # A name of ours sorting after ours by its last 10 characters has a
        # later sequence number, however many digits it has.
        candidates = [c for c in names if c[-_SEQ_DIGITS:] <= key]
        ordered = _ordered_fast(candidates)
    if ordered is None:
        ordered = [c.name for c in queue(candidates)]
    try:
        index = ordered.index(me)
    except ValueError:
        raise NotQueuedError(me) from None
    return match[1], ordered[:index]


def _ordered_fast(candidates: list[str]) -> list[str] | None:
    """``candidates`` in grant order if every one is a name of ours with a
    10-digit sequence (their order is their suffixes' order); else None."""
    # "/" cannot occur in a child's name, so it cannot fake a boundary.
    if _LISTING_RE.fullmatch("/".join(candidates) + "/") is None:
        return None
    return sorted(candidates, key=_suffix)


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
    kind, _ = _locate(children, me)
    decider = {SEMAPHORE: decide_semaphore, READ: decide_read}.get(kind[0], decide_exclusive)
    return decider(children, me, own)


def _refuse_semaphore_among(before: list[str]) -> None:
    if any(c[0] == SEMAPHORE for c in before):
        raise ConfigError("a semaphore and a lock share one name; use distinct names")


def decide_exclusive(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """An exclusive (write) contender: held when first; else watch the predecessor."""
    if _alone(children, me):
        return _ALONE
    _, before = _locate(children, me)
    _refuse_semaphore_among(before)
    own_set = set(own)
    if own_set and not own_set.isdisjoint(before):
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
        watch=(before[-1],),
        grant_on_delete=index == 1,
    )


def decide_read(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """A reader: held unless a writer (not our own) is queued before it."""
    if _alone(children, me):
        return _ALONE
    _, before = _locate(children, me)
    _refuse_semaphore_among(before)
    own_set = set(own)
    writers = [c for c in before if c[0] == EXCLUSIVE and c not in own_set]
    if not writers:
        return Decision(held=True, position=len(before))
    # Watch only the nearest writer: its release wakes the readers behind it
    # and nobody else; watches only ever point backwards, so no cycles form
    # between readers and writers (kazoo #649).
    return Decision(
        held=False,
        position=len(before),
        watch=(writers[-1],),
        grant_on_delete=len(writers) == 1,
    )


def decide_semaphore(children: Iterable[str], me: str, own: Iterable[str] = ()) -> Decision:
    """One lease of a semaphore: held among the first ``leases`` contenders."""
    if _alone(children, me):
        return _ALONE
    kind, before = _locate(children, me)
    if any(c[0] != SEMAPHORE for c in before):
        raise ConfigError("a semaphore and a lock share one name; use distinct names")
    leases = int(kind[1:]) if kind[0] == SEMAPHORE else 1
    same = f"s{leases}-"
    disagree = {int(c[1 : c.index("-")]) for c in before if not c.startswith(same)}
    if disagree:
        raise ConfigError(
            f"callers disagree on max_leases for this semaphore: {leases} here, "
            f"{sorted(disagree)} elsewhere; every caller must pass the same number"
        )
    return _semaphore_decision(leases, before)


def _semaphore_decision(limit: int, before: list[str]) -> Decision:
    index = len(before)
    if index < limit:
        return Decision(held=True, position=index)
    if index == limit:
        # The first waiter: any holder leaving lets it in, so it watches all.
        return Decision(
            held=False,
            position=index,
            watch=tuple(before),
            grant_on_delete=True,
            signal_grant=limit > 1,
        )
    # A later waiter watches its predecessor only. When the predecessor is
    # granted it touches its node (signal_grant), which wakes this waiter to
    # become the first waiter; when it leaves, this waiter moves up.
    return Decision(
        held=False,
        position=index,
        watch=(before[-1],),
        signal_grant=limit > 1,
    )
