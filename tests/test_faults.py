"""Faults against a real ZooKeeper: a killed holder, session expiry, a cut
TCP path (through zkflock._harness.proxy), a lost create reply, foreign nodes, and
names refused before anything reaches ZooKeeper."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkflock
from _workers import Spawner, wait_until
from zkflock import InvalidNameError, LocalZooKeeper, Lock, LockLostError, Session
from zkflock._harness.proxy import ZkProxy
from zkflock._locks.core import LockCore
from zkflock._locks.protocol import node_prefix
from zkflock._locks.waiting import Waiter
from zkflock._session import core_of
from zkflock._zk.client import ZkClient

NAME = "data/data.txt"


@pytest.fixture
def proxy(zk_server: LocalZooKeeper, zk_hosts: str) -> Iterator[tuple[ZkProxy, str]]:
    """A proxy to the server, and the test's hosts string (with chroot) through it."""
    host, port = zk_server.hosts.split(",")[0].rsplit(":", 1)
    chroot = zk_hosts[len(zk_server.hosts) :]
    proxy = ZkProxy((host, int(port)))
    yield proxy, proxy.address + chroot
    proxy.close()


def _lost_recorder() -> tuple[threading.Event, list[Lock]]:
    fired = threading.Event()
    seen: list[Lock] = []

    def on_lost(lock: Lock) -> None:
        seen.append(lock)
        fired.set()

    return fired, seen


# -- a killed holder --------------------------------------------------------------


def test_holder_killed_with_sigkill_frees_the_lock_within_its_session_timeout(
    sessions: Callable[..., Session], spawner: Spawner, zk_hosts: str
) -> None:
    timeout = 1.0
    victim = spawner.start(
        "hold", "--hosts", zk_hosts, "--name", NAME, "--session-timeout", str(timeout)
    )
    assert victim.stdout is not None
    line = victim.stdout.readline()
    assert line.startswith("held "), spawner.stderr(0)
    waiter = sessions().lock(NAME)
    assert waiter.acquire(blocking=False) is False  # really held by the victim
    victim.kill()  # SIGKILL: no release, no session close
    victim.wait(timeout=10)
    # The server expires the dead session after its timeout (plus a tick);
    # 3x is the bound, not a measurement.
    assert waiter.acquire(timeout=3 * timeout)
    assert waiter.token > int(line.split()[1])
    waiter.release()


# -- session expiry ---------------------------------------------------------------


def _expire(session: Session, hosts: str) -> None:
    """Expire ``session`` as kazoo's harness does: a second client takes over
    its session id and password, then closes the session."""
    other = KazooClient(hosts, client_id=session.zk.kazoo.client_id, timeout=1.0)
    other.start(timeout=10)
    other.stop()
    other.close()


def test_session_expiry_loses_the_lock_and_fires_on_lost(
    sessions: Callable[..., Session], zk_hosts: str
) -> None:
    session = sessions(session_timeout=2.0)
    fired, seen = _lost_recorder()
    lock = session.lock(NAME, on_lost=lambda held: seen.append(held) or fired.set())
    assert lock.acquire()
    lock.ensure_held()
    _expire(session, zk_hosts)
    assert fired.wait(15), "on_lost did not fire after the session expired"
    assert seen == [lock]
    with pytest.raises(LockLostError):
        lock.ensure_held()
    assert not lock.is_held
    # The server removed the node with the session: another session takes it.
    other = sessions().lock(NAME)
    assert other.acquire(timeout=10)
    other.release()
    lock.release()  # safe after a loss


def test_with_block_whose_lock_expired_raises_lock_lost(
    sessions: Callable[..., Session], zk_hosts: str
) -> None:
    session = sessions(session_timeout=2.0)
    fired, _ = _lost_recorder()
    lock = session.lock(NAME)
    lock.add_lost_callback(lambda _held: fired.set())
    with pytest.raises(LockLostError), lock:  # noqa: PT012 - the block is the subject
        _expire(session, zk_hosts)
        assert fired.wait(15)


# -- a cut connection ----------------------------------------------------------------


