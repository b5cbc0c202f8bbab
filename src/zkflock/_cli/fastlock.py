"""Taking one lock on a :class:`~zkflock._zk.lite.LiteSession`: the fast
path's acquire, the same queue as the full path's (``_locks/waiting.py``).

The same node names and data (``_locks.drivers``, ``_locks.holder``), the
same pure decision (``_locks.protocol``), the same requests: create the
ephemeral sequential node and list the queue, pipelined; make the parent (a
container) when missing; after a lost create reply, adopt our node by its
guid when our session owns it; watch the nodes the decision names with
getData watches; touch our node after waiting when the kind signals grants.
What differs is only the transport: one thread, one socket, no kazoo.

Nothing is deleted on the way out without the lock: ``zkflock run`` ends its
session right after, and the server deletes our node with it.
"""

from __future__ import annotations

import os
import time

from zkflock._errors import PermissionDeniedError, SessionExpiredError, ZkflockError
from zkflock._locks.holder import holder_data
from zkflock._locks.protocol import NotQueuedError
from zkflock._zk import jute
from zkflock._zk.lite import Disconnected, ReplyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from zkflock._locks.drivers import Driver
    from zkflock._locks.protocol import Decision
    from zkflock._zk.lite import LiteSession

#: Our node's name, its fencing token (czxid) and the listing, if it came.
Queued = tuple[str, int, "list[str] | None"]


def checked(error: ReplyError, what: str) -> ZkflockError:
    """Our error for a ZooKeeper error code the acquire does not handle."""
    if error.code == jute.NO_AUTH:
        return PermissionDeniedError(f"{what}: ZooKeeper refused it (NoAuth)")
    return ZkflockError(f"{what}: ZooKeeper answered error {error.code}")


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def until_connected(session: LiteSession, deadline: float | None) -> bool:
    """Reconnect (SessionLost if the session is gone); False at the deadline."""
    while not session.connected:
        left = remaining(deadline)
        if left is not None and left <= 0:
            return False
        session.step(left)
    return True


def acquire(session: LiteSession, parent: str, driver: Driver, purpose: str,
            wait: float | None) -> tuple[str, int] | None:
    """Queue under ``parent`` and wait: (our node path, token) once held, None
    when ``wait`` seconds passed first (None: no limit)."""
    deadline = None if wait is None else time.monotonic() + wait
    guid = os.urandom(16).hex()  # as _zk.client.new_guid
    queued = _enqueue(session, parent, driver.prefix(guid), guid,
                      holder_data(driver.letter, purpose, acquired=False), deadline)
    if queued is None:
        return None
    node, token, children = queued
    if not _wait(session, parent, node, children, driver, purpose, deadline):
        return None
    return f"{parent}/{node}", token


def _enqueue(session: LiteSession, parent: str, prefix: str, guid: str, data: bytes,
             deadline: float | None) -> Queued | None:
    maybe_created = False
    while True:
        try:
            if maybe_created:
                found = _adopt(session, parent, guid)
                if found is not None:
                    return found
                maybe_created = False
            return _send(session, parent, prefix, data)
        except ReplyError as exc:
            if exc.code != jute.NO_NODE:
                raise checked(exc, f"queueing under {parent}") from None
            try:
                ensure_path(session, parent, jute.CONTAINER)
            except ReplyError as inner:
                raise checked(inner, f"creating {parent}") from None
        except Disconnected:
            maybe_created = True
            if not until_connected(session, deadline):
                return None


def _send(session: LiteSession, parent: str, prefix: str, data: bytes) -> Queued:
    """Create our node and list the queue, pipelined: one round trip."""
    created = session.send(jute.CREATE2, jute.create_body(
        session.path(f"{parent}/{prefix}"), data, jute.EPHEMERAL_SEQUENTIAL, session.acl))
    listed = session.send(jute.GET_CHILDREN, jute.path_watch_body(session.path(parent), False))
    path, token = jute.parse_created(session.reply(created, parent))
    try:
        children: list[str] | None = jute.parse_children(session.reply(listed, parent))
    except Disconnected:
        children = None
    return session.strip(path).rsplit("/", 1)[1], token, children


