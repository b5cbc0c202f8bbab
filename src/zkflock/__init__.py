"""zkflock: distributed file locking on ZooKeeper, with fenced writes."""

from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    FileCorruptError,
    InvalidNameError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    PermissionDeniedError,
    ServerStartError,
    SessionExpiredError,
    StaleTokenError,
    ZkflockError,
)
from zkflock._files.shared_file import SharedFile
from zkflock._locks.aio import AsyncLock
from zkflock._locks.lock import AcquireCancelledError, Lock
from zkflock._locks.many import MultiLock
from zkflock._locks.status import Holder
from zkflock._security import AclPolicy, TLSConfig
from zkflock._server.local import LocalZooKeeper
from zkflock._session import Session, connect

__all__ = [
    "AclPolicy",
    "AcquireCancelledError",
    "AsyncLock",
    "AuthFailedError",
    "ConfigError",
    "ConnectError",
    "FileCorruptError",
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
    "ZkflockError",
    "connect",
]