def test_cut_connection_is_reported_lost_after_the_session_timeout_while_still_cut(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str]
) -> None:
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=1.0)
    fired, seen = _lost_recorder()
    lock = session.lock(NAME, on_lost=lambda held: seen.append(held) or fired.set())
    assert lock.acquire()
    zk_proxy.cut()

    # SUSPENDED: maybe lost, refused at once, without waiting for the timer.
    wait_until(lambda: session.zk.kazoo.state == "SUSPENDED", 10, "kazoo to suspend")
    with pytest.raises(LockLostError) as info:
        lock.ensure_held()
    if not fired.is_set():
        assert "suspended" in str(info.value)

    # The local timer declares the loss although no server was reached again:
    # kazoo itself still says SUSPENDED, not LOST.
    assert fired.wait(10), "on_lost did not fire while the connection was cut"
    assert zk_proxy.is_cut
    assert session.zk.kazoo.state == "SUSPENDED"
    assert seen == [lock]
    with pytest.raises(LockLostError, match="lost"):
        lock.ensure_held()

    zk_proxy.heal()
    other = sessions().lock(NAME)  # direct, not through the proxy
    assert other.acquire(timeout=15)
    other.release()
    # The cut session recovers (with a new ZooKeeper session) and can lock again.
    wait_until(lambda: session.connected, 15, "the cut session to reconnect")
    again = session.lock(NAME)
    assert again.acquire(timeout=10)
    again.release()


def _cut(zk_proxy: ZkProxy, session: Session) -> None:
    """Cut the session's path to ZooKeeper and wait until kazoo notices."""
    zk_proxy.cut()
    wait_until(lambda: session.zk.kazoo.state == "SUSPENDED", 10, "kazoo to suspend")


def _held_through(
    proxy: tuple[ZkProxy, str], sessions: Callable[..., Session]
) -> tuple[ZkProxy, Session, Lock, str]:
    """A session through the proxy (4 s timeout) holding NAME: (proxy, session, lock, parent)."""
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=4.0)
    lock = session.lock(NAME)
    assert lock.acquire()
    return zk_proxy, session, lock, core_of(session).lock_path(NAME)[1]


def test_release_during_a_short_cut_deletes_the_node_once_reconnected(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str], kazoo_client: KazooClient
) -> None:
    # kazoo #732: a delete swallowed during SUSPENDED leaves a node that
    # blocks everyone for as long as the session lives. Here the cut is
    # shorter than the session timeout, so the session (and its node) live on.
    zk_proxy, session, lock, parent = _held_through(proxy, sessions)
    session_id = session.zk.session_id
    _cut(zk_proxy, session)
    releaser = threading.Thread(target=lock.release, daemon=True)
    releaser.start()
    # release() does not hang while ZooKeeper is out of reach: the node is
    # left to the session's reaper.
    releaser.join(3)
    assert not releaser.is_alive(), "release() blocked while the connection was cut"
    assert kazoo_client.get_children(parent) != []  # the node is still there meanwhile
    zk_proxy.heal()
    wait_until(lambda: kazoo_client.get_children(parent) == [], 10, "our node to be deleted")
    assert session.zk.session_id == session_id  # the same session lived on
    other = sessions().lock(NAME)
    assert other.acquire(timeout=5)
    other.release()


def test_reads_and_commits_do_not_hang_while_the_connection_is_cut(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str], tmp_path: Path
) -> None:
    # kazoo queues a request made while it reconnects and waits for its reply
    # without a bound; every call of ours is bounded by the session timeout.
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=2.0, root=tmp_path)
    shared = session.shared_file("cut.txt")
    shared.append("before\n")
    _cut(zk_proxy, session)
    outcomes: dict[str, BaseException | None] = {}

    def attempt(what: str, call: Callable[[], object]) -> None:
        try:
            call()
            outcomes[what] = None
        except BaseException as exc:
            outcomes[what] = exc

    calls = {"holders": lambda: session.holders(NAME), "read": shared.read,
             "lock_names": session.lock_names}
    threads = [threading.Thread(target=attempt, args=item, daemon=True) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)  # the session timeout (2 s) bounds each wait, with margin
    assert not any(t.is_alive() for t in threads), "a call blocked while the connection was cut"
    assert all(isinstance(e, zkflock.ConnectError) for e in outcomes.values()), outcomes
    zk_proxy.heal()


