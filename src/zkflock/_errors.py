"""The error tree of zkflock.

Every error the library raises is a ``ZkflockError``; no kazoo exception
escapes. Each class carries the exit code the ``zkflock`` command uses::

    ZkflockError                      1
    ├── ConfigError (ValueError)      2
    │   └── InvalidNameError          2
    ├── ConnectError                  3
    │   ├── SessionExpiredError       3
    │   └── AuthFailedError           10
    ├── LockTimeoutError (TimeoutError) 4
    ├── LockNotHeldError              5
    ├── LockLostError                 6
    ├── StaleTokenError               7
    ├── ServerStartError              8
    ├── FileCorruptError              9
    ├── PermissionDeniedError         11  (NoAuth)
    ├── VolumeError                   12  (an OSError of the shared volume)
    └── FileRewrittenError            13
"""

from __future__ import annotations


class ZkflockError(Exception):
    """Base of every error zkflock raises."""

    exit_code: int = 1


class ConfigError(ZkflockError, ValueError):
    """A setting or argument is invalid."""

    exit_code = 2


class InvalidNameError(ConfigError):
    """A lock or file name is not acceptable."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"invalid name {name!r}: {reason}; use a relative path such as "
            "'data/data.txt' without '..', control characters or NUL"
        )
        self._name = name
        self._reason = reason

    @property
    def name(self) -> str:
        return self._name

    @property
    def reason(self) -> str:
        return self._reason


class ConnectError(ZkflockError):
    """ZooKeeper could not be reached, or the connection broke."""

    exit_code = 3


class SessionExpiredError(ConnectError):
    """The ZooKeeper session expired; everything it held is gone."""


class AuthFailedError(ConnectError):
    """ZooKeeper refused our credentials."""

    exit_code = 10


class LockTimeoutError(ZkflockError, TimeoutError):
    """The lock was not acquired within the timeout."""

    exit_code = 4

    def __init__(self, name: str, timeout: float | None) -> None:
        super().__init__(
            f"lock {name!r} not acquired within {timeout} s: another process "
            "holds it; wait longer or see who holds it with 'zkflock status'"
        )
        self._name = name
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._name

    @property
    def timeout(self) -> float | None:
        return self._timeout


class LockNotHeldError(ZkflockError):
    """An operation needs a lock that is not held."""

    exit_code = 5


class LockLostError(ZkflockError):
    """The lock is, or may be, no longer held."""

    exit_code = 6


class StaleTokenError(ZkflockError):
    """A fenced commit was refused: the writer's lock is gone."""

    exit_code = 7


class ServerStartError(ZkflockError):
    """A local server could not be started: ZooKeeper, or the test harness's GlusterFS volume."""

    exit_code = 8


class FileCorruptError(ZkflockError):
    """A fenced file's metadata or content object is damaged."""

    exit_code = 9


class PermissionDeniedError(ZkflockError):
    """ZooKeeper refused an operation: our identity lacks the right (NoAuth)."""

    exit_code = 11


class VolumeError(ZkflockError):
    """The shared volume failed a read or write of a fenced file; the message
    says whether the commit happened."""

    exit_code = 12


class FileRewrittenError(ZkflockError):
    """A fenced file was rewritten while a stream of it was being read."""

    exit_code = 13
