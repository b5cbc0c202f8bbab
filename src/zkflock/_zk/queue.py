"""The lock-queue requests of the kazoo boundary (a part of ``ZkClient``).

Queueing is where the round trips are: a create and the listing of the queue
go out together (ZooKeeper answers one session's requests in order, so the
listing already shows our node), ``lock_many`` queues in every lock with one
multi-transaction, and a create whose reply was lost is found again by its
guid and adopted only when our current session owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kazoo import exceptions as ke
from kazoo.client import _prefix_root
from kazoo.protocol.serialization import (
    Create,
    Create2,
    GetChildren,
    Transaction,
)
from kazoo.protocol.states import KeeperState

from zkflock._errors import SessionExpiredError
from zkflock._zk.errors import (
    MAX_REQUEST,
    Disconnected,
    RequestTooLargeError,
    check_size,
    translated,
)
from zkflock._zk.multiread import MultiRead

EPHEMERAL_SEQUENTIAL = 3  # kazoo's create flags: ephemeral 1 | sequence 2


_HEADER = 9  # a multi's per-operation header: type, done, error
_OVERHEAD = 4 + 8 + _HEADER  # length prefix, xid and type, the closing header


def check_creates(paths: Sequence[str], data: bytes, acl: Sequence[Any]) -> None:
    """Refuse a multi of creates that would not fit in one packet
    (jute.maxbuffer): the server would drop the connection and kazoo resend
    it for ever, and the session's other locks would be lost meanwhile.
    Sized as kazoo serialises a create (path, data, ACL list, flags), before
    anything is built, so the error can say how many would fit."""
    fixed = _HEADER + 4 + 4 + len(data) + 4 + 4 + sum(
        12 + len(a.id.scheme.encode()) + len(a.id.id.encode()) for a in acl
    )
    size = _OVERHEAD
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
        if make_parent:
            requests.insert(0, self._container(parent))
        *_, created, listed = self._pipeline(*requests)
        with translated(f"queueing under {parent}"):
            path, stat = self._bounded(created)
        try:
            with translated(f"listing {parent}"):
                children: list[str] | None = list(self._bounded(listed))
        except Disconnected:
            children = None
        return Enqueued(path.rsplit("/", 1)[1], int(stat.czxid), children)

    def enqueue_many(
        self,
        parents: Sequence[str],
        prefixes: Sequence[str],
        data: bytes,
        *,
        make_parents: Sequence[str] = (),
    ) -> list[Enqueued]:
        """Create one ephemeral sequential node under each parent in ONE
        multi-transaction, and list every queue, pipelined behind it.

        All nodes of one multi share one zxid, so every queue orders any two
        multis the same way: a waiter only ever waits on older transactions
        and no cycle (deadlock) can form. kazoo's multi reply carries paths
        only, so the token (the shared czxid) costs one more round trip.
        ``make_parents`` are created as containers first, in the same pipeline.
        Raises NodeMissingError when a parent is missing (nothing was made),
        and RequestTooLargeError, before anything is sent, when the multi
        would not fit in one packet.
        """
        self._require_connected(f"queueing under {len(parents)} locks")
        client = self._client
        check_size(parents[0], data)
        acl = self._acl()
        paths = [_prefix_root(client.chroot, f"{parent}/{prefix}")
                 for parent, prefix in zip(parents, prefixes, strict=True)]
        check_creates(paths, data, acl)
        ops = [Create(path, data, acl, EPHEMERAL_SEQUENTIAL) for path in paths]
        pending = self._pipeline(
            *(self._container(p) for p in make_parents),
            Transaction(ops),
            MultiRead([GetChildren(_prefix_root(client.chroot, p), None) for p in parents]),
        )
        return self._enqueued_many(parents, *pending[-2:])

    def _enqueued_many(self, parents: Sequence[str], committed: Any, listed_all: Any
                       ) -> list[Enqueued]:
        """The replies of ``enqueue_many``'s multi and listings: our nodes,
        the shared token (one more read), every queue's listing."""
        client = self._client
        with translated(f"queueing under {len(parents)} locks"):
            results = self._bounded(committed)
            failed = [r for r in results if isinstance(r, Exception)]
            real = [r for r in failed if not isinstance(r, ke.RolledBackError)]
            if failed:
                raise (real or failed)[0]
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
