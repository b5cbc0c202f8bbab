"""lock_many of more names than one multi holds: batches behind the gate.

Batches in one global order alone deadlock (README, "Who owns a lock"): two
callers whose batch boundaries differ wait for each other. So a lock_many in
batches first holds the *gate*, one ephemeral node that every lock_many's
multi also creates and deletes within itself: while the gate exists, every
other lock_many's multi fails whole and waits for the gate to go. Between
the gate's creation and its deletion the only lock_many nodes created are
this caller's batches, so in every queue they stand where one multi's nodes
would: a lock_many still waits only for earlier ones, and no cycle can form.
Single locks never hold one node while waiting for another: they need no
gate. The gate is ephemeral, so a caller that dies frees it with its
session; only the session that owns it ever deletes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from zkflock._errors import ConfigError
from zkflock._zk.client import new_guid, remaining
from zkflock._zk.errors import MAX_REQUEST, Disconnected, NodeMissingError, RequestTooLargeError
from zkflock._zk.queue import Enqueued

if TYPE_CHECKING:
    from zkflock._locks.core import LockCore


class Batches:
    """Queue in every one of ``parents`` (sorted) with several multis, holding
    the gate meanwhile. ``wait_on(paths, deadline)`` waits for a change of
    one of ``paths`` (None: the deadline passed)."""

    def __init__(
        self,
        core: LockCore,
        name: str,
        parents: tuple[str, ...],
        prefix: Callable[[str], str],
        data: bytes,
        wait_on: Callable[[list[str], float | None], bool | None],
        check_cancelled: Callable[[], None],
    ) -> None:
        self._core = core
        self._name = name  # a few of the names, for messages
        self._parents = parents
        self._prefix = prefix
        self._data = data
        self._wait_on = wait_on
        self._check_cancelled = check_cancelled
        self._inflight: Sequence[str] = ()

    def enqueue(self, deadline: float | None) -> list[Enqueued] | None:
        """Our node in every queue, or None when the deadline passed first
        (nothing of ours is left then)."""
        ends = self._ends()
        left = remaining(deadline)
        if not self._core.gate_mutex.acquire(timeout=-1 if left is None else left):
            return None
        try:
            while True:
                made: list[tuple[str, Enqueued]] = []
                guid = new_guid()
                try:
                    if not self._close_gate(deadline):
                        return None
                    self._send_all(ends, guid, made)
                    return [entry for _, entry in made]
                except Disconnected:
                    pass  # undone below; queue afresh once connected
                except BaseException:
                    self._undo(made, guid)
                    raise
                finally:
                    self._core.drop_gate()
                self._undo(made, guid)
                if not self._core.zk.wait_connected(remaining(deadline)):
                    return None
        finally:
            self._core.gate_mutex.release()

    def _ends(self) -> list[int]:
        try:
            return self._core.zk.batch_ends(self._parents, self._prefix(new_guid()), self._data)
        except RequestTooLargeError as exc:
            raise ConfigError(
                f"lock_many of {len(self._parents):,} names ({self._name}): {exc}; not even "
                "one name fits in a "
                f"request ({MAX_REQUEST:,} bytes, jute.maxbuffer): shorten the purpose. "
                "Nothing was sent"
            ) from exc

    def _close_gate(self, deadline: float | None) -> bool:
        """Create the gate (ours from an earlier lost reply counts); wait
        while another session holds it. False at the deadline."""
        core, gate = self._core, self._core.gate_path
        while True:
            self._check_cancelled()
            try:
                state = core.zk.create_gate(gate)
            except NodeMissingError:
                core.zk.ensure_persistent(gate.rsplit("/", 1)[0])
                continue
            if state != "theirs":
                return True
            if self._wait_on([gate], deadline) is None:
                return False

    def _send_all(self, ends: list[int], guid: str, made: list[tuple[str, Enqueued]]) -> None:
        start = 0
        for end in ends:
            parents = self._parents[start:end]
            self._inflight = parents
            made.extend(zip(parents, self._send(parents, guid), strict=True))
            start = end
        self._inflight = ()

    def _send(self, parents: tuple[str, ...], guid: str) -> list[Enqueued]:
        core = self._core
        prefix = self._prefix(guid)
        while True:
            unknown = [p for p in parents if not core.parent_known(p)]
            try:
                entries = core.zk.enqueue_many(
                    parents, [prefix] * len(parents), self._data, make_parents=unknown
                )
            except NodeMissingError:
                for parent in parents:
                    core.ensure_parent(parent)
                continue
            core.parents_seen(unknown)
            return entries

    def _undo(self, made: list[tuple[str, Enqueued]], guid: str) -> None:
        """Delete what this attempt made, and whatever the batch whose reply
        was lost may have made."""
        self._core.discard([f"{parent}/{entry.node}" for parent, entry in made])
        for parent in self._inflight:
            self._core.discard_guid(parent, guid)
        self._inflight = ()
