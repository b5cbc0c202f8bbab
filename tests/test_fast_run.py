"""``zkflock run``'s fast path (``_cli/fast.py``, ``_zk/lite.py``) against the
full one, real ZooKeeper: the same bytes on the wire, the same queue (a fast
and a full ``run`` exclude each other, in FIFO order), and a lost session on
the fast path stops the command before anyone else runs unlocked.

The other ``run`` tests (``test_cli_run.py``, ``test_cli_flock.py``) start
``python -m zkflock``, which is the fast path whenever it serves the
arguments: they run on it too. ``ZKFLOCK_FAST=0`` forces the full path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.protocol.serialization import Connect, Create2, Delete, GetChildren, GetData, SetData

import zkflock
from zkflock._cli.fast import recognise
from zkflock._cli.fastexit import EX_LOCK_LOST
from zkflock._cli.fastrun import shell_join
from zkflock._harness.proxy import ZkProxy
from zkflock._locks import holder
from zkflock._server.local import LocalZooKeeper
from zkflock._zk import jute
from zkflock._zk.lite import parse_hosts

WAIT = 30.0
FAST = {"ZKFLOCK_FAST": "1"}
FULL = {"ZKFLOCK_FAST": "0"}


# -- pure parts -------------------------------------------------------------------------


def test_wire_format_is_kazoos() -> None:
    acl = [(31, "world", "anyone")]
    assert jute.connect_request(5, 10000, 7, b"p" * 16)[4:] == Connect(
        0, 5, 10000, 7, b"p" * 16, False).serialize()
    from kazoo.security import OPEN_ACL_UNSAFE

    assert jute.create_body("/a/x-", b"d", 3, acl) == Create2(
        "/a/x-", b"d", OPEN_ACL_UNSAFE, 3).serialize()
    assert jute.path_watch_body("/a", False) == GetChildren("/a", None).serialize()
    assert jute.path_watch_body("/a", True) == GetData("/a", lambda e: None).serialize()
    assert jute.delete_body("/a") == Delete("/a", -1).serialize()
    assert jute.set_data_body("/a", b"v") == SetData("/a", b"v", -1).serialize()


def test_holder_data_is_json_dumps() -> None:
    import socket

    purpose = "sh -c 'é\"\\ \x01 [\u2028'"
    fixed = {"host": socket.gethostname(), "pid": 12, "started": holder.process_start(),
             "kind": "exclusive", "purpose": purpose}
    assert holder._head(12, "x", purpose) == json.dumps(fixed, separators=(",", ":"))[:-1]
    assert json.loads(holder.holder_data("r", purpose, True))["purpose"] == purpose


@pytest.mark.parametrize("argv", [["a"], [""], ["it's"], ["a b", "$x", "é", "-n", "x=1,y"]])
def test_shell_join_is_shlex_join(argv: list[str]) -> None:
    assert shell_join(argv) == shlex.join(argv)


def test_hosts_strings_as_kazoo_reads_them() -> None:
    assert parse_hosts("a:1,b:2/t/x") == ([("a", 1), ("b", 2)], "/t/x")
    assert parse_hosts("a") == ([("a", 2181)], "")
    assert parse_hosts("[::1]:3/") == ([("::1", 3)], "")


@pytest.mark.parametrize(("argv", "served"), [
    (["run", "L", "true"], True),
    (["--hosts", "h:1", "--root=/r", "--json", "run", "-n", "L", "true"], True),
    (["-v", "run", "L", "true"], False),
    (["--help"], False), (["--version"], False), (["status"], False),
    (["--auth-file", "f", "run", "L", "true"], True),  # digest: served (fastauth.py)
    (["--tls-ca", "c", "run", "L", "true"], False),
    (["--hosts", "--root", "run", "L", "true"], False),
    (["--hosts"], False), (["--verbose", "run", "L", "true"], False),
])
def test_which_commands_the_fast_path_serves(argv: list[str], served: bool) -> None:
    assert (recognise(argv, {}) is not None) is served
    # TLS in the environment: the full path, whatever argv says.
    assert recognise(argv, {"ZKFLOCK_TLS_CA": "ca"}) is None
    assert recognise(argv, {"ZKFLOCK_TLS_CERT": "c"}) is None
    assert recognise(argv, {"ZKFLOCK_FAST": "0"}) is None


# -- against ZooKeeper ------------------------------------------------------------------

_HOLD = 'echo "start $0" >> log; while [ ! -f "go-$0" ]; do sleep 0.05; done; echo "end $0" >> log'


def start(hosts: str, tmp_path: Path, tag: str, env: dict[str, str],
          lock: str = "L") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", hosts, "run", lock, "sh", "-c", _HOLD, tag],
        cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def log_of(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().splitlines() if path.exists() else []


def exclusive_order(lines: list[str]) -> list[str]:
    """The holders in the order they ran; AssertionError if two overlapped."""
    order, inside = [], None
    for line in lines:
        what, tag = line.split()
        if what == "start":
            assert inside is None, f"{tag} started while {inside} held the lock: {lines}"
            inside = tag
            order.append(tag)
        else:
            assert inside == tag, lines
            inside = None
    return order


def threads(pid: int) -> int:
    """Threads of the process ``pid``: 1 on the fast path, kazoo's on the full."""
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("kinds", [("fast", "full", "fast"), ("full", "fast", "full")],
                         ids="-".join)
