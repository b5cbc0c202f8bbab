"""The torture run: the counter workload, a nemesis, and the checker.

Workers are separate processes (``python -m zkflock._harness.workload``) so faults hit
real processes: SIGKILL, SIGSTOP, and cut TCP paths. Each worker talks to
ZooKeeper through its own proxies, so one worker can be partitioned alone.

On a shared volume (``SharedMounts``: one volume mounted several times, as
hosts mount it) the writers take the writer mounts in turn, a reader process
on each reader mount calls ``read()`` in a loop, and at the end the plain
view must show the final version on every mount by itself (nobody
republishes it): the caches of the other mounts may lag, never for good.
"""

from __future__ import annotations

import dataclasses
import errno
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from zkflock._errors import ConfigError, ZkflockError
from zkflock._harness.check import (
    Attempt,
    Read,
    ReadVerdict,
    Verdict,
    check,
    check_reads,
    parse_history,
    parse_reads,
)
from zkflock._harness.nemesis import NEMESES, Nemesis, Target, mixed
from zkflock._harness.proxy import ZkProxy
from zkflock._server.local import LocalZooKeeper
from zkflock._session import Session

FILE_NAME = "counter.txt"
TICK_TIME = 200
VIEW_WAIT = 15.0  # seconds a mount's caches may take to show the final view


@dataclass(frozen=True)
class SharedMounts:
    """Mount points of one shared volume: writer ``i`` works on
    ``writers[i % len(writers)]``; one reader runs on each of ``readers``."""

    writers: tuple[Path, ...]
    readers: tuple[Path, ...] = ()


@dataclass
class Outcome:
    """One torture run's result."""

    fault: str
    verdict: Verdict
    view_ok: bool
    strikes: list[str] = field(default_factory=list)
    reads: ReadVerdict | None = None  # the readers' verdict (shared-volume runs)
    views: dict[str, str] = field(default_factory=dict)  # mount -> what its view shows
    kept: Path | None = None  # the run folder (histories, server logs), kept when unexpected

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.view_ok and (self.reads is None or self.reads.ok)

    @property
    def struck(self) -> int:
        """How many faults really hit (a strike may find no holder)."""
        return sum(1 for s in self.strikes if "no holder" not in s and "failed" not in s)


class WorkerPool:
    """The workload processes, each with its history file and proxies."""

    def __init__(self, run_dir: Path, upstreams: list[tuple[str, int]], opts: dict[str, str],
                 duration: float, roots: list[Path]) -> None:
        self._run_dir = run_dir
        self._upstreams = upstreams
        self._opts = opts
        self._roots = roots
        self._deadline = time.monotonic() + duration
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._proxies: dict[int, list[ZkProxy]] = {}
        self._root_of: dict[int, Path] = {}
        self._readers: list[subprocess.Popen[bytes]] = []
        self._count = 0

    def start(self, root: Path | None = None) -> None:
        """Start a writer, on ``root`` or on the next root in turn."""
        root = root or self._roots[self._count % len(self._roots)]
        proc = self._spawn(root, f"history-{self._count}.jsonl", [])
        self._root_of[proc.pid] = root
        self._count += 1

    def start_reader(self, root: Path) -> None:
        self._readers.append(self._spawn(root, f"reads-{len(self._readers)}.jsonl",
                                         ["--reader"]))

    def _spawn(self, root: Path, history: str, extra: list[str]) -> subprocess.Popen[bytes]:
        proxies = [ZkProxy(u) for u in self._upstreams]
        args = [sys.executable, "-m", "zkflock._harness.workload",
                "--hosts", ",".join(p.address for p in proxies), "--root", str(root),
                "--history", str(self._run_dir / history),
                "--duration", f"{max(0.0, self._deadline - time.monotonic()):.2f}", *extra]
        for key, value in self._opts.items():
            args += [key] if value == "" else [key, value]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs[proc.pid] = proc
        self._proxies[proc.pid] = proxies
        return proc

    def pids(self) -> set[int]:
        """The writers alive now (readers are never struck: they hold no lock)."""
        return {pid for pid in self._root_of if self._procs[pid].poll() is None}

    def replace(self, pid: int) -> None:
        self._procs[pid].wait(timeout=30)
        if time.monotonic() < self._deadline - 1:
            self.start(self._root_of[pid])

    def proxies(self, pid: int) -> list[ZkProxy]:
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

    def reads(self) -> list[list[Read]]:
        return [parse_reads(path.read_text().splitlines())
                for path in sorted(self._run_dir.glob("reads-*.jsonl"))]


def _upstreams(hosts: str) -> list[tuple[str, int]]:
    out = []
    for part in hosts.split("/", 1)[0].split(","):
        host, _, port = part.rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out


def _final(observer: Session, root: Path, unfenced: bool) -> tuple[int, bool]:
    """The counter's final value, and whether the plain view agrees with it
    (after republishing it: a writer killed between its commit and its
    publish leaves the view behind until the next commit publishes)."""
    view = root / FILE_NAME
    if unfenced:
        text = view.read_text() if view.exists() else ""
        return int(text.strip() or 0), True
    f = observer.shared_file(FILE_NAME)
    f.publish_view() if f.meta().version else None
    value = int(f.read().strip() or 0)
    shown = view.read_text() if view.exists() else ""
    return value, shown == f.read()


STALE = "<ESTALE>"  # what a mount whose cached handle went stale shows for now


