"""zkflock: distributed file locking on ZooKeeper, with fenced writes."""

from zkflock._aio import AsyncLock
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
from zkflock._files import SharedFile
from zkflock._locks import AcquireCancelledError, Lock
from zkflock._many import MultiLock
from zkflock._security import AclPolicy, TLSConfig
from zkflock._server import LocalZooKeeper
from zkflock._session import Session, connect
from zkflock._status import Holder

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