def test_fast_and_full_paths_exclude_each_other_in_fifo_order(
        zk_hosts: str, tmp_path: Path, kinds: tuple[str, str, str]) -> None:
    procs = []
    with zkflock.connect(zk_hosts) as zk:
        for n, kind in enumerate(kinds):
            procs.append(start(zk_hosts, tmp_path, f"{kind}{n}", FAST if kind == "fast" else FULL))
            wait_for(lambda n=n: len(zk.holders("L")) == n + 1, f"contender {n} to queue")
        try:
            for n, kind in enumerate(kinds):
                tag = f"{kind}{n}"
                wait_for(lambda tag=tag: f"start {tag}" in log_of(tmp_path), f"{tag} to run")
                time.sleep(0.3)  # the others had time to cut in, if they could
                assert exclusive_order(log_of(tmp_path))[-1] == tag
                if kind == "fast":
                    assert threads(procs[n].pid) == 1
                else:
                    assert threads(procs[n].pid) > 1
                (tmp_path / f"go-{tag}").touch()
                assert procs[n].wait(timeout=WAIT) == 0
        finally:
            for proc in procs:
                proc.kill()
                proc.communicate()
    assert exclusive_order(log_of(tmp_path)) == [f"{k}{n}" for n, k in enumerate(kinds)]


