"""The lock-queue requests of the kazoo boundary (a part of ``ZkClient``).

Queueing is where the round trips are: a create and the listing of the queue
go out together (ZooKeeper answers one session's requests in order, so the
listing already shows our node), ``lock_many`` queues in every lock with one
multi-transaction, and a create whose reply was lost is found again by its
guid and adopted only when our current session owns it. A fenced writer
can have the read of its file's metadata ride in the same round trip
(``read_behind_queue``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kazoo import exceptions as ke
from kazoo.client import _prefix_root
from kazoo.protocol.serialization import (
    Create,
    Create2,
    Delete,
    GetChildren,
    GetData,
    Transaction,
)
from kazoo.protocol.states import KeeperState

from zkflock._errors import SessionExpiredError, ZkflockError
from zkflock._zk.errors import (
    MAX_REQUEST,
    Disconnected,
    GateClosedError,
    RequestTooLargeError,
    check_size,
    translated,
)
from zkflock._zk.multiread import MultiRead

EPHEMERAL = 1
EPHEMERAL_SEQUENTIAL = 3  # kazoo's create flags: ephemeral 1 | sequence 2


_HEADER = 9  # a multi's per-operation header: type, done, error
_OVERHEAD = 4 + 8 + _HEADER  # length prefix, xid and type, the closing header


def _create_size(data: bytes, acl: Sequence[Any]) -> int:
    """A create's bytes in a multi, but for its path: as kazoo serialises it
    (header, path length, data, ACL list, flags)."""
    return _HEADER + 4 + 4 + len(data) + 4 + 4 + sum(
        12 + len(a.id.scheme.encode()) + len(a.id.id.encode()) for a in acl
    )


def gate_size(gate: str, acl: Sequence[Any]) -> int:
    """The bytes the gate's create and delete add to a lock_many multi."""
    return _create_size(b"", acl) + len(gate.encode()) + _HEADER + 4 + len(gate.encode()) + 4


def batch_ends(paths: Sequence[str], data: bytes, acl: Sequence[Any]) -> list[int]:
    """Cut a list of creates into multis that each fit in one packet (with
    1% spare: holder data varies in length): the end index of each. Raises
    RequestTooLargeError when one create alone does not fit."""
    fixed = _create_size(data, acl)
    ends: list[int] = []
    size = _OVERHEAD
    for n, path in enumerate(paths):
        one = fixed + len(path.encode())
        if _OVERHEAD + one > MAX_REQUEST * 0.99:
            raise RequestTooLargeError(
                f"one create of {_OVERHEAD + one:,} bytes; ZooKeeper takes at most "
                f"{MAX_REQUEST:,} in one request here (jute.maxbuffer, 1 MiB by default)",
                _OVERHEAD + one, 0,
            )
        if size + one > MAX_REQUEST * 0.99:
            ends.append(n)
            size = _OVERHEAD
        size += one
    return [*ends, len(paths)]


def delete_chunks(paths: Sequence[str]) -> list[Sequence[str]]:
    """Cut a multi of deletes into parts that each fit in one packet."""
    parts: list[Sequence[str]] = []
    first, size = 0, _OVERHEAD
    for n, path in enumerate(paths):
        one = _HEADER + 4 + len(path.encode()) + 4
        if size + one > MAX_REQUEST * 0.99 and n > first:
            parts.append(paths[first:n])
            first, size = n, _OVERHEAD
        size += one
    return [*parts, paths[first:]]


