"""Code the tests run in child OS processes: ``python tests/_workers.py MODE ...``.

Modes:

- ``mutex``: repeatedly take the lock, append ``enter``/``exit`` records to a
  shared O_APPEND log, release. ``--no-lock`` skips the lock (the bypass that
  shows the overlap detector can fire). Tolerates connection trouble (for the
  ensemble test): a failed acquire is retried, a round counts only when done.
- ``hold``: take the lock, print ``held <token>``, then wait to be killed.

Also home of :func:`find_overlaps`, the detector the tests run over the log.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

WORKERS = os.path.abspath(__file__)


def record(log: Path, what: str, token: int) -> None:
    # One write() per line on an O_APPEND descriptor: lines from several
    # processes never interleave and their file order is their write order.
    line = f"{os.getpid()} {what} {token} {time.time():.6f}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_log(log: Path) -> list[tuple[int, str, int]]:
    out = []
    for line in log.read_text().splitlines():
        pid, what, token, _ = line.split()
        out.append((int(pid), what, int(token)))
    return out


def find_overlaps(log: Path) -> list[str]:
    """Every place where a process entered while another was inside."""
    inside: set[int] = set()
    problems = []
    for n, (pid, what, _token) in enumerate(read_log(log)):
        if what == "enter":
            if inside:
                problems.append(f"line {n + 1}: {pid} entered while {sorted(inside)} inside")
            inside.add(pid)
        else:
            inside.discard(pid)
    return problems


def entry_tokens(log: Path) -> list[int]:
    return [token for _pid, what, token in read_log(log) if what == "enter"]


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Spawner:
    """Starts workers as child processes and kills whatever is left at the end."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        n = len(self.procs)
        stderr = open(self._log_dir / f"worker-{n}.err", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, WORKERS, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        self.procs.append(proc)
        return proc

    def stderr(self, n: int) -> str:
        return (self._log_dir / f"worker-{n}.err").read_text()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.communicate(timeout=10)


def _wait_for(path: Path | None) -> None:
    # A start line: every worker has imported and connected before the first
    # round, so they truly contend.
    while path is not None and not path.exists():
        time.sleep(0.01)


def run_mutex(args: argparse.Namespace) -> int:
    import zkflock

    log = Path(args.log)
    if args.no_lock:
        _wait_for(args.go)
        for _ in range(args.rounds):
            record(log, "enter", 0)
            time.sleep(args.hold)
            record(log, "exit", 0)
            time.sleep(args.pause)
        return 0
    with zkflock.connect(args.hosts, root="/", session_timeout=args.session_timeout) as zk:
        lock = zk.lock(args.name)
        if args.ready:
            Path(args.ready).touch()
        _wait_for(args.go)
        done = 0
        while done < args.rounds:
            try:
                if not lock.acquire(timeout=args.acquire_timeout):
                    continue
            except zkflock.ZkflockError as exc:
                print(f"acquire failed, retrying: {exc}", file=sys.stderr, flush=True)
                time.sleep(0.1)
                continue
            try:
                lock.ensure_held()
            except zkflock.LockLostError as exc:
                print(f"lost before entering, retrying: {exc}", file=sys.stderr, flush=True)
                lock.release()
                continue
            record(log, "enter", lock.token)
            time.sleep(args.hold)
            record(log, "exit", lock.token)
            try:
                lock.release()
            except zkflock.ZkflockError as exc:
                print(f"release failed: {exc}", file=sys.stderr, flush=True)
            done += 1
            time.sleep(args.pause)
    print(f"done {done}", flush=True)
    return 0


def run_hold(args: argparse.Namespace) -> int:
    import zkflock

    zk = zkflock.connect(args.hosts, root="/", session_timeout=args.session_timeout)
    lock = zk.lock(args.name)
    lock.acquire()
    print(f"held {lock.token}", flush=True)
    while True:
        time.sleep(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["mutex", "hold"])
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--name", default="data/data.txt")
    parser.add_argument("--log")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.02)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--session-timeout", type=float, default=4.0)
    parser.add_argument("--acquire-timeout", type=float, default=30.0)
    parser.add_argument("--no-lock", action="store_true")
    parser.add_argument("--ready")
    parser.add_argument("--go", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "mutex":
        return run_mutex(args)
    return run_hold(args)


if __name__ == "__main__":
    sys.exit(main())
