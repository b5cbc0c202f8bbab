"""Workers for the lock-family tests, run as ``python tests/_family_workers.py``,
and the pure checker the tests run over their shared log.

Every worker connects, waits for a start file (so all truly contend), then
for each round takes its lock, appends one ``enter`` record per name to an
O_APPEND log, optionally waits for company (other holders of the same name
inside at once), appends ``exit`` records and releases. One ``write()`` per
line on an O_APPEND descriptor: lines from several processes never
interleave and the file order is the order of the writes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

WORKER = os.path.abspath(__file__)
# What each kind is recorded as: exclusive-style kinds exclude everyone,
# readers exclude only "x", semaphore leases count against a limit.
RECORDED = {"exclusive": "x", "write": "x", "many": "x", "none": "x", "fake-write": "x",
            "read": "r", "semaphore": "s"}


def record(log: Path, lines: list[str]) -> None:
    for line in lines:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {line}\n".encode())
        finally:
            os.close(fd)


def read_log(log: Path) -> list[tuple[int, str, str, str]]:
    """(pid, enter|exit, recorded kind, name) in file order."""
    out = []
    for line in log.read_text().splitlines():
        pid, what, kind, name = line.split()
        out.append((int(pid), what, kind, name))
    return out


def check(log: Path, limit: int = 1) -> tuple[list[str], dict[str, int]]:
    """The overlap detector: (violations, most holders of each name at once).

    ``x`` excludes everyone, ``r`` shares with ``r`` only, ``s`` allows
    ``limit`` holders at once."""
    inside: dict[str, dict[int, str]] = {}
    most: dict[str, int] = {}
    problems = []
    for n, (pid, what, kind, name) in enumerate(read_log(log), start=1):
        here = inside.setdefault(name, {})
        if what == "exit":
            here.pop(pid, None)
            continue
        kinds = set(here.values())
        if (kind == "x" and here) or (kind == "r" and "x" in kinds) or (
            kind == "s" and len(here) >= limit
        ):
            problems.append(f"line {n}: {pid} entered {name} ({kind}) while {here} inside")
        here[pid] = kind
        most[name] = max(most.get(name, 0), len(here))
    return problems, most


def others_inside(log: Path, name: str) -> int:
    inside: set[int] = set()
    for pid, what, _kind, nm in read_log(log):
        if nm == name:
            (inside.add if what == "enter" else inside.discard)(pid)
    inside.discard(os.getpid())
    return len(inside)


@contextmanager
def _taken(zk: object, args: argparse.Namespace, names: list[str]) -> Iterator[None]:
    from zkflock import Session

    assert isinstance(zk, Session)
    kind = args.kind
    if kind == "none":
        yield
        return
    lock = {
        "exclusive": lambda: zk.lock(names[0]),
        "write": lambda: zk.write_lock(names[0]),
        "read": lambda: zk.read_lock(names[0]),
        "fake-write": lambda: zk.read_lock(names[0]),  # the broken variant
        "semaphore": lambda: zk.semaphore(names[0], args.leases),
        "many": lambda: zk.lock_many(names),
    }[kind]()
    with lock:
        yield


def run(args: argparse.Namespace) -> int:
    import zkflock

    log = Path(args.log)
    names = args.names.split(",")
    recorded = RECORDED[args.kind]
    with zkflock.connect(args.hosts, session_timeout=10.0) as zk:
        Path(f"{args.go}.ready-{os.getpid()}").touch()
        while not Path(args.go).exists():
            time.sleep(0.01)
        for _ in range(args.rounds):
            with _taken(zk, args, names):
                record(log, [f"enter {recorded} {n}" for n in names])
                deadline = time.monotonic() + args.company_wait
                while (args.company and time.monotonic() < deadline
                       and others_inside(log, names[0]) < args.company):
                    time.sleep(0.01)
                time.sleep(args.hold)
                record(log, [f"exit {recorded} {n}" for n in names])
    return 0


class Spawner:
    """Starts workers and kills whatever is left at the end."""

    def __init__(self, tmp: Path, hosts: str) -> None:
        self.tmp, self.hosts = tmp, hosts
        self.log = tmp / "holds.log"
        self.go = tmp / "go"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, kind: str, names: str, rounds: int, **opts: object) -> None:
        n = len(self.procs)
        argv = [sys.executable, WORKER, "--hosts", self.hosts, "--kind", kind,
                "--names", names, "--rounds", str(rounds), "--log", str(self.log),
                "--go", str(self.go)]
        for key, value in opts.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        with open(self.tmp / f"worker-{n}.err", "wb") as err:
            self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err))

    def run_all(self, timeout: float = 90.0) -> None:
        """Start them all at once; fail unless each exits 0 within ``timeout``."""
        wait_until(
            lambda: len(list(self.tmp.glob("go.ready-*"))) == len(self.procs)
            or any(p.poll() is not None for p in self.procs),
            60, "workers to connect",
        )
        self.go.touch()
        deadline = time.monotonic() + timeout
        for n, proc in enumerate(self.procs):
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            err = (self.tmp / f"worker-{n}.err").read_text()
            assert code == 0, f"worker {n} exited {code}:\n{err}"

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate``; fail after ``timeout`` (a bound for waiting, not a timing)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--kind", choices=sorted(RECORDED), required=True)
    parser.add_argument("--names", required=True, help="comma-separated")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--leases", type=int, default=1)
    parser.add_argument("--company", type=int, default=0, help="wait for this many others")
    parser.add_argument("--company-wait", type=float, default=1.0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--go", required=True)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


# -- shared test helpers (imported by the family's test modules) ---------------


def watchers(server: object, chroot: str) -> dict[str, set[str]]:
    """Which sessions watch which paths under ``chroot``, from the server's
    ``wchp`` four-letter word (path, then one tab-indented session per line)."""
    text = server.four_letter(min(server.client_ports), "wchp")  # type: ignore[attr-defined]
    out: dict[str, set[str]] = {}
    path = ""
    for line in text.splitlines():
        if line.startswith("/"):
            path = line.strip()
        elif line.strip() and path.startswith(chroot + "/"):
            out.setdefault(path[len(chroot):], set()).add(line.strip())
    return out


def herd_problems(watch: dict[str, set[str]]) -> list[str]:
    """Paths watched by more than one session: a release there wakes a herd."""
    return [f"{path} watched by {len(s)} sessions" for path, s in watch.items() if len(s) > 1]


# -- fixtures shared by the family's test modules (import them by name) --------

import pytest  # noqa: E402 - only the tests need it, the workers above do not


@pytest.fixture
def family(tmp_path: Path, zk_hosts: str) -> Iterator[Spawner]:
    """A spawner of worker processes, all killed at the end."""
    spawner = Spawner(tmp_path, zk_hosts)
    yield spawner
    spawner.close()
