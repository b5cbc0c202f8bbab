"""The old, obviously-correct decision: the reference model of the fast one.

This is ``zkflock._locks.protocol`` as it was before the hot-path work: every
child parsed into a ``Contender`` and the lot sorted by sequence number. The
property test in ``test_protocol.py`` checks that the fast decision equals
this one on random listings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zkflock._errors import ConfigError
from zkflock._locks.protocol import (
    EXCLUSIVE,
    READ,
    SEMAPHORE,
    Contender,
    Decision,
    NotQueuedError,
)

_NODE_RE = re.compile(r"(x|r|s[1-9][0-9]{0,5})-([0-9a-f]{32})-([0-9]{10,})")
_ALONE = Decision(held=True, position=0)


def parse_node(name: str) -> Contender | None:
    match = _NODE_RE.fullmatch(name)
    if match is None:
        return None
    kind_text, guid, seq = match.groups()
    if kind_text.startswith("s"):
        return Contender(name, SEMAPHORE, int(kind_text[1:]), guid, int(seq))
    return Contender(name, kind_text, 1, guid, int(seq))


def queue(children: Iterable[str]) -> list[Contender]:
    parsed = (parse_node(c) for c in children)
    return sorted((c for c in parsed if c is not None), key=lambda c: c.seq)


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
