"""Fixtures: every one starts a real ZooKeeper through LocalZooKeeper, never a mock."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkflock
from _sharedfs import SharedRoots, fresh_roots, gluster_volume
from _workers import Spawner
from zkflock import Session
from zkflock._harness.sharedfs import GlusterVolume
from zkflock._server.local import LocalZooKeeper

# A shell without job control starts a background job (`make test &`) with
# SIGINT ignored, and every child inherits that: the tests that press Ctrl-C
# on a child (test_status_watch) would see it ignored. A handler of our own is
# reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# tickTime 200 ms lets tests ask for session timeouts down to 0.4 s (2 ticks),
# so session-expiry tests run in about a second.
TEST_TICK_TIME = 200
_chroot_ids = itertools.count(1)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item so fixtures can tell a failed test.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


def _show_log_on_failure(request: pytest.FixtureRequest, zk: LocalZooKeeper) -> None:
    if _failed(request):
        print(f"\n----- ZooKeeper log tail ({zk.base_dir}) -----\n{zk.log_tail()}")


@pytest.fixture(scope="session")
def zk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalZooKeeper]:
    """A standalone ZooKeeper shared by the whole session (tickTime 200 ms, no fsync)."""
    zk = LocalZooKeeper(
        tmp_path_factory.mktemp("zk-standalone"), tick_time=TEST_TICK_TIME, force_sync=False
    )
    zk.start()
    try:
        yield zk
    finally:
        zk.stop()


@pytest.fixture
def zk_hosts(zk_server: LocalZooKeeper, request: pytest.FixtureRequest) -> Iterator[str]:
    """Hosts string with a fresh chroot, e.g. ``127.0.0.1:PORT/t-1234-7``."""
    chroot = f"/t-{os.getpid()}-{next(_chroot_ids)}"
    client = KazooClient(hosts=zk_server.hosts, timeout=10.0)
    client.start(timeout=10.0)
    try:
        # kazoo does not create the chroot node itself.
        client.ensure_path(chroot)
    finally:
        client.stop()
        client.close()
    yield zk_server.hosts + chroot
    _show_log_on_failure(request, zk_server)


@pytest.fixture
def zk_ensemble(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalZooKeeper]:
    """A fresh 3-node ensemble per test (tests kill and pause its nodes)."""
    zk = LocalZooKeeper(
        tmp_path_factory.mktemp("zk-ensemble"), nodes=3, tick_time=TEST_TICK_TIME,
        force_sync=False,
    )
    zk.start()
    try:
        yield zk
        _show_log_on_failure(request, zk)
    finally:
        zk.stop()


@pytest.fixture
def kazoo_client(zk_hosts: str) -> Iterator[KazooClient]:
    """A plain started KazooClient in the test's chroot, for inspecting state."""
    client = KazooClient(hosts=zk_hosts, timeout=10.0)
    client.start(timeout=10.0)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@pytest.fixture
def sessions(zk_hosts: str) -> Iterator[Callable[..., Session]]:
    """Open zkflock sessions (by default in the test's chroot, root "/"); all
    closed at the end. ``sessions(hosts, **connect_kwargs)``."""
    opened: list[Session] = []

    def open_session(hosts: str = zk_hosts, **kwargs: object) -> Session:
        kwargs.setdefault("root", "/")
        session = zkflock.connect(hosts, **kwargs)  # type: ignore[arg-type]
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    """Worker processes (tests/_workers.py) for a test; all killed at the end."""
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


@pytest.fixture(scope="session")
def shared_volume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlusterVolume]:
    """A GlusterFS volume mounted three times (tests/_sharedfs.py: two default
    mounts, one with a 2-s negative-lookup cache), torn down at the end."""
    with gluster_volume(tmp_path_factory.mktemp("gluster")) as volume:
        yield volume


@pytest.fixture
def shared_roots(shared_volume: GlusterVolume) -> SharedRoots:
    """A fresh directory of the shared volume, as mounts a, b and cached show it."""
    return fresh_roots(shared_volume)