def check_creates(paths: Sequence[str], data: bytes, acl: Sequence[Any], extra: int = 0) -> None:
    """Refuse a multi of creates that would not fit in one packet
    (jute.maxbuffer): the server would drop the connection and kazoo resend
    it for ever, and the session's other locks would be lost meanwhile.
    Sized as kazoo serialises a create (path, data, ACL list, flags), before
    anything is built, so the error can say how many would fit; ``extra``:
    the bytes of the multi's other operations."""
    fixed = _create_size(data, acl)
    size = _OVERHEAD + extra
    fit = None
    # ``fit`` keeps 1% spare: the holder data's timestamps vary in length
    # from one attempt to the next.
    for n, path in enumerate(paths):
        size += fixed + len(path.encode())
        if fit is None and size > MAX_REQUEST * 0.99:
            fit = n
    if size > MAX_REQUEST:
        raise RequestTooLargeError(
            f"a multi of {len(paths):,} creates is {size:,} bytes; ZooKeeper takes at most "
            f"{MAX_REQUEST:,} in one request here (jute.maxbuffer, 1 MiB by default)",
            size,
            fit or 0,
        )


@dataclass(frozen=True)
class Enqueued:
    """A contender node we made (or adopted), its fencing token, the queue."""

    node: str
    token: int
    children: list[str] | None  # None: the listing was lost, look again


@dataclass
class ReadBehind:
    """The read of ``path`` sent right behind one ``enqueue`` under ``parent``
    (its create and listing): filled by that enqueue, else left empty.

    ZooKeeper answers one session's requests in order, so when ``children``
    (the listing) shows ``node`` first in the queue, the lock was ours at
    once and ``got`` shows every write made before the grant. ``got`` is
    None when not read, missing or lost: the caller reads again."""

    parent: str
    path: str
    node: str | None = None
    children: list[str] | None = None
    got: tuple[bytes, int] | None = None  # (data, znode version)


_behind = threading.local()  # the ReadBehind this thread's next enqueue fills