@pytest.mark.parametrize("env", [FAST, FULL], ids=["fast", "full"])
def test_a_missing_chroot_is_created_as_kazoo_does(zk_server: LocalZooKeeper, tmp_path: Path,
                                                   env: dict[str, str]) -> None:
    chroot = f"/fresh-{os.getpid()}-{env['ZKFLOCK_FAST']}/deep"
    done = subprocess.run(
        [sys.executable, "-m", "zkflock", "--hosts", zk_server.hosts + chroot, "run", "L",
         "sh", "-c", 'echo "token $ZKFLOCK_TOKEN"'],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("token ")
    from kazoo.client import KazooClient

    client = KazooClient(hosts=zk_server.hosts, timeout=10.0)
    client.start(timeout=10.0)
    try:  # made as kazoo's makepath makes it: persistent, and the lock's root under it
        stat = client.exists(chroot)
        assert stat is not None
        assert stat.ephemeralOwner == 0
        assert client.get_children(chroot) == ["zkflock"]
    finally:
        client.stop()
        client.close()


def test_the_order_check_catches_an_overlap(zk_hosts: str, tmp_path: Path) -> None:
    # The broken variant: two names, so nothing excludes the two commands.
    procs = [start(zk_hosts, tmp_path, "fast0", FAST, lock="L"),
             start(zk_hosts, tmp_path, "full1", FULL, lock="M")]
    try:
        wait_for(lambda: len(log_of(tmp_path)) == 2, "both to run")
        for tag in ("fast0", "full1"):
            (tmp_path / f"go-{tag}").touch()
        for proc in procs:
            assert proc.wait(timeout=WAIT) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    with pytest.raises(AssertionError, match="started while"):
        exclusive_order(log_of(tmp_path))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fast_path_session_loss_stops_the_command(zk_hosts: str, tmp_path: Path) -> None:
    # SIGSTOP the fast `zkflock run` past its 1 s session timeout: ZooKeeper
    # expires the session and hands the lock on (here to a kazoo session).
    # Resumed, it must see the loss, stop the command's whole group (SIGTERM),
    # exit 75, and nothing of the command may write after that.
    ours = ('trap "echo TERM >> term; exit 0" TERM; touch ready; '
            'while :; do echo still >> log; sleep 0.05; done')
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "run", "--grace", "5", "L",
         "sh", "-c", ours], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **FAST, "ZKFLOCK_SESSION_TIMEOUT": "1"})
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), "the command to start")
        assert threads(proc.pid) == 1  # the fast path: no kazoo threads
        with zkflock.connect(zk_hosts) as zk:
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                lock = zk.lock("L")
                assert lock.acquire(timeout=WAIT)  # handed on while run is frozen
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert proc.wait(timeout=WAIT) == EX_LOCK_LOST
            assert not _group_alive(proc.pid)  # the command and its children are gone
            written = len(log_of(tmp_path))
            time.sleep(0.5)
            assert len(log_of(tmp_path)) == written  # nothing of it runs any more
            lock.release()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    stderr = proc.communicate()[1]
    assert (tmp_path / "term").read_text().strip() == "TERM"
    assert "lock 'L' was lost while the command ran; so it was stopped with SIGTERM" in stderr


# -- through a proxy: connection loss, lost replies -------------------------------------

_WAIT_GO = 'touch ready; i=0; while [ ! -f go ]; do i=$((i+1)); [ $i -gt 600 ] && exit 1; ' \
           'sleep 0.05; done; exit 7'


@pytest.fixture
def proxy(zk_server: LocalZooKeeper, zk_hosts: str) -> Iterator[tuple[ZkProxy, str]]:
    """A proxy to the server, and the test's hosts string (with chroot) through it."""
    host, port = zk_server.hosts.split(",")[0].rsplit(":", 1)
    chroot = zk_hosts[len(zk_server.hosts):]
    zk_proxy = ZkProxy((host, int(port)))
    yield zk_proxy, zk_proxy.address + chroot
    zk_proxy.close()


def fast_through(hosts: str, tmp_path: Path, timeout: str,
                 script: str = _WAIT_GO) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", hosts, "run", "--grace", "1", "L",
         "sh", "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **FAST, "ZKFLOCK_SESSION_TIMEOUT": timeout})


def holding_pids(zk: zkflock.Session) -> list[int | None]:
    return [h.pid for h in zk.holders("L")]


def _keeps_its_node(zk_hosts: str, tmp_path: Path, proc: subprocess.Popen[str],
                    disturb: Callable[[], None]) -> None:
    """After ``disturb()`` and past the session timeout, the fast run still
    holds the same node (a session left behind would be gone by then) and
    its command's own status comes back."""
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), "the command to start")
        with zkflock.connect(zk_hosts) as zk:
            before = zk.holders("L")
            disturb()
            time.sleep(2.5)  # past the session timeout
            assert zk.holders("L") == before  # the same node, the same session
        (tmp_path / "go").touch()
        assert proc.wait(timeout=WAIT) == 7
    finally:
        proc.kill()
        proc.communicate()


