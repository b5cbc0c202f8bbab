"""The public surface: ``__all__``, the error tree's exit codes, no kazoo leaks."""

from __future__ import annotations

import threading

import pytest

import zkflock

EXIT_CODES = {
    "ZkflockError": 1,
    "ConfigError": 2,
    "InvalidNameError": 2,
    "ConnectError": 3,
    "SessionExpiredError": 3,
    "AuthFailedError": 10,
    "LockTimeoutError": 4,
    "LockNotHeldError": 5,
    "LockLostError": 6,
    "StaleTokenError": 7,
    "ServerStartError": 8,
    "FileCorruptError": 9,
}


def test_all_is_sorted_unique_and_every_name_exists() -> None:
    names = list(zkflock.__all__)
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(zkflock, name), name
    for name in ("connect", "Session", "Lock", *EXIT_CODES):
        assert name in names


@pytest.mark.parametrize(("name", "code"), sorted(EXIT_CODES.items()))
def test_error_exit_codes_are_those_of_design(name: str, code: int) -> None:
    cls = getattr(zkflock, name)
    assert issubclass(cls, zkflock.ZkflockError)
    assert cls.exit_code == code
    assert cls.__doc__  # a one-line docstring each


def test_error_tree_shape() -> None:
    assert issubclass(zkflock.ConfigError, ValueError)
    assert issubclass(zkflock.InvalidNameError, zkflock.ConfigError)
    assert issubclass(zkflock.SessionExpiredError, zkflock.ConnectError)
    assert issubclass(zkflock.AuthFailedError, zkflock.ConnectError)
    assert issubclass(zkflock.LockTimeoutError, TimeoutError)


def _in_thread(call: object, bound: float) -> BaseException | object:
    """Run ``call`` in a thread; fail if it is still running after ``bound`` s."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())  # type: ignore[operator]
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"still running after {bound} s: it hangs"
    return outcome[0]


def _no_kazoo(exc: BaseException) -> None:
    assert isinstance(exc, zkflock.ZkflockError), repr(exc)
    assert not type(exc).__module__.startswith("kazoo")
    assert "kazoo" not in type(exc).__module__


def test_connect_to_nothing_raises_connect_error_within_a_bound() -> None:
    outcome = _in_thread(lambda: zkflock.connect("127.0.0.1:1", connect_timeout=1), 15)
    assert isinstance(outcome, zkflock.ConnectError), repr(outcome)
    _no_kazoo(outcome)
    assert "127.0.0.1:1" in str(outcome)


@pytest.mark.parametrize("hosts", ["  ", "host one:2181"])
def test_bad_hosts_is_a_config_error(hosts: str) -> None:
    with pytest.raises(zkflock.ConfigError):
        zkflock.connect(hosts, connect_timeout=1)


def test_negative_timeout_is_a_config_error(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk, pytest.raises(zkflock.ConfigError):
        zk.lock("a", timeout=-1)


def test_closed_session_raises_our_errors_not_kazoos(zk_hosts: str) -> None:
    zk = zkflock.connect(zk_hosts)
    lock = zk.lock("a")
    zk.close()
    outcome = _in_thread(lock.acquire, 15)
    assert isinstance(outcome, BaseException), outcome
    _no_kazoo(outcome)


def test_session_close_releases_what_it_holds(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as first:
        lock = first.lock("a")
        assert lock.acquire()
    with zkflock.connect(zk_hosts) as second:
        other = second.lock("a")
        assert other.acquire(blocking=False)
        other.release()