class QueueOps:
    """Lock-queue requests; mixed into ``ZkClient``."""

    _client: Any

    def _bounded(self, result: Any) -> Any:
        raise NotImplementedError

    def _require_connected(self, what: str) -> None:
        raise NotImplementedError

    def _acl(self) -> list[Any]:
        raise NotImplementedError

    @property
    def session_id(self) -> int | None:
        raise NotImplementedError

    def delete(self, path: str) -> bool:
        raise NotImplementedError

    def _pipeline(self, *requests: Any) -> list[Any]:
        """Queue ``requests`` on kazoo's connection in order and wake its
        thread once. kazoo's ``_call`` wakes it with one byte per request, a
        syscall and a GIL handoff each; its loop sends one request per byte
        read, so one write of N bytes sends all N, in order."""
        client = self._client
        results = [client.handler.async_result() for _ in requests]
        write_sock = client._connection._write_sock
        if client._state != KeeperState.CONNECTED or write_sock is None:
            for request, result in zip(requests, results, strict=True):
                client._call(request, result)  # kazoo's own short-circuits
            return results
        for request, result in zip(requests, results, strict=True):
            client._queue.append((request, result))
        try:
            write_sock.send(b"\0" * len(requests))
        except OSError:
            for result in results:
                result.set_exception(ke.ConnectionClosedError("Connection has been closed"))
        return results

    def _container(self, parent: str) -> Any:
        raise NotImplementedError

    @contextmanager
    def read_behind_queue(self, parent: str, path: str) -> Iterator[ReadBehind]:
        """While the block runs, an ``enqueue`` under ``parent`` in this
        thread also reads ``path`` in the same pipeline (no extra round
        trip); what it read is in the yielded ``ReadBehind``.

        A thread-local rather than an argument: the lock's waiting loop,
        between the caller and ``enqueue``, need not know of it."""
        slot = ReadBehind(parent, path)
        outer = getattr(_behind, "slot", None)
        _behind.slot = (self, slot)
        try:
            yield slot
        finally:
            _behind.slot = outer

    def _read_behind(self, parent: str) -> ReadBehind | None:
        pending = getattr(_behind, "slot", None)
        if pending is None or pending[0] is not self or pending[1].parent != parent:
            return None
        slot: ReadBehind = pending[1]
        slot.node = slot.children = slot.got = None  # a retried enqueue starts afresh
        return slot

    def _fill_behind(self, slot: ReadBehind, entry: Enqueued, got: Any) -> None:
        if entry.children is None:
            return  # the listing was lost: the read proves nothing
        try:
            with translated(f"reading {slot.path}"):
                data, stat = self._bounded(got)
        except ZkflockError:  # missing, or lost: the caller reads again
            return
        slot.node, slot.children, slot.got = entry.node, entry.children, (
            bytes(data), int(stat.version))

    def enqueue(
        self, parent: str, prefix: str, data: bytes, *, make_parent: bool = False
    ) -> Enqueued:
        """Create our ephemeral sequential node and list the queue, pipelined.

        ZooKeeper answers one session's requests in order, so the listing sent
        right behind the create already contains our node: one round trip.
        ``make_parent``: a createContainer of the parent goes first in the same
        pipeline (its NodeExists is ignored), so a new name costs no extra
        round trip either.
        """
        self._require_connected(f"queueing under {parent}")
        client = self._client
        check_size(parent, data)
        # Straight to kazoo's request layer: create_async's argument checks and
        # its second async result cost more client CPU than the listing does.
        requests = [
            Create2(
                _prefix_root(client.chroot, f"{parent}/{prefix}", trailing=True),
                data,
                self._acl(),
                EPHEMERAL_SEQUENTIAL,
            ),
            GetChildren(_prefix_root(client.chroot, parent), None),
        ]
        head = [self._container(parent)] if make_parent else []
        behind = self._read_behind(parent)
        if behind is not None:
            requests.append(GetData(_prefix_root(client.chroot, behind.path), None))
        pending = self._pipeline(*head, *requests)
        created, listed = pending[len(head)], pending[len(head) + 1]
        with translated(f"queueing under {parent}"):
            path, stat = self._bounded(created)
        try:
            with translated(f"listing {parent}"):
                children: list[str] | None = list(self._bounded(listed))
        except Disconnected:
            children = None
        entry = Enqueued(path.rsplit("/", 1)[1], int(stat.czxid), children)
        if behind is not None:
            self._fill_behind(behind, entry, pending[-1])
        return entry

    def enqueue_many(
        self,
        parents: Sequence[str],
        prefixes: Sequence[str],
        data: bytes,
        *,
        make_parents: Sequence[str] = (),
        gate: str | None = None,
    ) -> list[Enqueued]:
        """Create one ephemeral sequential node under each parent in ONE
        multi-transaction, and list every queue, pipelined behind it.

        All nodes of one multi share one zxid, so every queue orders any two
        multis the same way: a waiter only ever waits on older transactions
        and no cycle (deadlock) can form. kazoo's multi reply carries paths
        only, so the token (the shared czxid) costs one more round trip.
        ``make_parents`` are created as containers first, in the same pipeline.
        ``gate``: the multi also creates and deletes that ephemeral node, so
        it fails (GateClosedError, nothing made) while a batched lock_many
        holds it. Raises NodeMissingError when a parent is missing (nothing
        was made), and RequestTooLargeError, before anything is sent, when the
        multi would not fit in one packet.
        """
        self._require_connected(f"queueing under {len(parents)} locks")
        client = self._client
        check_size(parents[0], data)
        acl = self._acl()
        paths = [_prefix_root(client.chroot, f"{parent}/{prefix}")
                 for parent, prefix in zip(parents, prefixes, strict=True)]
        gated: list[Any] = []
        if gate is not None:
            rooted = _prefix_root(client.chroot, gate)
            gated = [Create(rooted, b"", acl, EPHEMERAL), Delete(rooted, -1)]
        check_creates(paths, data, acl, gate_size(gate, acl) if gate is not None else 0)
        ops = gated + [Create(path, data, acl, EPHEMERAL_SEQUENTIAL) for path in paths]
        pending = self._pipeline(
            *(self._container(p) for p in make_parents),
            Transaction(ops),
            MultiRead([GetChildren(_prefix_root(client.chroot, p), None) for p in parents]),
        )
        return self._enqueued_many(parents, len(gated), *pending[-2:])

    def _enqueued_many(self, parents: Sequence[str], gated: int, committed: Any,
                       listed_all: Any) -> list[Enqueued]:
        """The replies of ``enqueue_many``'s multi (``gated``: its leading gate
        operations) and listings: our nodes, the shared token (one more
        read), every queue's listing."""
        client = self._client
        with translated(f"queueing under {len(parents)} locks"):
            results = self._bounded(committed)
            failed = [r for r in results if isinstance(r, Exception)]
            real = [r for r in failed if not isinstance(r, ke.RolledBackError)]
            if gated and isinstance(results[0], ke.NodeExistsError):
                raise GateClosedError("a lock_many in batches is queueing: wait for it")
            if failed:
                raise (real or failed)[0]
        results = results[gated:]
        nodes = [str(path).rsplit("/", 1)[1] for path in results]
        with translated(f"reading {parents[0]}/{nodes[0]}"):
            stat = self._bounded(client.exists_async(f"{parents[0]}/{nodes[0]}"))
        if stat is None:  # pragma: no cover - our ephemeral node is gone: the session
            raise SessionExpiredError("the ZooKeeper session expired while queueing")
        try:
            with translated(f"listing {len(parents)} lock queues"):
                listings: list[Any] = list(self._bounded(listed_all))
        except Disconnected:
            listings = [None] * len(parents)
        # A listing that failed (or was lost) is looked at again by the waiter.
        return [
            Enqueued(node, int(stat.czxid), None if not isinstance(kids, list) else kids)
            for node, kids in zip(nodes, listings, strict=True)
        ]

    def batch_ends(self, parents: Sequence[str], prefix: str, data: bytes) -> list[int]:
        """Where to cut creates of ``prefix`` under ``parents`` into multis
        that each fit in one packet (:func:`batch_ends`)."""
        check_size(parents[0], data)
        chroot = self._client.chroot
        return batch_ends([_prefix_root(chroot, f"{p}/{prefix}") for p in parents], data,
                          self._acl())

    def create_gate(self, path: str) -> str:
        """Create the ephemeral gate node: "made", or, when it exists, "ours"
        (our session's, from a lost reply or a delete that failed) or
        "theirs". NodeMissingError when its parent is missing."""
        client = self._client
        with translated(f"creating {path}"):
            try:
                self._bounded(client.create_async(path, b"", acl=self._acl(), ephemeral=True))
                return "made"
            except ke.NodeExistsError:
                stat = self._bounded(client.exists_async(path))
        return "ours" if stat is not None and stat.ephemeralOwner == self.session_id else "theirs"

    def drop_gate(self, path: str) -> None:
        """Delete the gate node if our session owns it; never another's."""
        with translated(f"reading {path}"):
            stat = self._bounded(self._client.exists_async(path))
        if stat is not None and stat.ephemeralOwner == self.session_id:
            self.delete(path)

    def find_own(self, parent: str, guid: str) -> Enqueued | None:
        """After a lost create reply: find our node by its guid, and adopt it
        only if our current session owns it.

        A node of an earlier, dying session is deleted instead: kazoo matches
        the guid alone and can adopt a node the server is about to remove with
        its session (Curator's CURATOR-498).
        """
        with translated(f"listing {parent}"):
            children = self._bounded(self._client.get_children_async(parent))
        session = self.session_id
        for child in children:
            if guid not in child:
                continue
            path = f"{parent}/{child}"
            with translated(f"reading {path}"):
                stat = self._bounded(self._client.exists_async(path))
            if stat is None:
                continue
            if stat.ephemeralOwner == session:
                return Enqueued(child, int(stat.czxid), list(children))
            self.delete(path)
        return None
