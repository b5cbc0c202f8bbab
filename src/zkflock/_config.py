"""Settings from arguments, then ``ZKFLOCK_*`` variables, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from zkflock._errors import ConfigError
from zkflock._names import DEFAULT_NAMESPACE, validate_namespace

DEFAULT_HOSTS = "127.0.0.1:2181"
DEFAULT_SESSION_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything a :class:`~zkflock.Session` needs to connect."""

    hosts: str
    root: str
    namespace: str
    session_timeout: float
    connect_timeout: float


def _float(value: float | str | None, var: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{var} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{var} must be a positive number of seconds, not {value!r}")
    return number


def resolve(
    hosts: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    namespace: str | None = None,
    session_timeout: float | None = None,
    connect_timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Combine arguments with the environment; raise ConfigError when invalid."""
    env = os.environ if environ is None else environ
    hosts = hosts or env.get("ZKFLOCK_HOSTS") or DEFAULT_HOSTS
    if not hosts.strip() or any(ch.isspace() for ch in hosts.strip()):
        raise ConfigError(f"hosts {hosts!r} is not a list like 'host1:2181,host2:2181'")
    root_value = root if root is not None else env.get("ZKFLOCK_ROOT") or os.getcwd()
    return Settings(
        hosts=hosts.strip(),
        root=os.path.abspath(os.fspath(root_value)),
        namespace=validate_namespace(
            namespace or env.get("ZKFLOCK_NAMESPACE") or DEFAULT_NAMESPACE
        ),
        session_timeout=_float(
            session_timeout if session_timeout is not None else env.get("ZKFLOCK_SESSION_TIMEOUT"),
            "session_timeout",
            DEFAULT_SESSION_TIMEOUT,
        ),
        connect_timeout=_float(
            connect_timeout if connect_timeout is not None else env.get("ZKFLOCK_CONNECT_TIMEOUT"),
            "connect_timeout",
            DEFAULT_CONNECT_TIMEOUT,
        ),
    )