def _adopt(session: LiteSession, parent: str, guid: str) -> Queued | None:
    """After a lost create reply: our node of ``guid``, if our session made it."""
    children = _children(session, parent)
    for child in children:
        if guid not in child:
            continue
        path = session.path(f"{parent}/{child}")
        try:
            _, token, owner = jute.parse_data(session.call(
                jute.GET_DATA, jute.path_watch_body(path, False), path))
        except ReplyError:
            continue
        if owner == session.session_id:
            return child, token, children
        session.call(jute.DELETE, jute.delete_body(path), path)
    return None


def _children(session: LiteSession, parent: str) -> list[str]:
    return jute.parse_children(session.call(
        jute.GET_CHILDREN, jute.path_watch_body(session.path(parent), False), parent))


def _wait(session: LiteSession, parent: str, node: str, children: list[str] | None,
          driver: Driver, purpose: str, deadline: float | None) -> bool:
    """Wait until the decision for our node says held; False at the deadline."""
    waited = False
    while True:
        if children is None:
            try:
                children = _children(session, parent)
            except Disconnected:
                if not until_connected(session, deadline):
                    return False
                continue
        decision = _decide(driver, children, node, parent)
        if decision.held:
            break
        waited = True
        deleted = _watch_and_wait(session, parent, decision, deadline)
        if deleted is None:
            return False
        if deleted and decision.grant_on_delete:
            break  # we were next: no need to list the queue again
        children = None
    if waited and driver.signals_grant:
        # A semaphore's successor watches us: the touch is its grant signal.
        session.send(jute.SET_DATA, jute.set_data_body(
            session.path(f"{parent}/{node}"), holder_data(driver.letter, purpose, True)))
    return True


def _decide(driver: Driver, children: list[str], node: str, parent: str) -> Decision:
    try:
        return driver.decide(children, node, ())
    except NotQueuedError:
        raise SessionExpiredError(
            f"our place in the queue under {parent} vanished: "
            "the ZooKeeper session expired while waiting") from None


def _watch_and_wait(session: LiteSession, parent: str, decision: Decision,
                    deadline: float | None) -> bool | None:
    """Watch the decision's nodes and wait. None: timed out; else whether a
    watched node was deleted (False: look at the queue again)."""
    paths = [session.path(f"{parent}/{n}") for n in decision.watch]
    session.events.clear()
    connections = session.connections
    try:
        pending = [session.send(jute.GET_DATA, jute.path_watch_body(p, True)) for p in paths]
        for xid, path in zip(pending, paths, strict=True):
            try:
                session.reply(xid, path)
            except ReplyError as exc:
                if exc.code != jute.NO_NODE:
                    raise checked(exc, f"watching {path}") from None
                return True  # already gone: as if deleted
    except Disconnected:
        return False if until_connected(session, deadline) else None
    watched = set(paths)
    while True:
        fired = [kind for kind, path in session.events if path in watched]
        if fired:
            return any(kind == jute.EVENT_DELETED for kind in fired)
        if session.connections != connections or not session.connected:
            # A new connection carries no watches: look at the queue again.
            return False if until_connected(session, deadline) else None
        left = remaining(deadline)
        if left is not None and left <= 0:
            return None
        session.step(left)


def ensure_path(session: LiteSession, path: str, leaf_flags: int) -> None:
    """Create ``path``'s missing ancestors (persistent) and ``path`` itself
    (``leaf_flags``: a container for a lock parent); existing ones are fine."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        node = "/" + "/".join(parts[:i])
        last = i == len(parts)
        op = jute.CREATE_CONTAINER if last and leaf_flags == jute.CONTAINER else jute.CREATE
        body = jute.create_body(session.path(node), b"",
                                leaf_flags if last else jute.PERSISTENT, session.acl)
        try:
            session.call(op, body, node)
        except ReplyError as exc:
            if exc.code == jute.NO_NODE and i == 1 and session.chroot:
                # The chroot itself is missing: kazoo's makepath creates it
                # (persistent, same ACL), and so do we; then this node again.
                _ensure_raw(session, session.chroot)
                session.call(op, body, node)
            elif exc.code != jute.NODE_EXISTS:
                raise


def _ensure_raw(session: LiteSession, raw: str) -> None:
    """Persistent nodes along ``raw``, a path as the server names it."""
    parts = raw.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        node = "/" + "/".join(parts[:i])
        try:
            session.call(jute.CREATE, jute.create_body(node, b"", jute.PERSISTENT, session.acl),
                         node)
        except ReplyError as exc:
            if exc.code != jute.NODE_EXISTS:
                raise
