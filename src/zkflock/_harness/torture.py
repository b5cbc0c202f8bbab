"""The torture run: the counter workload, a nemesis, and the checker.

Workers are separate processes (``python -m zkflock._harness.workload``) so faults hit
real processes: SIGKILL, SIGSTOP, and cut TCP paths. Each worker talks to
ZooKeeper through its own proxies, so one worker can be partitioned alone.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from zkflock._errors import ConfigError, ZkflockError
from zkflock._harness.check import Attempt, Verdict, check, parse_history
from zkflock._harness.nemesis import NEMESES, Nemesis, Target, mixed
from zkflock._harness.proxy import TcpProxy
from zkflock._server.local import LocalZooKeeper
from zkflock._session import Session

FILE_NAME = "counter.txt"
TICK_TIME = 200


@dataclass
class Outcome:
    """One torture run's result."""

    fault: str
    verdict: Verdict
    view_ok: bool
    strikes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.view_ok

    @property
    def struck(self) -> int:
        """How many faults really hit (a strike may find no holder)."""
        return sum(1 for s in self.strikes if "no holder" not in s and "failed" not in s)


class WorkerPool:
    """The workload processes, each with its history file and proxies."""

    def __init__(self, run_dir: Path, upstreams: list[tuple[str, int]], opts: dict[str, str],
                 duration: float) -> None:
        self._run_dir = run_dir
        self._upstreams = upstreams
        self._opts = opts
        self._deadline = time.monotonic() + duration
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._proxies: dict[int, list[TcpProxy]] = {}
        self._count = 0

    def start(self) -> None:
        proxies = [TcpProxy(u) for u in self._upstreams]
        history = self._run_dir / f"history-{self._count}.jsonl"
        self._count += 1
        args = [sys.executable, "-m", "zkflock._harness.workload",
                "--hosts", ",".join(p.address for p in proxies),
                "--history", str(history),
                "--duration", f"{max(0.0, self._deadline - time.monotonic()):.2f}"]
        for key, value in self._opts.items():
            args += [key] if value == "" else [key, value]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs[proc.pid] = proc
        self._proxies[proc.pid] = proxies

    def pids(self) -> set[int]:
        return {pid for pid, proc in self._procs.items() if proc.poll() is None}

    def replace(self, pid: int) -> None:
        self._procs[pid].wait(timeout=30)
        if time.monotonic() < self._deadline - 1:
            self.start()

    def proxies(self, pid: int) -> list[TcpProxy]:
        return self._proxies.get(pid, [])

    def stop(self, grace: float) -> None:
        """Wait for every worker to end (they stop at the deadline), then kill."""
        end = time.monotonic() + grace
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proxies in self._proxies.values():
            for proxy in proxies:
                proxy.close()

    def attempts(self) -> list[Attempt]:
        out: list[Attempt] = []
        for path in sorted(self._run_dir.glob("history-*.jsonl")):
            out += parse_history(path.read_text().splitlines())
        return out


def _upstreams(hosts: str) -> list[tuple[str, int]]:
    out = []
    for part in hosts.split("/", 1)[0].split(","):
        host, _, port = part.rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out


def _final(observer: Session, root: Path, unfenced: bool) -> tuple[int, bool]:
    """The counter's final value, and whether the plain view agrees with it."""
    view = root / FILE_NAME
    if unfenced:
        text = view.read_text() if view.exists() else ""
        return int(text.strip() or 0), True
    f = observer.shared_file(FILE_NAME)
    f.publish_view() if f.meta().version else None
    value = int(f.read().strip() or 0)
    shown = view.read_text() if view.exists() else ""
    return value, shown == f.read()


def torture(
    fault: str, *, clients: int = 4, duration: float = 20.0, unfenced: bool = False,
    hosts: str | None = None, pause: float = 0.02, session_timeout: float = 1.0,
    base_dir: Path | None = None,
) -> Outcome:
    """Run the workload under one nemesis (or ``all``) and check the histories."""
    nemesis = _nemesis(fault)
    if hosts and nemesis.needs_server:
        raise ConfigError(f"fault {fault!r} needs the local ZooKeeper; drop --hosts")
    run_dir = Path(tempfile.mkdtemp(prefix=f"torture-{fault}-", dir=base_dir))
    root = run_dir / "shared"
    root.mkdir()
    namespace = f"/zkflock-torture-{secrets.token_hex(4)}"
    with ExitStack() as stack:
        server = None
        if hosts is None:
            server = LocalZooKeeper(run_dir / "zk", nodes=3 if nemesis.ensemble else 1,
                                    tick_time=TICK_TIME, force_sync=False)
            stack.enter_context(server)
            hosts = server.hosts
        observer = stack.enter_context(Session(hosts, root=root, namespace=namespace,
                                               session_timeout=10.0, connect_timeout=30.0))
        opts = {"--root": str(root), "--name": FILE_NAME, "--pause": str(pause),
                "--namespace": namespace,
                "--session-timeout": str(session_timeout)}
        if unfenced:
            opts["--unfenced"] = ""
        pool = WorkerPool(run_dir, _upstreams(hosts), opts, duration)
        try:
            for _ in range(clients):
                pool.start()
            target = Target(server, observer, FILE_NAME, pool, session_timeout, pause)
            strikes = _strike_until(nemesis, target, time.monotonic() + duration - 1.0)
        finally:
            pool.stop(grace=duration + 60)
        observer.zk.wait_connected(30)
        final, view_ok = _final(observer, root, unfenced)
        return Outcome(fault, check(pool.attempts(), final), view_ok, strikes)
    raise AssertionError("unreachable")  # pragma: no cover


def _nemesis(fault: str) -> Nemesis:
    if fault == "all":
        return mixed(list(NEMESES))
    if fault == "none":
        return Nemesis("none", lambda target: "nothing", interval=1.0)
    if fault not in NEMESES:
        raise ConfigError(f"unknown fault {fault!r}: choose one of {', '.join(NEMESES)} or all")
    return NEMESES[fault]


def _strike_until(nemesis: Nemesis, target: Target, deadline: float) -> list[str]:
    strikes = []
    time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # let the workers start
    while time.monotonic() + nemesis.interval < deadline:
        time.sleep(nemesis.interval)
        try:
            strikes.append(nemesis.strike(target))
        except ZkflockError as exc:
            strikes.append(f"failed: {exc}")
    return strikes