def test_fast_path_reconnects_with_its_session(zk_hosts: str, tmp_path: Path,
                                               proxy: tuple[ZkProxy, str]) -> None:
    # A connection cut shorter than the session timeout: the fast path
    # reconnects with the session id and password and keeps the lock.
    zk_proxy, hosts = proxy

    def cut_briefly() -> None:
        zk_proxy.cut()
        time.sleep(0.5)
        zk_proxy.heal()
        wait_for(lambda: zk_proxy.accepted >= 2, "the fast path to reconnect")

    _keeps_its_node(zk_hosts, tmp_path, fast_through(hosts, tmp_path, "2"), cut_briefly)


def test_fast_path_moves_to_another_host_with_its_session(
        zk_server: LocalZooKeeper, zk_hosts: str, tmp_path: Path) -> None:
    # Two hosts (two proxies to one server): the one the fast path is on is
    # cut for good; it must go on, with the same session and node, through
    # the other within the session timeout.
    host, port = zk_server.hosts.split(",")[0].rsplit(":", 1)
    chroot = zk_hosts[len(zk_server.hosts):]
    proxies = [ZkProxy((host, int(port))), ZkProxy((host, int(port)))]
    hosts = ",".join(p.address for p in proxies) + chroot

    def cut_the_used_one() -> None:
        used, other = proxies if proxies[0].accepted else proxies[::-1]
        assert (used.accepted, other.accepted) == (1, 0)
        used.cut()
        wait_for(lambda: other.accepted >= 1, "the fast path to reach the other host")

    try:
        _keeps_its_node(zk_hosts, tmp_path, fast_through(hosts, tmp_path, "2"),
                        cut_the_used_one)
    finally:
        for p in proxies:
            p.close()


def test_fast_path_adopts_its_node_after_a_lost_create_reply(
        zk_hosts: str, tmp_path: Path, proxy: tuple[ZkProxy, str]) -> None:
    # The create is done on the server, its reply is lost with the connection:
    # the fast path finds its node again by its guid rather than queue a second
    # one behind it (which would wait for its own first node for ever).
    zk_proxy, hosts = proxy
    with zkflock.connect(zk_hosts) as zk:  # the queue exists: the create is not refused
        zk.zk.ensure_persistent(zk.lock_path("L")[1])
    zk_proxy.drop_next_reply(frozenset({jute.CREATE2}))
    proc = fast_through(hosts, tmp_path, "4")
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), "the command to start")
        assert zk_proxy.dropped.is_set()
        with zkflock.connect(zk_hosts) as zk:
            assert [h.state for h in zk.holders("L")] == ["holding"]  # one node, no stray
            assert holding_pids(zk) == [proc.pid]
        (tmp_path / "go").touch()
        assert proc.wait(timeout=WAIT) == 7
    finally:
        proc.kill()
        proc.communicate()


def test_fast_path_unreachable_past_the_session_timeout_stops_the_command(
        zk_hosts: str, tmp_path: Path, proxy: tuple[ZkProxy, str]) -> None:
    zk_proxy, hosts = proxy
    script = 'trap "echo TERM > term; exit 0" TERM; touch ready; while :; do sleep 0.05; done'
    proc = fast_through(hosts, tmp_path, "1", script)
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), "the command to start")
        zk_proxy.cut()  # and never healed: no server within the session timeout
        assert proc.wait(timeout=WAIT) == EX_LOCK_LOST
        assert not _group_alive(proc.pid)
    finally:
        proc.kill()
    stderr = proc.communicate()[1]
    assert (tmp_path / "term").read_text().strip() == "TERM"
    assert "ZooKeeper was unreachable for longer than the session timeout" in stderr
    assert "was lost while the command ran; so it was stopped with SIGTERM" in stderr


# -- digest credentials -----------------------------------------------------------------


