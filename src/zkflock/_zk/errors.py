"""kazoo's exceptions translated into zkflock's, at one choke point.

Part of the kazoo boundary (the package ``_zk``, with ``client`` and ``files``, the
only modules that import kazoo): :func:`translated` maps every kazoo error to
our tree, chained with ``from``; the internal errors here never leave the
library.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kazoo import exceptions as ke
from kazoo.handlers.threading import KazooTimeoutError

from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    PermissionDeniedError,
    SessionExpiredError,
    ZkflockError,
)

# ZooKeeper drops the connection on a packet above jute.maxbuffer (1 MiB by
# default) and kazoo would then resend it forever: refuse before sending.
MAX_NODE_DATA = 1_000_000
#: The largest request we send: jute.maxbuffer's default (1 MiB - 1) minus
#: 64 KiB of headroom for the request header and a server configured a
#: little lower.
MAX_REQUEST = 1024 * 1024 - 64 * 1024


class RequestTooLargeError(ConfigError):
    """A request (a lock_many's multi) would not fit in one ZooKeeper packet.

    ``fit`` is how many of its operations, taken in order, would fit."""

    def __init__(self, message: str, size: int, fit: int) -> None:
        super().__init__(message)
        self.size = size
        self.fit = fit


def check_size(path: str, data: bytes) -> None:
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


class GateClosedError(ZkflockError):
    """Internal: a lock_many in batches holds the gate; wait until it is gone."""


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
        # Unanswered within the session timeout: the connection is as good as
        # gone, and the session may yet live on; callers retry as for a drop.
        raise Disconnected(f"{what}: ZooKeeper did not answer in time") from exc
    except ke.ZookeeperStoppedError as exc:
        raise ConnectError(f"{what}: the session is closed") from exc
    except ke.KazooException as exc:
        raise ConnectError(f"{what}: ZooKeeper said {type(exc).__name__}: {exc}") from exc
