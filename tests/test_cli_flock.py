"""``zkflock run`` against the installed flock(1), case by case, side by side.

Each case runs the real ``flock`` (util-linux 2.38) on a file and ``zkflock
run`` on a ZooKeeper lock of the same name, with the same arguments, and
compares what a script sees: the exit code, whether stderr is silent, and
stdout. Then the cases where zkflock differs on purpose, each with its reason.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import zkflock
from zkflock._cli.flockargs import InfoRequest, RunArgs, RunUsageError, parse_run_args
from zkflock.cli import main

WAIT = 60.0

pytestmark = pytest.mark.skipif(shutil.which("flock") is None, reason="flock(1) not installed")


@dataclass(frozen=True)
class Seen:
    """What a script sees of one run."""

    code: int
    stdout: str
    stderr: str

    @property
    def silent(self) -> bool:
        return self.stderr == ""


def _seen(result: subprocess.CompletedProcess[str], prog: str) -> Seen:
    # flock's --verbose says how long getting the lock took: keep the words.
    stdout = re.sub(r"took \d+\.\d+ seconds", "took N seconds", result.stdout)
    return Seen(result.returncode, stdout.replace(f"{prog}: ", "PROG: "), result.stderr)


def run_flock(cwd: Path, args: list[str], env: dict[str, str] | None = None) -> Seen:
    result = subprocess.run(["flock", *args], capture_output=True, text=True, cwd=cwd,
                            timeout=WAIT, env={**os.environ, **(env or {})})
    return _seen(result, "flock")


def run_zkflock(hosts: str, cwd: Path, args: list[str],
                env: dict[str, str] | None = None) -> Seen:
    """``zkflock run ARGS`` in a process of its own, as a script runs it."""
    result = subprocess.run([sys.executable, "-m", "zkflock", "--hosts", hosts, "run", *args],
                            capture_output=True, text=True, cwd=cwd, timeout=WAIT,
                            env={**os.environ, **(env or {})})
    return _seen(result, "zkflock")


def run_zkflock_here(hosts: str, cwd: Path, args: list[str]) -> Seen:
    """The same command run in this process (click's CliRunner): the same code,
    the same ZooKeeper and child processes, without an interpreter start per
    case. Only for cases whose COMMAND prints nothing: a child writes to the
    real file descriptors, which CliRunner does not capture."""
    old = Path.cwd()
    # The command configures the 'zkflock' and 'kazoo' loggers for a process
    # of its own: put them back for the other tests.
    loggers = [logging.getLogger(name) for name in ("zkflock", "kazoo")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["--hosts", hosts, "run", *args])
    finally:
        os.chdir(old)
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
    completed = subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
    return _seen(completed, "zkflock")


def quiet(args: list[str]) -> bool:
    """True when COMMAND prints nothing (or there is no COMMAND to run)."""
    return "echo" not in " ".join(args)


# -- the same behaviour: exit code, silence, stdout -------------------------------------

SAME = [
    ["L", "true"],
    ["L", "sh", "-c", "exit 3"],
    ["L", "sh", "-c", "kill -TERM $$"],                     # 128 + 15
    ["L", "-c", "echo hi; exit 5"],
    ["L", "--command", "echo hi"],
    ["--", "L", "echo", "after --"],
    ["L", "echo", "-n", "-x", "--verbose"],                  # options after LOCK are COMMAND's
    ["-s", "L", "true"], ["--shared", "L", "true"], ["--sh", "L", "true"],
    ["-x", "L", "true"], ["-e", "L", "true"], ["--exclusive", "L", "true"], ["--ex", "L", "true"],
    ["-s", "-x", "L", "true"],
    ["-n", "L", "true"], ["--nb", "L", "true"], ["--nonblocking", "L", "true"],
    ["--nonblock", "L", "true"], ["--nonb", "L", "true"],
    ["-w", "5", "L", "true"], ["-w5", "L", "true"], ["--wait=5", "L", "true"],
    ["--timeout", "5", "L", "true"], ["--ti", "2.5", "L", "true"], ["-w", "0", "L", "true"],
    ["-E", "7", "L", "true"], ["-nE", "7", "L", "sh", "-c", "exit 2"],
    ["--conflict-exit-code", "9", "L", "true"], ["--conf=9", "L", "true"],
    ["--verbose", "L", "echo", "x"], ["--verb", "L", "-c", "true"],
    ["-V"], ["--version"], ["-h"], ["--help"],
]

USAGE_ERRORS = [
    [], ["L"], ["-n"], ["L", "-c"], ["L", "-c", "a", "b"], ["L", "--command"],
    ["-E", "300", "L", "true"], ["-E", "-1", "L", "true"], ["-E", "abc", "L", "true"],
    ["-w", "abc", "L", "true"], ["-w"], ["-q", "L", "true"], ["--bogus", "L", "true"],
    ["--no", "L", "true"], ["--ve", "L", "true"], ["--nb=1", "L", "true"],
    ["-c"],
]


def _normal(seen: Seen, args: list[str]) -> Seen:
    """Help and version texts are each program's own: compare only that they go
    to stdout with exit 0 and nothing on stderr."""
    if args and args[0] in ("-h", "--help", "-V", "--version"):
        return Seen(seen.code, "TEXT" if seen.stdout else "", seen.stderr)
    if args and args[0].startswith("--verb"):
        # flock's verbose lines sit in its stdio buffer while COMMAND runs, so
        # on a pipe they come after COMMAND's output; zkflock flushes them first.
        return Seen(seen.code, "".join(sorted(seen.stdout.splitlines(keepends=True))),
                    seen.stderr)
    return seen


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_same_as_flock(zk_hosts: str, tmp_path: Path, args: list[str]) -> None:
    theirs = _normal(run_flock(tmp_path, args), args)
    runner = run_zkflock_here if quiet(args) else run_zkflock
    ours = _normal(runner(zk_hosts, tmp_path, args), args)
    assert ours == theirs


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a) or "(none)")
def test_usage_errors_as_flock(zk_hosts: str, tmp_path: Path, args: list[str]) -> None:
    theirs = run_flock(tmp_path, args)
    ours = run_zkflock_here(zk_hosts, tmp_path, args)
    assert (ours.code, ours.stdout) == (theirs.code, theirs.stdout) == (64, "")
    assert ours.stderr.startswith("zkflock: ")
    assert not theirs.silent


def test_command_not_found_is_69_as_flock(zk_hosts: str, tmp_path: Path) -> None:
    args = ["L", "/nonexistent/zkflock-cmd"]
    theirs, ours = run_flock(tmp_path, args), run_zkflock(zk_hosts, tmp_path, args)
    assert ours.code == theirs.code == 69
    assert not ours.silent
    assert not theirs.silent


@pytest.mark.parametrize("shell", ["/bin/bash", ""])
def test_c_runs_dollar_shell_as_flock(zk_hosts: str, tmp_path: Path, shell: str) -> None:
    # bash sets BASH_VERSION, dash (/bin/sh) does not: an empty SHELL means /bin/sh.
    args = ["L", "-c", 'echo "bash=${BASH_VERSION:+yes}"']
    theirs = run_flock(tmp_path, args, env={"SHELL": shell})
    ours = run_zkflock(zk_hosts, tmp_path, args, env={"SHELL": shell})
    assert ours == theirs
    assert ours.stdout == ("bash=yes\n" if shell else "bash=\n")


# -- conflicts: the -E code, silent unless --verbose -------------------------------------

CONFLICTS = [
    ["-n", "L", "true"], ["--nb", "-E", "42", "L", "true"], ["-w", "0.3", "L", "true"],
    ["-w", "0", "L", "true"], ["-s", "-n", "L", "true"], ["-n", "L", "-c", "echo ran"],
]


@pytest.fixture
def both_held(zk_hosts: str, tmp_path: Path) -> Iterator[None]:
    """LOCK held in both worlds: flock(2) on the file, zkflock in ZooKeeper."""
    with open(tmp_path / "L", "w") as f, zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        fcntl.flock(f, fcntl.LOCK_EX)
        with zk.lock("L"):
            yield


@pytest.mark.parametrize("args", CONFLICTS, ids=" ".join)
def test_conflict_is_silent_as_flock(zk_hosts: str, tmp_path: Path, both_held: None,
                                     args: list[str]) -> None:
    theirs = run_flock(tmp_path, args)
    ours = (run_zkflock_here if quiet(args) else run_zkflock)(zk_hosts, tmp_path, args)
    assert ours == theirs
    assert ours.silent
    assert ours.code == (42 if "42" in args else 1)


@pytest.mark.parametrize(("args", "words"), [
    (["--verbose", "-n", "L", "true"], "failed to get lock"),
    (["--verbose", "-w", "0.3", "L", "true"], "timeout while waiting to get lock"),
])
def test_verbose_conflict_says_why_as_flock(zk_hosts: str, tmp_path: Path, both_held: None,
                                            args: list[str], words: str) -> None:
    theirs = run_flock(tmp_path, args)
    ours = run_zkflock_here(zk_hosts, tmp_path, args)
    assert (ours.code, ours.stdout) == (theirs.code, theirs.stdout) == (1, "")
    assert theirs.stderr.startswith(f"flock: {words}")
    assert ours.stderr.startswith(f"zkflock: {words}")


# -- where zkflock differs on purpose ------------------------------------------------------


@pytest.mark.parametrize(("args", "why"), [
    (["-u", "L", "touch", "ran"], "no lock to drop early"),
    (["--unlock", "L", "touch", "ran"], "no lock to drop early"),
    (["-o", "L", "touch", "ran"], "no file descriptor"),
    (["--close", "L", "touch", "ran"], "no file descriptor"),
    (["-F", "L", "touch", "ran"], "always forks"),
    (["--no-f", "L", "touch", "ran"], "always forks"),
    (["7"], "file-descriptor form"),
])
def test_what_cannot_apply_is_refused_with_the_reason(zk_hosts: str, tmp_path: Path,
                                                      args: list[str], why: str) -> None:
    ours = run_zkflock_here(zk_hosts, tmp_path, args)
    assert ours.code == 64
    assert why in ours.stderr
    assert not (tmp_path / "ran").exists()


def test_dash_dash_after_lock_ends_options(zk_hosts: str, tmp_path: Path) -> None:
    # flock would execute a program named '--' (exit 69); zkflock's documented
    # form is 'zkflock run LOCK -- COMMAND', so '--' there is dropped.
    assert run_flock(tmp_path, ["L", "--", "true"]).code == 69
    ours = run_zkflock(zk_hosts, tmp_path, ["L", "--", "sh", "-c", "exit 4"])
    assert (ours.code, ours.stderr) == (4, "")


def test_c_before_lock_is_accepted(zk_hosts: str, tmp_path: Path) -> None:
    # flock accepts -c only after LOCK; zkflock also before it (it always did).
    assert run_flock(tmp_path, ["-c", "exit 5", "L"]).code == 64
    assert run_zkflock(zk_hosts, tmp_path, ["-c", "exit 5", "L"]).code == 5


# -- the parser, pure ----------------------------------------------------------------------


def test_parser_reads_flock_forms() -> None:
    env = {"SHELL": "/bin/zsh"}
    parsed = parse_run_args(["-sn", "-w", "2", "--verb", "a", "-c", "echo x"], env)
    assert parsed == RunArgs(lock="a", argv=("/bin/zsh", "-c", "echo x"), shared=True,
                             nonblock=True, timeout=2.0, verbose=True)
    assert parsed.wait == 0.0  # -n wins over -w, as in flock
    assert parse_run_args(["-w", "0", "a", "x"], env).wait == 0.0  # type: ignore[union-attr]
    assert parse_run_args(["a", "x", "-n"], env) == RunArgs(lock="a", argv=("x", "-n"))
    assert parse_run_args(["--max-h", "3", "a", "x"], env) == RunArgs(
        lock="a", argv=("x",), max_holders=3)
    assert parse_run_args(["-n", "--help", "a"], env) == InfoRequest("help")
    with pytest.raises(RunUsageError, match="ambiguous; possibilities: '--nonblocking' "
                                            "'--no-fork'"):
        parse_run_args(["--no", "a", "x"], env)
    with pytest.raises(RunUsageError, match="--max-holders"):
        parse_run_args(["--max-holders", "0", "a", "x"], env)
