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
    ServerStartError,
    SessionExpiredError,
    StaleTokenError,
    ZkflockError,
)
from zkflock._locks import AcquireCancelledError, Lock
from zkflock._server import LocalZooKeeper
from zkflock._session import Session, connect
from zkflock._status import Holder

__all__ = [
    "AcquireCancelledError",
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
    "ServerStartError",
    "Session",
    "SessionExpiredError",
    "StaleTokenError",
    "ZkflockError",
    "connect",
]