def test_acquire_again_while_suspended_gives_up_the_old_place(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str], kazoo_client: KazooClient
) -> None:
    # A holder whose connection is suspended may have lost its lock; asking for
    # it again must not keep (and leak) the old node next to the new one.
    # The holding thread asks (another thread would wait for it to release).
    zk_proxy, session, lock, parent = _held_through(proxy, sessions)
    _cut(zk_proxy, session)
    healer = threading.Timer(0.5, zk_proxy.heal)
    healer.start()
    try:
        assert lock.acquire(timeout=10)
    finally:
        healer.join(10)
    wait_until(lambda: len(kazoo_client.get_children(parent)) == 1, 10, "the old node to go")
    lock.release()
    wait_until(lambda: kazoo_client.get_children(parent) == [], 10, "the queue to empty")


def test_acquire_timeout_holds_while_the_connection_is_cut(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str]
) -> None:
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=4.0)
    lock = session.lock(NAME)
    _cut(zk_proxy, session)
    result: list[object] = []
    waiter = threading.Thread(
        target=lambda: result.append(lock.acquire(timeout=0.5)), daemon=True
    )
    waiter.start()
    waiter.join(3)  # a bound well past the timeout, well before the heal
    assert not waiter.is_alive(), "acquire(timeout=0.5) ignored its timeout while cut"
    assert result == [False]
    zk_proxy.heal()
    wait_until(lambda: session.connected, 15, "the session to reconnect")
    assert lock.acquire(timeout=10)
    lock.release()


# -- a lost create reply ---------------------------------------------------------------


def test_create_whose_reply_was_lost_is_adopted_not_leaked(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str], kazoo_client: KazooClient
) -> None:
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=4.0)
    lock = session.lock(NAME)
    parent = core_of(session).lock_path(NAME)[1]
    warm = session.lock(NAME)  # make the parent exist, so the next create is the node's
    with warm:
        pass
    zk_proxy.drop_next_reply()
    assert lock.acquire(timeout=15)
    assert zk_proxy.dropped.is_set(), "the proxy never saw the create"
    children = kazoo_client.get_children(parent)
    assert len(children) == 1  # adopted: exactly one node of ours
    owner = kazoo_client.exists(f"{parent}/{children[0]}").ephemeralOwner
    assert owner == session.zk.session_id
    lock.release()
    wait_until(lambda: kazoo_client.get_children(parent) == [], 10, "our node to go")


