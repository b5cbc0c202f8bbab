"""``zkflock run`` in real subprocesses against real ZooKeeper: exit codes,
the child's environment, shared vs exclusive, signal forwarding, lock-loss kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import zkflock
from zkflock._cli.runner import (
    EX_LOCK_LOST,
    EX_OSERR,
    EX_UNAVAILABLE,
    EX_USAGE,
    ExecFailedError,
    Interrupted,
    child_exit_code,
    error_exit_code,
)
from zkflock._locks.lock import Lock
from zkflock._locks.protocol import READ, SEMAPHORE

WAIT = 30.0  # generous bound for anything we wait on (2 shared cores)


def zkflock_cmd(hosts: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "zkflock", "--hosts", hosts, *args]


def run_cli(hosts: str, *args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(zkflock_cmd(hosts, *args), capture_output=True, text=True,
                          timeout=WAIT * 2, env={**os.environ, **(env or {})}, cwd=cwd)


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `zkflock ...` in the background; kill whatever is left at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(hosts: str, *args: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(zkflock_cmd(hosts, *args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=cwd,
                                env={**os.environ, **(env or {})})
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate(timeout=WAIT)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the pure mapping -----------------------------------------------------------------


def test_child_exit_code_passes_status_and_maps_signals() -> None:
    assert child_exit_code(0) == 0
    assert child_exit_code(3) == 3
    assert child_exit_code(-signal.SIGTERM) == 143
    assert child_exit_code(-signal.SIGKILL) == 137


def test_error_exit_codes_follow_sysexits() -> None:
    assert error_exit_code(zkflock.LockTimeoutError("a", 1.0), conflict_code=42) == 42
    assert error_exit_code(zkflock.InvalidNameError("../a", "x")) == EX_USAGE
    assert error_exit_code(zkflock.ConnectError("down")) == EX_UNAVAILABLE
    assert error_exit_code(ExecFailedError("nope")) == EX_UNAVAILABLE
    assert error_exit_code(zkflock.LockLostError("gone")) == EX_LOCK_LOST
    assert error_exit_code(OSError("disk")) == EX_OSERR
    assert error_exit_code(Interrupted(signal.SIGTERM)) == 143
    assert error_exit_code(KeyboardInterrupt()) == 130
    assert error_exit_code(zkflock.StaleTokenError("gone")) == EX_LOCK_LOST
    assert error_exit_code(zkflock.SessionExpiredError("expired")) == EX_LOCK_LOST  # not 69
    assert error_exit_code(zkflock.FileCorruptError("bad")) == 65
    assert error_exit_code(zkflock.AuthFailedError("no")) == 77  # before ConnectError's 69
    assert error_exit_code(zkflock.PermissionDeniedError("acl")) == 77


# -- exit codes -----------------------------------------------------------------------


def test_child_status_passes_through(zk_hosts: str) -> None:
    assert run_cli(zk_hosts, "run", "a", "--", "sh", "-c", "exit 3").returncode == 3
    assert run_cli(zk_hosts, "run", "-c", "exit 5", "a").returncode == 5
    assert run_cli(zk_hosts, "run", "a", "true").returncode == 0


def test_signal_death_is_128_plus_signal(zk_hosts: str) -> None:
    result = run_cli(zk_hosts, "run", "a", "--", "sh", "-c", "kill -TERM $$")
    assert result.returncode == 128 + signal.SIGTERM


def test_conflict_with_nonblock_and_conflict_exit_code(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk, zk.lock("a"):
        busy = run_cli(zk_hosts, "run", "-n", "a", "--", "true")
        assert (busy.returncode, busy.stderr) == (1, "")  # silent, as flock(1)
        loud = run_cli(zk_hosts, "run", "--verbose", "-n", "a", "--", "true")
        assert loud.returncode == 1
        assert loud.stderr.startswith("zkflock: failed to get lock 'a' (held by ")
        assert run_cli(zk_hosts, "run", "-n", "-E", "42", "a", "--", "true").returncode == 42
    # Released: the same command now runs.
    assert run_cli(zk_hosts, "run", "-n", "a", "--", "sh", "-c", "exit 9").returncode == 9


def test_timeout_exits_with_conflict_code(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk, zk.lock("a"):
        result = run_cli(zk_hosts, "run", "-w", "0.5", "a", "--", "true")
        assert (result.returncode, result.stderr) == (1, "")
        # The waiter's node was removed: only our holder is queued.
        assert [h.state for h in zk.holders("a")] == ["holding"]


def test_zookeeper_unreachable_is_69(tmp_path: Path) -> None:
    result = run_cli("127.0.0.1:1", "run", "a", "--", "touch", str(tmp_path / "ran"),
                     env={"ZKFLOCK_CONNECT_TIMEOUT": "1"})
    assert result.returncode == EX_UNAVAILABLE
    assert "cannot reach ZooKeeper" in result.stderr
    assert not (tmp_path / "ran").exists()
    assert "Connection dropped" not in result.stderr  # kazoo's retries stay quiet


def test_command_not_found_is_69_and_releases(zk_hosts: str) -> None:
    result = run_cli(zk_hosts, "run", "a", "--", "/nonexistent/zkflock-test-cmd")
    assert result.returncode == EX_UNAVAILABLE
    assert "command not found" in result.stderr
    assert run_cli(zk_hosts, "run", "-n", "a", "--", "true").returncode == 0


@pytest.mark.parametrize(
    "args",
    [["run"], ["run", "a"], ["run", "-c", "true", "a", "echo"], ["run", "--bogus", "a", "true"],
     ["run", "../outside", "true"], ["run", "-s", "--max-holders", "2", "a", "true"]],
)
def test_usage_errors_are_64(zk_hosts: str, args: list[str]) -> None:
    assert run_cli(zk_hosts, *args).returncode == EX_USAGE


# -- what the child sees --------------------------------------------------------------


def test_child_gets_lock_name_and_token(zk_hosts: str, tmp_path: Path) -> None:
    script = 'printf "%s %s" "$ZKFLOCK_LOCK" "$ZKFLOCK_TOKEN" > env.txt'
    assert run_cli(zk_hosts, "run", "./data//data.txt", "--", "sh", "-c", script,
                   cwd=tmp_path).returncode == 0
    name, token = (tmp_path / "env.txt").read_text().split()
    assert name == "data/data.txt"
    first = int(token)
    run_cli(zk_hosts, "run", "data/data.txt", "--", "sh", "-c", script, cwd=tmp_path)
    assert int((tmp_path / "env.txt").read_text().split()[1]) > first  # tokens grow


# -- modes ----------------------------------------------------------------------------


# A bounded busy child (60 s): never an orphan that outlives a failed test for long.
_LOOP = "i=0; while [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done"

_RENDEZVOUS = (
    'touch "$1"; i=0; while [ ! -f "$2" ]; do i=$((i+1)); '
    '[ $i -gt 300 ] && exit 1; sleep 0.1; done; exit 0'
)


def test_two_shared_runs_overlap(zk_hosts: str, tmp_path: Path, spawn: Spawn) -> None:
    # Each child waits (up to 30 s) to see the other's marker while holding the
    # lock: both succeed only if both held it at once.
    a = spawn(zk_hosts, "run", "-s", "a", "sh", "-c", _RENDEZVOUS, "-", "A", "B", cwd=tmp_path)
    b = spawn(zk_hosts, "run", "-s", "a", "sh", "-c", _RENDEZVOUS, "-", "B", "A", cwd=tmp_path)
    assert a.wait(timeout=WAIT * 2) == 0
    assert b.wait(timeout=WAIT * 2) == 0


def test_exclusive_run_excludes_shared(zk_hosts: str, tmp_path: Path, spawn: Spawn) -> None:
    holder = spawn(zk_hosts, "run", "-x", "a", "sh", "-c", "touch held; sleep 30", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "held").exists(), "the exclusive holder to start")
    assert run_cli(zk_hosts, "run", "-s", "-n", "a", "true").returncode == 1
    assert run_cli(zk_hosts, "run", "-x", "-n", "a", "true").returncode == 1
    holder.send_signal(signal.SIGTERM)  # forwarded: sleep dies of it
    assert holder.wait(timeout=WAIT) == 128 + signal.SIGTERM
    assert run_cli(zk_hosts, "run", "-s", "-n", "a", "true").returncode == 0


def test_shared_holder_blocks_exclusive_only(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk:
        reader = Lock(zk, "a", kind=READ)
        assert reader.acquire()
        assert run_cli(zk_hosts, "run", "-s", "-n", "a", "true").returncode == 0
        assert run_cli(zk_hosts, "run", "-n", "a", "true").returncode == 1
        reader.release()


def test_max_holders_is_a_semaphore(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk:
        lease = Lock(zk, "gpu", kind=SEMAPHORE, max_leases=2)
        assert lease.acquire()
        assert run_cli(zk_hosts, "run", "--max-holders", "2", "-n", "gpu", "true").returncode == 0
        second = Lock(zk, "gpu", kind=SEMAPHORE, max_leases=2)
        assert second.acquire()
        assert run_cli(zk_hosts, "run", "--max-holders", "2", "-n", "gpu", "true").returncode == 1
        second.release()
        lease.release()


# -- signals and lock loss ------------------------------------------------------------


def test_sigterm_is_forwarded_to_the_child(zk_hosts: str, tmp_path: Path, spawn: Spawn) -> None:
    script = f'trap "echo got-TERM > trapped; exit 7" TERM; touch ready; {_LOOP}'
    proc = spawn(zk_hosts, "run", "a", "sh", "-c", script, cwd=tmp_path)
    wait_for(lambda: (tmp_path / "ready").exists(), "the child to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT) == 7  # the child's own status after its trap
    assert (tmp_path / "trapped").read_text().strip() == "got-TERM"
    assert run_cli(zk_hosts, "run", "-n", "a", "true").returncode == 0  # released


def test_sigterm_while_waiting_leaves_the_queue(zk_hosts: str, spawn: Spawn) -> None:
    with zkflock.connect(zk_hosts) as zk, zk.lock("a"):
        waiter = spawn(zk_hosts, "run", "a", "true")
        wait_for(lambda: len(zk.holders("a")) == 2, "the waiter to queue")
        waiter.send_signal(signal.SIGTERM)
        assert waiter.wait(timeout=WAIT) == 128 + signal.SIGTERM
        assert [h.state for h in zk.holders("a")] == ["holding"]


@pytest.mark.parametrize("ignores_term", [False, True])
def test_lock_loss_stops_the_child(zk_hosts: str, tmp_path: Path, spawn: Spawn,
                                   ignores_term: bool) -> None:
    # SIGSTOP the `zkflock run` process past its 1 s session timeout: ZooKeeper
    # expires the session and hands the lock on, while the child keeps running.
    # Once resumed, run must see the loss and stop the child: SIGTERM, and
    # SIGKILL after --grace when the child ignores SIGTERM.
    trap = "trap '' TERM" if ignores_term else 'trap "echo TERM >> term; exit 0" TERM'
    script = f'{trap}; touch ready; {_LOOP}'
    proc = spawn(zk_hosts, "run", "--grace", "0.5", "a", "sh", "-c", script, cwd=tmp_path,
                 env={"ZKFLOCK_SESSION_TIMEOUT": "1"})
    wait_for(lambda: (tmp_path / "ready").exists(), "the child to start")
    with zkflock.connect(zk_hosts) as zk:
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            # The ensemble gives the lock away while `run` is frozen.
            assert zk.lock("a").acquire(timeout=WAIT)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=WAIT) == EX_LOCK_LOST
    stderr = proc.communicate()[1]
    assert "was lost while the command ran" in stderr
    if ignores_term:
        assert "SIGKILL" in stderr
    else:
        assert (tmp_path / "term").read_text().strip() == "TERM"