def _node_acls(hosts: str, auth: str) -> list[set[tuple[str, str, int]]]:
    """The ACL of every node in lock L's queue (and of the queue itself, first)."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts, timeout=10.0, auth_data=[("digest", auth)])
    client.start(timeout=10.0)
    try:
        parent = "/zkflock/locks/L"
        paths = [parent] + [f"{parent}/{c}" for c in client.get_children(parent)]
        return [{(a.id.scheme, a.id.id, a.perms) for a in client.get_acls(p)[0]} for p in paths]
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("path_env", [FAST, FULL], ids=["fast", "full"])
def test_credentials_give_the_full_paths_acl(zk_hosts: str, tmp_path: Path,
                                              path_env: dict[str, str]) -> None:
    secret = tmp_path / "auth"
    secret.write_text("alice:alice-pw\n")
    secret.chmod(0o600)
    env = {**path_env, "ZKFLOCK_AUTH_FILE": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "--auth-file", str(secret),
         "run", "L", "sh", "-c", _WAIT_GO], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), "the command to start")
        assert (threads(proc.pid) == 1) is (path_env is FAST)
        alice = zkflock.AclPolicy.digest_id("alice", "alice-pw")
        expected = {("digest", alice, 31), ("world", "anyone", 1)}  # AclPolicy()'s default
        assert _node_acls(zk_hosts, "alice:alice-pw") == [expected, expected]
        (tmp_path / "go").touch()
        assert proc.wait(timeout=WAIT) == 7
    finally:
        proc.kill()
        proc.communicate()
    # A wrong password is told apart by the namespace's ACL: 77 and nothing runs.
    secret.write_text("alice:wrong\n")
    done = subprocess.run(
        [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "--auth-file", str(secret),
         "run", "L", "touch", "ran"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=WAIT)
    assert done.returncode == 77, done.stderr
    assert "another password" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_fast_semaphore_waiter_signals_its_grant(zk_hosts: str, tmp_path: Path) -> None:
    # Two leases held elsewhere, two fast waiters queued. When a lease frees,
    # the first waiter is granted and touches its node: that wakes the second,
    # which then waits on every holder, so the next lease to free is its own
    # even though the first waiter still holds (without the touch it would
    # wait for its predecessor to leave).
    def waiter(tag: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "run", "--max-holders", "2",
             "gpu", "sh", "-c", _HOLD, tag], cwd=tmp_path, env={**os.environ, **FAST},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = []
    with zkflock.connect(zk_hosts) as zk:
        leases = [zk.semaphore("gpu", max_leases=2) for _ in range(2)]
        for lease in leases:
            assert lease.acquire(timeout=WAIT)
        try:
            for n, tag in enumerate(("F1", "F2")):
                procs.append(waiter(tag))
                wait_for(lambda n=n: len(zk.holders("gpu")) == 3 + n, f"{tag} to queue")
            leases[0].release()
            wait_for(lambda: "start F1" in log_of(tmp_path), "F1 to be granted")
            leases[1].release()
            wait_for(lambda: "start F2" in log_of(tmp_path), "F2 to be granted beside F1")
            assert "end F1" not in log_of(tmp_path)
            for tag, proc in zip(("F1", "F2"), procs, strict=True):
                (tmp_path / f"go-{tag}").touch()
                assert proc.wait(timeout=WAIT) == 0
        finally:
            for proc in procs:
                proc.kill()
                proc.communicate()


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the terminal's last process has gone
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("path_env", [FAST, FULL], ids=["fast", "full"])
def test_the_command_gets_the_terminal(zk_hosts: str, tmp_path: Path,
                                       path_env: dict[str, str]) -> None:
    # At an interactive terminal the command's group is made the foreground
    # one (as a shell does): in a group of its own it could not read the
    # terminal otherwise (SIGTTIN would stop it), and zkflock takes it back.
    import pty

    argv = [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "run", "L", "sh", "-c",
            'echo ready; read line; echo "got:$line"']
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child: a session leader on the terminal
        os.chdir(tmp_path)
        os.execve(argv[0], argv, {**os.environ, **path_env})
    try:
        assert b"ready" in _read_until(master, b"ready", WAIT)
        os.write(master, b"hello\n")
        assert b"got:hello" in _read_until(master, b"got:hello", WAIT)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