def test_leak_check_catches_a_client_that_does_not_adopt(
    sessions: Callable[..., Session],
    proxy: tuple[ZkProxy, str],
    kazoo_client: KazooClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The broken variant: never find the node again after a lost reply (nor
    # delete it by its guid). The orphan stays for the whole session and the
    # client queues behind its own node, so the checks of the test above fail.
    monkeypatch.setattr(ZkClient, "find_own", lambda self, parent, guid: None)
    monkeypatch.setattr(LockCore, "discard_guid", lambda self, parent, guid: None)
    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=4.0)
    parent = core_of(session).lock_path(NAME)[1]
    with session.lock(NAME):
        pass
    zk_proxy.drop_next_reply()
    assert session.lock(NAME).acquire(timeout=1.5) is False
    assert len(kazoo_client.get_children(parent)) == 1  # the leaked orphan


# -- foreign nodes ----------------------------------------------------------------------


def test_node_with_our_guid_but_another_session_is_not_adopted(
    sessions: Callable[..., Session], kazoo_client: KazooClient, zk_hosts: str
) -> None:
    session = sessions()
    parent = core_of(session).lock_path(NAME)[1]
    kazoo_client.ensure_path(parent)
    guid = "0123456789abcdef" * 2

    # Control: a node of our own session with that guid is found.
    mine = session.zk.kazoo.create(
        f"{parent}/{node_prefix('x', guid)}", b"", ephemeral=True, sequence=True
    )
    found = session.zk.find_own(parent, guid)
    assert found is not None
    assert found.node == mine.rsplit("/", 1)[1]
    session.zk.kazoo.delete(mine)

    # The same guid under another, dying session (CURATOR-498): not adopted.
    dying = KazooClient(zk_hosts, timeout=2.0)
    dying.start(timeout=10)
    try:
        dying.create(f"{parent}/{node_prefix('x', guid)}", b"", ephemeral=True, sequence=True)
        assert session.zk.find_own(parent, guid) is None
    finally:
        dying.stop()
        dying.close()

    # And once that session has expired, its node is gone: nothing to adopt.
    assert session.zk.find_own(parent, guid) is None


# -- invalid names ------------------------------------------------------------------------


BAD_NAMES = ["../x", "a/../../b", "/etc/passwd", "a\x00b", "a\u202eb", "x" * 300, ""]


def test_invalid_names_are_refused_before_anything_reaches_zookeeper(
    sessions: Callable[..., Session], zk_server: LocalZooKeeper, kazoo_client: KazooClient
) -> None:
    session = sessions(root="/srv/shared")
    unchanged = False
    # Another test's dead session may expire meanwhile and move the zxid, so
    # look for one quiet round; a client that wrote anything never has one.
    for _ in range(5):
        before = zk_server.zxid()
        for bad in BAD_NAMES:
            with pytest.raises(InvalidNameError):
                session.lock(bad)
            with pytest.raises(InvalidNameError):
                session.holders(bad)
        if zk_server.zxid() == before:
            unchanged = True
            break
    assert unchanged, "the server's zxid moved while only invalid names were used"
    assert kazoo_client.exists(session.settings.namespace) is None

    # Control: a valid name does reach ZooKeeper and moves the zxid.
    before = zk_server.zxid()
    with session.lock("ok"):
        pass
    assert zk_server.zxid() > before


# -- only kazoo's exceptions are translated --------------------------------------------


class _Bug(TypeError):
    """Stands for a bug of ours or the caller's, raised mid-acquire."""


@pytest.mark.parametrize("raised", [_Bug, KeyboardInterrupt, SystemExit])
def test_a_foreign_exception_passes_through_unchanged_after_our_node_is_deleted(
    raised: type[BaseException], sessions: Callable[..., Session],
    kazoo_client: KazooClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The old core turned every such exception into ConnectError (exit 3,
    # "unreachable"); ours must come out as it went in, after clean-up.
    holder, session = sessions().lock(NAME), sessions()
    assert holder.acquire()
    parent = core_of(session).lock_path(NAME)[1]

    def interrupted(self: Waiter, *args: object) -> None:
        raise raised("raised while waiting")

    monkeypatch.setattr(Waiter, "_watch_and_wait", interrupted)
    lock = session.lock(NAME)
    with pytest.raises(raised) as caught:
        lock.acquire(timeout=10)
    assert type(caught.value) is raised
    assert not isinstance(caught.value, zkflock.ZkflockError)
    assert len(kazoo_client.get_children(parent)) == 1  # only the holder's node
    assert not lock.is_held
    monkeypatch.undo()
    holder.release()
    assert lock.acquire(timeout=10)  # the object is usable again
    lock.release()


def test_lock_many_in_batches_whose_batch_reply_was_lost_starts_again_and_leaks_nothing(
    sessions: Callable[..., Session], proxy: tuple[ZkProxy, str], kazoo_client: KazooClient
) -> None:
    # A batch's multi is committed but its reply lost, the connection with
    # it, while the gate is ours: every node of that attempt is deleted (the
    # lost batch's by its guid), the gate is taken again (still ours) and
    # the whole lock_many queued afresh: one node of ours per queue, no gate
    # left, and nothing once released.
    from test_many import GATE, remove_empty_queues

    zk_proxy, hosts = proxy
    session = sessions(hosts, session_timeout=10.0)
    kept = session.lock("keep")
    assert kept.acquire()
    names = [f"f/{n:04d}" for n in range(5000)]  # two batches (about 4,000 fit in one)
    core = core_of(session)
    parents = [core.lock_path(name)[1] for name in names[::250]]
    zk_proxy.drop_next_reply(frozenset({14}))  # the first batch's multi
    many = session.lock_many(names, timeout=60)
    assert many.acquire()
    assert zk_proxy.dropped.is_set(), "the proxy never saw the multi"
    czxids = {kazoo_client.exists(p).czxid for p in many.node_paths()[::500]}  # type: ignore[union-attr]
    assert len(czxids) == 2  # two batches
    wait_until(lambda: all(len(kazoo_client.get_children(p)) == 1 for p in parents), 20,
               "the lost attempt's nodes to be deleted")
    for parent in parents:
        (child,) = kazoo_client.get_children(parent)
        assert kazoo_client.exists(f"{parent}/{child}").ephemeralOwner == session.zk.session_id
        assert f"{parent}/{child}" in many.node_paths()
    assert not kazoo_client.exists(GATE)
    kept.ensure_held()
    many.release()
    kept.release()
    wait_until(lambda: all(kazoo_client.get_children(p) == [] for p in parents), 10,
               "our nodes to go")
    remove_empty_queues(kazoo_client, "f%2F")
