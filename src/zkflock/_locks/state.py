"""A lock object's state: one immutable value, swapped under the object's lock.

``Idle`` (not held), ``Queued`` (an owner is acquiring), ``Held`` (nodes,
token, epoch, the owner and its re-entry count) or ``Lost`` (why). Every
transition replaces the whole value, so no path can forget to reset a field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Idle:
    """Not held; nobody acquiring."""


@dataclass(frozen=True)
class Queued:
    """``owner`` (a thread, or an asyncio task) is acquiring."""

    owner: object


@dataclass(frozen=True)
class Held:
    """Held by ``owner`` ``count`` times (re-entries) since ``since``
    (monotonic seconds); ``paths`` are our nodes, one per queue."""

    owner: object
    count: int
    paths: tuple[str, ...]
    token: int
    epoch: int
    since: float
    key: int  # the core's registry key


@dataclass(frozen=True)
class Lost:
    """The session declared the lock lost; ``release()`` acknowledges it."""

    reason: str


IDLE = Idle()
LockState = Idle | Queued | Held | Lost
