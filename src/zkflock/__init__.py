"""zkflock: distributed file locking on ZooKeeper, with fenced writes."""

from __future__ import annotations

import importlib

from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    FileCorruptError,
    FileRewrittenError,
    InvalidNameError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    PermissionDeniedError,
    ServerStartError,
    SessionExpiredError,
    StaleTokenError,
    VolumeError,
    ZkflockError,
)

# Not typing.TYPE_CHECKING: importing typing costs every command start ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from zkflock._files.shared_file import SharedFile
    from zkflock._locks.aio import AsyncLock
    from zkflock._locks.lock import AcquireCancelledError, Lock
    from zkflock._locks.many import MultiLock
    from zkflock._locks.status import Holder
    from zkflock._security import AclPolicy, TLSConfig
    from zkflock._server.local import LocalZooKeeper
    from zkflock._session import Session, connect

# The rest of the public names, imported on first use (PEP 562): `import zkflock`
# (and so every `zkflock` command) does not pay for asyncio, the fenced files or
# the local server unless it uses them. The errors above are eager: they are
# small, and `except zkflock.LockTimeoutError` must never import anything.
_LAZY = {
    "AclPolicy": "zkflock._security",
    "AcquireCancelledError": "zkflock._locks.lock",
    "AsyncLock": "zkflock._locks.aio",
    "Holder": "zkflock._locks.status",
    "LocalZooKeeper": "zkflock._server.local",
    "Lock": "zkflock._locks.lock",
    "MultiLock": "zkflock._locks.many",
    "Session": "zkflock._session",
    "SharedFile": "zkflock._files.shared_file",
    "TLSConfig": "zkflock._security",
    "connect": "zkflock._session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zkflock' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AclPolicy",
    "AcquireCancelledError",
    "AsyncLock",
    "AuthFailedError",
    "ConfigError",
    "ConnectError",
    "FileCorruptError",
    "FileRewrittenError",
    "Holder",
    "InvalidNameError",
    "LocalZooKeeper",
    "Lock",
    "LockLostError",
    "LockNotHeldError",
    "LockTimeoutError",
    "MultiLock",
    "PermissionDeniedError",
    "ServerStartError",
    "Session",
    "SessionExpiredError",
    "SharedFile",
    "StaleTokenError",
    "TLSConfig",
    "VolumeError",
    "ZkflockError",
    "connect",
]
