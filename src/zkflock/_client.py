"""The one boundary around kazoo.

Only this module imports kazoo's client and exceptions. Everything above it
sees typed methods, our own errors (translated in :func:`translated`, chained
with ``from``), and three connection states: ``connected``, ``suspended``
(maybe lost) and ``lost`` (the session expired or was closed).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from kazoo import exceptions as ke
from kazoo.client import KazooClient, KazooState, _prefix_root
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import Create2, Delete, GetChildren
from kazoo.protocol.states import EventType, KeeperState, WatchedEvent

from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    LockTimeoutError,
    PermissionDeniedError,
    SessionExpiredError,
    StaleTokenError,
    ZkflockError,
)

log = logging.getLogger("zkflock")

CONNECTED = "connected"
SUSPENDED = "suspended"
LOST = "lost"


class _CreateContainer(Create2):  # type: ignore[misc]
    """ZooKeeper's createContainer (opcode 19, 3.5.3+), which kazoo's ``create``
    cannot send. The server deletes an empty container once it has had
    children, so lock parents do not pile up (kazoo #329, #334)."""

    type = 19


CONTAINER_FLAGS = 4
EPHEMERAL_SEQUENTIAL = 3  # kazoo's create flags: ephemeral 1 | sequence 2

# ZooKeeper drops the connection on a packet above jute.maxbuffer (1 MiB by
# default) and kazoo would then resend it forever: refuse before sending.
MAX_NODE_DATA = 1_000_000


def _check_size(path: str, data: bytes) -> None:
    if len(data) > MAX_NODE_DATA:
        raise ConfigError(
            f"refusing to write {len(data)} bytes to {path}: ZooKeeper nodes hold at most "
            f"about 1 MB (jute.maxbuffer); shorten the value (e.g. the lock's purpose)"
        )


def kazoo_acl(entries: Sequence[tuple[str, str, int]] | None) -> list[Any] | None:
    """kazoo ACL objects for plain ``(scheme, id, perms)`` entries."""
    from kazoo.security import ACL, Id

    return None if entries is None else [ACL(perms, Id(scheme, ident))
                                         for scheme, ident, perms in entries]


class NodeMissingError(ZkflockError):
    """Internal: a node the operation needs does not exist."""


class Disconnected(ConnectError):
    """Internal: the connection dropped during the call; the session may live on."""


class MetaConflictError(ZkflockError):
    """Internal: a fenced commit found the metadata at another version than it read."""


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Translate kazoo's exceptions into zkflock's, chained with ``from``."""
    try:
        yield
    except ke.AuthFailedError as exc:
        raise AuthFailedError(
            f"{what}: ZooKeeper refused our credentials; check ZKFLOCK_AUTH"
        ) from exc
    except (ke.SessionExpiredError, ke.ConnectionClosedError) as exc:
        raise SessionExpiredError(
            f"{what}: the ZooKeeper session expired; locks it held are gone"
        ) from exc
    except ke.ConnectionLoss as exc:
        raise Disconnected(f"{what}: the connection to ZooKeeper dropped") from exc
    except ke.NoNodeError as exc:
        raise NodeMissingError(f"{what}: no such node") from exc
    except ke.NoAuthError as exc:
        raise PermissionDeniedError(
            f"{what}: ZooKeeper refused it (NoAuth): another identity owns this node; "
            "check the credentials (ZKFLOCK_AUTH, ZKFLOCK_AUTH_FILE) or ask its owner "
            "to add yours to the ACL policy's group"
        ) from exc
    except ke.InvalidACLError as exc:
        raise ConfigError(f"{what}: ZooKeeper refused the ACL as invalid") from exc
    except (KazooTimeoutError, ke.OperationTimeoutError) as exc:
        raise ConnectError(f"{what}: ZooKeeper did not answer in time") from exc
    except ke.ZookeeperStoppedError as exc:
        raise ConnectError(f"{what}: the session is closed") from exc
    except ke.KazooException as exc:
        raise ConnectError(f"{what}: ZooKeeper said {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Enqueued:
    """A contender node we made (or adopted), its fencing token, the queue."""

    node: str
    token: int
    children: list[str] | None  # None: the listing was lost, look again


class ZkClient:
    """A started kazoo client behind typed methods."""

    def __init__(self, client: KazooClient, *, owned: bool) -> None:
        self._client = client
        self._owned = owned
        self._listeners: list[Callable[[str], None]] = []
        client.add_listener(self._on_state)

    @classmethod
    def connect(
        cls,
        hosts: str,
        *,
        session_timeout: float,
        connect_timeout: float,
        auth: Sequence[tuple[str, str]] = (),
        acl: Sequence[tuple[str, str, int]] | None = None,
        tls: dict[str, Any] | None = None,
    ) -> ZkClient:
        """Start a client; ConnectError after ``connect_timeout`` if nobody answers.

        ``acl``: plain ``(scheme, id, perms)`` entries for every node we create;
        ``tls``: kazoo's TLS keywords (``use_ssl``, ``ca``, ``certfile``, ...)."""
        kwargs: dict[str, Any] = dict(tls or {})
        client = KazooClient(
            hosts=hosts,
            timeout=session_timeout,
            auth_data=list(auth) or None,
            default_acl=kazoo_acl(acl),
            **kwargs,
        )
        try:
            with translated(f"connecting to ZooKeeper at {hosts}"):
                client.start(timeout=connect_timeout)
        except ZkflockError as exc:
            client.stop()
            client.close()
            if isinstance(exc, AuthFailedError):
                raise
            hint = (" over TLS: check --tls-ca (the CA that signed the server's certificate) "
                    "and that the server's secure port is the one named" if tls else
                    ": check that it runs ('zkflock server status') and --hosts/ZKFLOCK_HOSTS; "
                    "a TLS-only server needs --tls-ca")
            raise ConnectError(
                f"cannot reach ZooKeeper at {hosts} within {connect_timeout} s{hint}"
            ) from exc
        if auth and client.state != KazooState.CONNECTED:  # pragma: no cover - racy
            raise AuthFailedError(f"ZooKeeper at {hosts} refused our credentials")
        return cls(client, owned=True)

    # -- connection state ---------------------------------------------------

    def _on_state(self, state: str) -> None:
        # Runs on kazoo's connection thread: never block here.
        mapped = {KazooState.CONNECTED: CONNECTED, KazooState.SUSPENDED: SUSPENDED}
        name = mapped.get(state, LOST)
        for listener in list(self._listeners):
            try:
                listener(name)
            except Exception:  # pragma: no cover - a listener bug must not kill kazoo
                log.exception("zkflock connection listener failed")

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> str:
        state = self._client.state
        return CONNECTED if state == KazooState.CONNECTED else (
            SUSPENDED if state == KazooState.SUSPENDED else LOST
        )

    @property
    def session_id(self) -> int | None:
        client_id = self._client.client_id
        return None if client_id is None else int(client_id[0])

    @property
    def negotiated_timeout(self) -> float:
        return float(self._client._session_timeout) / 1000.0

    @property
    def kazoo(self) -> KazooClient:
        """The kazoo client itself, for the benchmarks and the tests."""
        return self._client

    def wait_connected(self, timeout: float | None) -> bool:
        return bool(self._client._live.wait(timeout))

    def close(self) -> None:
        self._client.remove_listener(self._on_state)
        if self._owned:
            try:
                self._client.stop()
            finally:
                self._client.close()

    # -- nodes --------------------------------------------------------------

    def ensure_persistent(self, path: str) -> None:
        with translated(f"creating {path}"):
            self._client.ensure_path(path)

    def create_container(self, path: str) -> None:
        result = self._client.handler.async_result()
        request = _CreateContainer(
            _prefix_root(self._client.chroot, path), b"", self._acl(), CONTAINER_FLAGS
        )
        self._client._call(request, result)
        with translated(f"creating {path}"), suppress(ke.NodeExistsError):
            result.get()

    def get_acl(self, path: str) -> list[tuple[str, str, int]] | None:
        """``(scheme, id, perms)`` of ``path``; None when it is missing or we may
        not read its ACL."""
        try:
            with translated(f"reading the ACL of {path}"):
                acls, _ = self._client.get_acls(path)
        except (NodeMissingError, PermissionDeniedError):
            return None
        return [(str(a.id.scheme), str(a.id.id), int(a.perms)) for a in acls]

    def may_delete_under(self, path: str) -> bool:
        """Whether we hold DELETE on ``path``, by deleting a child that does not
        exist: ZooKeeper checks the parent's ACL first (NoAuth), then the
        child (NoNode). Nothing changes either way."""
        try:
            with translated(f"checking our rights on {path}"):
                self._client.delete(f"{path}/zkflock-probe-{new_guid()}")
        except NodeMissingError:
            return True
        except PermissionDeniedError:
            return False
        return True  # pragma: no cover - a node with a fresh random name existed

    def _acl(self) -> list[Any]:
        from kazoo.security import OPEN_ACL_UNSAFE

        return list(self._client.default_acl or OPEN_ACL_UNSAFE)

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

    def enqueue(self, parent: str, prefix: str, data: bytes, guid: str) -> Enqueued:
        """Create our ephemeral sequential node and list the queue, pipelined.

        ZooKeeper answers one session's requests in order, so the listing sent
        right behind the create already contains our node: one round trip.
        """
        self._require_connected(f"queueing under {parent}")
        client = self._client
        _check_size(parent, data)
        # Straight to kazoo's request layer: create_async's argument checks and
        # its second async result cost more client CPU than the listing does.
        created, listed = self._pipeline(
            Create2(
                _prefix_root(client.chroot, f"{parent}/{prefix}", trailing=True),
                data,
                self._acl(),
                EPHEMERAL_SEQUENTIAL,
            ),
            GetChildren(_prefix_root(client.chroot, parent), None),
        )
        with translated(f"queueing under {parent}"):
            path, stat = created.get()
        try:
            with translated(f"listing {parent}"):
                children: list[str] | None = list(listed.get())
        except Disconnected:
            children = None
        return Enqueued(path.rsplit("/", 1)[1], int(stat.czxid), children)

    def enqueue_many(
        self, parents: Sequence[str], prefixes: Sequence[str], data: bytes
    ) -> list[Enqueued]:
        """Create one ephemeral sequential node under each parent in ONE
        multi-transaction, and list every queue, pipelined behind it.

        All nodes of one multi share one zxid, so every queue orders any two
        multis the same way: a waiter only ever waits on older transactions
        and no cycle (deadlock) can form. kazoo's multi reply carries paths
        only, so the token (the shared czxid) costs one more round trip.
        Raises NodeMissingError when a parent is missing (nothing was made).
        """
        client = self._client
        _check_size(parents[0], data)
        tx = client.transaction()
        for parent, prefix in zip(parents, prefixes, strict=True):
            tx.create(f"{parent}/{prefix}", data, ephemeral=True, sequence=True)
        committed = tx.commit_async()
        # One wake of kazoo's thread for the N listings (see _pipeline).
        listed = self._pipeline(
            *(GetChildren(_prefix_root(client.chroot, p), None) for p in parents)
        )
        with translated(f"queueing under {len(parents)} locks"):
            results = committed.get()
            failed = [r for r in results if isinstance(r, Exception)]
            real = [r for r in failed if not isinstance(r, ke.RolledBackError)]
            if failed:
                raise (real or failed)[0]
        nodes = [str(path).rsplit("/", 1)[1] for path in results]
        with translated(f"reading {parents[0]}/{nodes[0]}"):
            stat = client.exists(f"{parents[0]}/{nodes[0]}")
        if stat is None:  # pragma: no cover - our ephemeral node is gone: the session
            raise SessionExpiredError("the ZooKeeper session expired while queueing")
        out = []
        for node, result in zip(nodes, listed, strict=True):
            try:
                with translated("listing a lock queue"):
                    children: list[str] | None = list(result.get())
            except Disconnected:
                children = None
            out.append(Enqueued(node, int(stat.czxid), children))
        return out

    def find_own(self, parent: str, guid: str) -> Enqueued | None:
        """After a lost create reply: find our node by its guid, and adopt it
        only if our current session owns it.

        A node of an earlier, dying session is deleted instead: kazoo matches
        the guid alone and can adopt a node the server is about to remove with
        its session (Curator's CURATOR-498).
        """
        with translated(f"listing {parent}"):
            children = self._client.get_children(parent)
        session = self.session_id
        for child in children:
            if guid not in child:
                continue
            path = f"{parent}/{child}"
            with translated(f"reading {path}"):
                stat = self._client.exists(path)
            if stat is None:
                continue
            if stat.ephemeralOwner == session:
                return Enqueued(child, int(stat.czxid), list(children))
            self.delete(path)
        return None

    def children(self, parent: str) -> list[str]:
        with translated(f"listing {parent}"):
            return list(self._client.get_children(parent))

    def watch(self, paths: Sequence[str], on_event: Callable[[bool], None]) -> bool:
        """Set exists watches on ``paths``, pipelined. ``on_event(deleted)``
        runs on kazoo's callback thread. Returns False when one is already
        gone (the caller must look again rather than wait)."""

        def fire(event: WatchedEvent) -> None:
            on_event(event.type == EventType.DELETED)

        pending = [self._client.exists_async(p, watch=fire) for p in paths]
        all_there = True
        for path, result in zip(paths, pending, strict=True):
            with translated(f"watching {path}"):
                if result.get() is None:
                    all_there = False
        return all_there

    def _require_connected(self, what: str) -> None:
        # kazoo queues a request made while it reconnects and its reply is
        # awaited without a bound: during a partition release() and
        # acquire(timeout=...) would hang until a server is reached again.
        # Fail fast; the callers retry (the reaper, wait_connected). A closed
        # or expired client is left to kazoo, which refuses at once.
        if self._client.state == KazooState.SUSPENDED:
            raise Disconnected(f"{what}: not connected to ZooKeeper")

    def delete_many(self, paths: Sequence[str]) -> list[ZkflockError | None]:
        """Delete every path, pipelined: N deletes cost one round trip, not N
        (lock_many's release). Per path: None (deleted or already gone) or
        the error, for the caller to retry."""
        self._require_connected(f"deleting {len(paths)} nodes")
        chroot = self._client.chroot
        pending = self._pipeline(*(Delete(_prefix_root(chroot, p), -1) for p in paths))
        out: list[ZkflockError | None] = []
        for path, result in zip(paths, pending, strict=True):
            try:
                with translated(f"deleting {path}"):
                    result.get(timeout=self.negotiated_timeout)
            except NodeMissingError:
                pass
            except ZkflockError as exc:
                out.append(exc)
                continue
            out.append(None)
        return out

    def delete(self, path: str) -> bool:
        """Delete ``path``; False if it was already gone. Never waits for a
        reconnect: Disconnected (or ConnectError) and the caller retries."""
        self._require_connected(f"deleting {path}")
        try:
            with translated(f"deleting {path}"):
                self._client.delete_async(path).get(timeout=self.negotiated_timeout)
        except NodeMissingError:
            return False
        return True

    def set_data(self, path: str, data: bytes) -> None:
        _check_size(path, data)
        with translated(f"writing {path}"):
            self._client.set_data(path, data)

    def set_data_nowait(self, path: str, data: bytes) -> None:
        """Send a set_data without waiting for its reply (per-session order
        still puts it before anything we send later)."""
        _check_size(path, data)
        with translated(f"writing {path}"):
            self._client.set_async(path, data)

    def get_data(self, path: str) -> tuple[bytes, int, int] | None:
        """(data, czxid, ephemeralOwner) of ``path``, or None if it is missing."""
        try:
            with translated(f"reading {path}"):
                data, stat = self._client.get(path)
        except NodeMissingError:
            return None
        return bytes(data), int(stat.czxid), int(stat.ephemeralOwner)

    # -- fenced files -----------------------------------------------------------

    def get_meta(self, path: str) -> tuple[bytes, int] | None:
        """(data, znode version) of ``path`` after a ``sync``, or None if missing.

        The sync makes our server catch up with the leader first, so a reader
        sees every commit acknowledged before it started reading."""
        sync = self._client.sync_async(path)
        got = self._client.get_async(path)
        with translated(f"syncing {path}"):
            sync.get()
        try:
            with translated(f"reading {path}"):
                data, stat = got.get()
        except NodeMissingError:
            return None
        return bytes(data), int(stat.version)

    def create_meta(self, path: str, data: bytes) -> bool:
        """Create the persistent metadata node (and its parents); False if it exists."""
        _check_size(path, data)
        with translated(f"creating {path}"):
            self._client.ensure_path(path.rsplit("/", 1)[0] or "/")
        with translated(f"creating {path}"):
            try:
                self._client.create(path, data)
            except ke.NodeExistsError:
                return False
        return True

    def commit_fenced(self, lock_path: str, meta_path: str, meta_version: int, data: bytes) -> int:
        """One multi: ``check`` that ``lock_path`` exists, ``set_data`` on
        ``meta_path`` at ``meta_version``. Returns the new znode version.

        StaleTokenError when the lock node is gone (nothing committed);
        MetaConflictError when the metadata moved on; Disconnected when the
        reply was lost (the outcome is then unknown to the caller)."""
        _check_size(meta_path, data)
        tx = self._client.transaction()
        tx.check(lock_path, -1)  # -1: any data version; the check is for existence
        tx.set_data(meta_path, data, version=meta_version)
        with translated(f"committing {meta_path}"):
            checked, stored = tx.commit()
        if isinstance(checked, ke.NoNodeError):
            raise StaleTokenError(
                f"fenced commit to {meta_path} refused: the writer's lock node {lock_path} "
                "is gone, so the lock was lost; nothing was written; take the lock and retry"
            )
        if isinstance(stored, ke.BadVersionError):
            raise MetaConflictError(f"{meta_path} is no longer at version {meta_version}")
        if isinstance(stored, ke.NoNodeError):
            raise NodeMissingError(f"committing {meta_path}: no such node")
        if isinstance(stored, ke.NoAuthError) or isinstance(checked, ke.NoAuthError):
            raise PermissionDeniedError(
                f"committing {meta_path}: ZooKeeper refused it (NoAuth): another identity "
                "owns this file's metadata; check the credentials or the ACL policy's group"
            )
        if isinstance(checked, Exception) or isinstance(stored, Exception):
            raise ConnectError(f"committing {meta_path} failed: {checked!r}, {stored!r}")
        return int(stored.version)

    def children_data(self, parent: str) -> list[tuple[str, bytes, int, int]]:
        """Every child with its data, czxid and mtime (ms), read pipelined."""
        try:
            names = self.children(parent)
        except NodeMissingError:
            return []
        pending = [(n, self._client.get_async(f"{parent}/{n}")) for n in names]
        out = []
        for name, result in pending:
            try:
                with translated(f"reading {parent}/{name}"):
                    data, stat = result.get()
            except NodeMissingError:
                continue
            out.append((name, bytes(data), int(stat.czxid), int(stat.ctime)))
        return out


def new_guid() -> str:
    # 128 random bits as 32 hex digits; a fifth of uuid4()'s cost.
    return os.urandom(16).hex()


def remaining(deadline: float | None) -> float | None:
    """Seconds left until a monotonic deadline (None: no deadline)."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def expired(deadline: float | None, name: str, timeout: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise LockTimeoutError(name, timeout)
