"""The one boundary around kazoo.

Only this module and its two parts, ``errors`` (the translation of
kazoo's exceptions) and ``files`` (the fenced-file requests),
import kazoo. Everything above sees typed methods, our own errors (translated
in one place, chained with ``from``), and three connection states:
``connected``, ``suspended`` (maybe lost) and ``lost`` (expired or closed).

Every wait for a reply is bounded by the session timeout: kazoo queues a
request made while it reconnects and would otherwise wait for its reply as
long as the partition lasts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from kazoo import exceptions as ke
from kazoo.client import KazooClient, KazooState, _prefix_root
from kazoo.interfaces import IAsyncResult
from kazoo.protocol.serialization import Create2, Delete
from kazoo.protocol.states import EventType, WatchedEvent

from zkflock._errors import (
    AuthFailedError,
    ConnectError,
    PermissionDeniedError,
    ZkflockError,
)
from zkflock._zk.chroot import create_chroot, start_quietly
from zkflock._zk.errors import (
    Disconnected,
    NodeMissingError,
    check_size,
    kazoo_acl,
    translated,
)
from zkflock._zk.files import FileOps
from zkflock._zk.handler import OneSelectHandler as OneSelectHandler
from zkflock._zk.handler import Wakeup
from zkflock._zk.queue import QueueOps, delete_chunks

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


class ZkClient(QueueOps, FileOps):
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
            handler=OneSelectHandler(),
            timeout=session_timeout,
            auth_data=list(auth) or None,
            default_acl=kazoo_acl(acl),
            **kwargs,
        )
        try:
            with translated(f"connecting to ZooKeeper at {hosts}"):
                if start_quietly(client, connect_timeout):
                    create_chroot(client, hosts, connect_timeout, auth_data=list(auth) or None,
                                  default_acl=kazoo_acl(acl), **kwargs)
        except ZkflockError as exc:
            client.stop()
            client.close()
            if isinstance(exc, AuthFailedError | PermissionDeniedError):
                raise  # (creating a missing chroot may be refused)
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
    def owned(self) -> bool:
        """Whether closing this client ends the session (we started it)."""
        return self._owned

    @property
    def negotiated_timeout(self) -> float:
        return float(self._client._session_timeout) / 1000.0

    @property
    def kazoo(self) -> KazooClient:
        """The kazoo client itself, for the benchmarks and the tests."""
        return self._client

    def _bounded(self, result: IAsyncResult) -> Any:
        """The reply to a request, waited for at most the session timeout
        (then kazoo's timeout error, which ``translated`` makes Disconnected)."""
        return result.get(timeout=self.negotiated_timeout)

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
            self._bounded(self._client.ensure_path_async(path))

    def _container(self, path: str) -> _CreateContainer:
        return _CreateContainer(
            _prefix_root(self._client.chroot, path), b"", self._acl(), CONTAINER_FLAGS
        )

    def create_container(self, path: str) -> None:
        result = self._client.handler.async_result()
        self._client._call(self._container(path), result)
        with translated(f"creating {path}"), suppress(ke.NodeExistsError):
            self._bounded(result)

    def get_acl(self, path: str) -> list[tuple[str, str, int]] | None:
        """``(scheme, id, perms)`` of ``path``; None when it is missing or we may
        not read its ACL."""
        try:
            with translated(f"reading the ACL of {path}"):
                acls, _ = self._bounded(self._client.get_acls_async(path))
        except (NodeMissingError, PermissionDeniedError):
            return None
        return [(str(a.id.scheme), str(a.id.id), int(a.perms)) for a in acls]

    def may_delete_under(self, path: str) -> bool:
        """Whether we hold DELETE on ``path``, by deleting a child that does not
        exist: ZooKeeper checks the parent's ACL first (NoAuth), then the
        child (NoNode). Nothing changes either way."""
        try:
            with translated(f"checking our rights on {path}"):
                self._bounded(self._client.delete_async(f"{path}/zkflock-probe-{new_guid()}"))
        except NodeMissingError:
            return True
        except PermissionDeniedError:
            return False
        return True  # pragma: no cover - a node with a fresh random name existed

    def _acl(self) -> list[Any]:
        from kazoo.security import OPEN_ACL_UNSAFE

        return list(self._client.default_acl or OPEN_ACL_UNSAFE)

    def children(self, parent: str) -> list[str]:
        with translated(f"listing {parent}"):
            return list(self._bounded(self._client.get_children_async(parent)))

    def watch(self, paths: Sequence[str], on_event: Callable[[bool], None]) -> bool:
        """Set data watches on ``paths`` (getData, pipelined). ``on_event(deleted)``
        runs on kazoo's connection thread, so it must only record and wake
        (set an Event), never block or call ZooKeeper. Returns False when one
        is already gone (the caller must look again rather than wait).

        getData, not exists: an exists watch on a node that is already gone
        stays on the server for the session's life, waiting for a creation
        that a sequential name never sees again (Curator's getData comment).
        getData on a missing node fails and leaves no watch."""

        fire = Wakeup(on_event)
        pending = [self._client.get_async(p, watch=fire) for p in paths]
        all_there = True
        for path, result in zip(paths, pending, strict=True):
            try:
                with translated(f"watching {path}"):
                    self._bounded(result)
            except NodeMissingError:
                all_there = False
        return all_there

    def watch_created(self, paths: Sequence[str], on_event: Callable[[bool], None]) -> bool:
        """Set exists watches on ``paths``, pipelined: they fire when a missing
        path is created (and on a change or deletion). True when every path
        exists now. Only for paths that may be created again (a lock's
        parent): on a sequential node that is gone such a watch never fires
        and stays for the session's life; lock waiters use :meth:`watch`."""

        def fire(event: WatchedEvent) -> None:
            on_event(event.type == EventType.DELETED)

        pending = [self._client.exists_async(p, watch=fire) for p in paths]
        all_there = True
        for path, result in zip(paths, pending, strict=True):
            with translated(f"watching {path}"):
                if self._bounded(result) is None:
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
        """Delete every path (lock_many's release). Per path: None (deleted or
        already gone) or the error, for the caller to retry.

        First as ONE multi-transaction: one request and one write on the
        server, where N deletes are N writes in ZooKeeper's serial commit
        pipeline. A multi is all or nothing, so when one node is already gone
        (or anything else fails) the deletes go out again one by one,
        pipelined."""
        self._require_connected(f"deleting {len(paths)} nodes")
        parts = delete_chunks(paths)  # a multi over the packet limit never goes out
        if len(parts) > 1:
            return [error for part in parts for error in self.delete_many(part)]
        tx = self._client.transaction()
        for path in paths:
            tx.delete(path)
        try:
            with translated(f"deleting {len(paths)} nodes"):
                results = self._bounded(tx.commit_async())
        except ZkflockError:
            results = [None]
        if all(r is True for r in results):
            return [None] * len(paths)
        chroot = self._client.chroot
        pending = self._pipeline(*(Delete(_prefix_root(chroot, p), -1) for p in paths))
        out: list[ZkflockError | None] = []
        for path, result in zip(paths, pending, strict=True):
            try:
                with translated(f"deleting {path}"):
                    self._bounded(result)
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
                self._bounded(self._client.delete_async(path))
        except NodeMissingError:
            return False
        return True

    def set_data(self, path: str, data: bytes) -> None:
        check_size(path, data)
        with translated(f"writing {path}"):
            self._bounded(self._client.set_async(path, data))

    def set_data_nowait(self, path: str, data: bytes) -> None:
        """Send a set_data without waiting for its reply (per-session order
        still puts it before anything we send later)."""
        check_size(path, data)
        with translated(f"writing {path}"):
            self._client.set_async(path, data)

    def get_data(self, path: str) -> tuple[bytes, int, int] | None:
        """(data, czxid, ephemeralOwner) of ``path``, or None if it is missing."""
        try:
            with translated(f"reading {path}"):
                data, stat = self._bounded(self._client.get_async(path))
        except NodeMissingError:
            return None
        return bytes(data), int(stat.czxid), int(stat.ephemeralOwner)

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
                    data, stat = self._bounded(result)
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
