"""The public surface: ``__all__``, the error tree's exit codes, no kazoo leaks."""

from __future__ import annotations

import threading

import pytest

import zkflock
from zkflock.metrics import NOOP, Observer

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


# -- the observer events of the lock core (real ZooKeeper) --------------------


class Recording(Observer):
    """Records every event as (event, kind, name); seconds are checked apart."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.seconds: list[float] = []
        self.changed = threading.Event()

    def _add(self, *event: str, seconds: float | None = None) -> None:
        self.events.append(event)
        if seconds is not None:
            self.seconds.append(seconds)
        self.changed.set()

    def acquire_started(self, kind: str, name: str) -> None:
        self._add("started", kind, name)

    def acquired(self, kind: str, name: str, wait: float) -> None:
        self._add("acquired", kind, name, seconds=wait)

    def timed_out(self, kind: str, name: str, wait: float) -> None:
        self._add("timed_out", kind, name, seconds=wait)

    def cancelled(self, kind: str, name: str, wait: float) -> None:
        self._add("cancelled", kind, name, seconds=wait)

    def released(self, kind: str, name: str, held: float) -> None:
        self._add("released", kind, name, seconds=held)

    def failed(self, kind: str, name: str, wait: float) -> None:
        self._add("failed", kind, name, seconds=wait)

    def lost(self, kind: str, name: str, reason: str) -> None:
        self._add("lost", kind, name)

    def session_state(self, state: str) -> None:
        self._add("state", state)


def test_observer_sees_the_exact_events_of_a_known_sequence(zk_hosts: str) -> None:
    from kazoo.client import KazooClient

    seen = Recording()
    with zkflock.connect(zk_hosts, root="/", metrics=seen, session_timeout=2.0) as zk, \
            zkflock.connect(zk_hosts, root="/") as other:
        assert zk.observer is seen
        with zk.lock("a", reentrant=True) as held, held:
            pass  # the re-entry is no event
        with zk.write_lock("w"), zk.read_lock("w"):
            pass
        with zk.semaphore("s", 2), zk.lock_many(["m2", "m1"]):
            pass
        blocker = other.lock("b")
        assert blocker.acquire()
        assert zk.lock("b").acquire(blocking=False) is False
        waiter = zk.lock("b")
        outcome: list[BaseException] = []

        def wait() -> None:
            try:
                waiter.acquire()
            except zkflock.AcquireCancelledError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        while len(other.holders("b")) < 2:
            seen.changed.wait(0.05)
        waiter.cancel()
        thread.join(10)
        assert len(outcome) == 1
        blocker.release()
        expiring = zk.lock("e")
        assert expiring.acquire()
        client_id = zk.zk.kazoo.client_id
        thief = KazooClient(zk_hosts, client_id=client_id, timeout=1.0)
        thief.start(timeout=10)
        thief.stop()
        thief.close()
        for _ in range(300):
            states = [e for e in seen.events if e[0] == "state"]
            back = ("state", "lost") in states and states[-1] == ("state", "connected")
            if back and ("lost", "exclusive", "e") in seen.events:
                break
            seen.changed.clear()
            seen.changed.wait(0.05)
    lock_events = [e for e in seen.events if e[0] != "state"]
    assert lock_events == [
        ("started", "exclusive", "a"), ("acquired", "exclusive", "a"),
        ("released", "exclusive", "a"),
        ("started", "write", "w"), ("acquired", "write", "w"),
        ("started", "read", "w"), ("acquired", "read", "w"),
        ("released", "read", "w"), ("released", "write", "w"),
        ("started", "semaphore", "s"), ("acquired", "semaphore", "s"),
        ("started", "many", "m1, m2"), ("acquired", "many", "m1, m2"),
        ("released", "many", "m1, m2"), ("released", "semaphore", "s"),
        ("started", "exclusive", "b"), ("timed_out", "exclusive", "b"),
        ("started", "exclusive", "b"), ("cancelled", "exclusive", "b"),
        ("started", "exclusive", "e"), ("acquired", "exclusive", "e"),
        ("lost", "exclusive", "e"),
    ]
    states = [e for e in seen.events if e[0] == "state"]
    assert states[0] == ("state", "connected")  # the state it started in
    assert ("state", "lost") in states
    assert states[-1] == ("state", "connected")
    assert all(s >= 0 for s in seen.seconds)


def test_every_started_acquire_ends_with_one_event_and_the_start_state_is_told(
    zk_hosts: str,
) -> None:
    # An acquire that fails with an error (here the refused upgrade: a write
    # lock behind this thread's own read lock would wait for ever) must still
    # close its "started" event, or a waiting gauge stays up for good.
    seen = Recording()
    with zkflock.connect(zk_hosts, root="/", metrics=seen) as zk:
        assert seen.events[:1] == [("state", "connected")]
        with zk.read_lock("u"), pytest.raises(zkflock.ConfigError):
            zk.write_lock("u").acquire(timeout=5)
    lock_events = [e for e in seen.events if e[0] != "state"]
    assert lock_events == [
        ("started", "read", "u"), ("acquired", "read", "u"),
        ("started", "write", "u"), ("failed", "write", "u"),
        ("released", "read", "u"),
    ]


def test_no_observer_means_noop_and_a_broken_observer_costs_no_lock(zk_hosts: str) -> None:
    class Broken(Observer):
        def acquired(self, kind: str, name: str, wait: float) -> None:
            raise RuntimeError("observer bug")

    with zkflock.connect(zk_hosts, root="/") as plain:
        assert plain.observer is NOOP
    with zkflock.connect(zk_hosts, root="/", metrics=Broken()) as zk:
        lock = zk.lock("x")
        assert lock.acquire()
        assert lock.is_held
        lock.release()