def _shown(view: Path) -> str:
    try:
        return view.read_text()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno != errno.ESTALE:
            raise
        return STALE  # the next look resolves the name afresh


def settled_views(roots: list[Path], expected: str | None,
                  wait: float = VIEW_WAIT) -> dict[str, str]:
    """What the plain view shows on each mount once it shows ``expected``
    everywhere (or, for ``None``, the same text everywhere), or when
    ``wait`` ran out: other mounts' caches show a replaced name's old
    content for a second or so, or fail with ESTALE once (SHAREDFS.md)."""
    deadline = time.monotonic() + wait
    while True:
        shown = {str(root): _shown(root / FILE_NAME) for root in roots}
        target = expected if expected is not None else shown[str(roots[0])]
        settled = target != STALE and all(text == target for text in shown.values())
        if settled or time.monotonic() > deadline:
            return shown
        time.sleep(0.1)


def _final_shared(observer: Session, roots: list[Path],
                  unfenced: bool) -> tuple[int, bool, dict[str, str]]:
    """Like ``_final`` on a shared volume, but nobody republishes the view:
    the writers' own publishing must leave the final version on every mount."""
    if unfenced:
        shown = settled_views(roots, None)
        texts = [t.strip() for t in shown.values() if t.strip().isdigit()]
        return int(texts[0]) if texts else 0, True, shown
    text = observer.shared_file(FILE_NAME).read()
    shown = settled_views(roots, text)
    return int(text.strip() or 0), all(v == text for v in shown.values()), shown


def _roots(run_dir: Path, mounts: SharedMounts | None) -> tuple[list[Path], list[Path]]:
    """The shared root as each writer and each reader sees it."""
    if mounts is None:
        root = run_dir / "shared"
        root.mkdir()
        return [root], []
    name = run_dir.name
    (mounts.writers[0] / name).mkdir()
    return [m / name for m in mounts.writers], [m / name for m in mounts.readers]


def torture(
    fault: str, *, clients: int = 4, duration: float = 20.0, unfenced: bool = False,
    hosts: str | None = None, pause: float = 0.02, session_timeout: float = 1.0,
    base_dir: Path | None = None, mounts: SharedMounts | None = None,
) -> Outcome:
    """Run the workload under one nemesis (or ``all``) and check the histories;
    with ``mounts``, on a shared volume mounted several times.

    The run folder (histories, the server's data and logs) goes under
    ``base_dir`` (kept: the caller owns it), else under the temp directory,
    where it is removed after a run with the expected outcome (a fenced run
    that passed, a control that lost) and kept otherwise (``Outcome.kept``,
    or a note on the exception)."""
    nemesis = _nemesis(fault)
    if hosts and nemesis.needs_server:
        raise ConfigError(f"fault {fault!r} needs the local ZooKeeper; drop --hosts")
    run_dir = Path(tempfile.mkdtemp(prefix=f"torture-{fault}-", dir=base_dir))
    try:
        outcome = _run(fault, nemesis, run_dir, clients, duration, unfenced, hosts, pause,
                       session_timeout, mounts)
    except BaseException as exc:
        exc.add_note(f"zkflock torture: the run folder is kept: {run_dir}")
        raise
    if base_dir is not None:
        return outcome
    if outcome.ok != unfenced:
        shutil.rmtree(run_dir, ignore_errors=True)
        return outcome
    return dataclasses.replace(outcome, kept=run_dir)


def _run(fault: str, nemesis: Nemesis, run_dir: Path, clients: int, duration: float,
         unfenced: bool, hosts: str | None, pause: float, session_timeout: float,
         mounts: SharedMounts | None) -> Outcome:
    roots, reader_roots = _roots(run_dir, mounts)
    namespace = f"/zkflock-torture-{secrets.token_hex(4)}"
    with ExitStack() as stack:
        server = None
        if hosts is None:
            server = LocalZooKeeper(run_dir / "zk", nodes=3 if nemesis.ensemble else 1,
                                    tick_time=TICK_TIME, force_sync=False)
            stack.enter_context(server)
            hosts = server.hosts
        observer = stack.enter_context(Session(hosts, root=roots[0], namespace=namespace,
                                               session_timeout=10.0, connect_timeout=30.0))
        opts = {"--name": FILE_NAME, "--pause": str(pause), "--namespace": namespace,
                "--session-timeout": str(session_timeout)}
        if unfenced:
            opts["--unfenced"] = ""
        pool = WorkerPool(run_dir, _upstreams(hosts), opts, duration, roots)
        try:
            for _ in range(clients):
                pool.start()
            for root in reader_roots if not unfenced else []:
                pool.start_reader(root)
            target = Target(server, observer, FILE_NAME, pool, session_timeout, pause)
            strikes = _strike_until(nemesis, target, time.monotonic() + duration - 1.0)
        finally:
            pool.stop(grace=duration + 60)
        observer.zk.wait_connected(30)
        if mounts is None:
            final, view_ok = _final(observer, roots[0], unfenced)
            return Outcome(fault, check(pool.attempts(), final), view_ok, strikes)
        every_mount = list(dict.fromkeys(roots + reader_roots))
        final, view_ok, views = _final_shared(observer, every_mount, unfenced)
        reads = check_reads(pool.reads()) if reader_roots and not unfenced else None
        return Outcome(fault, check(pool.attempts(), final), view_ok, strikes, reads, views)
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
