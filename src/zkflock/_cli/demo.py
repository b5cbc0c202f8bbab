"""``zkflock demo``: the seed scenario with a live view and a check of the result."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zkflock._harness.demo import check_demo_file, collect, start_clients, stop_clients
from zkflock._names import normalize_name
from zkflock._server.local import LocalZooKeeper
from zkflock._session import connect

_STYLES = {"holding": "bold green", "waiting": "yellow", "done": "dim", "error": "bold red"}


def register(group: click.Group) -> None:
    group.add_command(demo)


@click.command()
@click.option("--clients", type=click.IntRange(1, 64), default=3, show_default=True,
              help="How many client processes take turns.")
@click.option("--hosts", "demo_hosts", metavar="HOSTS",
              help="Use this ZooKeeper rather than starting a local one.")
@click.option("--file", "file_name", default="data/data.txt", show_default=True,
              help="The shared file (relative to --root); also the lock's name.")
@click.option("--hold", type=click.FloatRange(min=0), default=0.5, show_default=True,
              metavar="SECONDS", help="How long each client holds the lock after writing.")
@click.pass_context
def demo(ctx: click.Context, clients: int, demo_hosts: str | None, file_name: str,
         hold: float) -> None:
    """Clients in separate processes lock FILE in turn, each appending one line.

    Without --hosts (or ZKFLOCK_HOSTS) it starts a local ZooKeeper and stops it
    at the end. The file starts empty for the run; at the end it is printed
    and checked: one whole line per client, tokens strictly increasing.
    Exits 0 only if the check holds.
    """
    hosts = demo_hosts or getattr(ctx.obj, "hosts", None)
    root = Path(getattr(ctx.obj, "root", None) or os.getcwd()).absolute()
    file_name = normalize_name(file_name, str(root))
    console = Console()
    # SIGTERM ends the demo like Ctrl-C: clients and the local server are stopped.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with _zookeeper(hosts, console) as zk_hosts:
            code = run_demo(zk_hosts, root, file_name, clients, hold, console)
    finally:
        signal.signal(signal.SIGTERM, previous)
    ctx.exit(code)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


@contextlib.contextmanager
def _zookeeper(hosts: str | None, console: Console) -> Iterator[str]:
    if hosts:
        yield hosts
        return
    base = tempfile.mkdtemp(prefix="zkflock-demo-")
    try:
        zk = LocalZooKeeper(base)  # force_sync on: a demo of durable locking
        console.print(f"starting a local ZooKeeper in {base} ...")
        zk.start()
        try:
            console.print(f"ZooKeeper is serving at {zk.hosts} (stopped when the demo ends)")
            yield zk.hosts
        finally:
            zk.stop()
            console.print("local ZooKeeper stopped")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_demo(hosts: str, root: Path, file_name: str, clients: int, hold: float,
             console: Console) -> int:
    path = root / file_name
    with connect(hosts, root=root) as zk:
        shared = zk.shared_file(file_name)
        shared.write("")  # a fenced commit of its own: the run starts from an empty file
        shared.publish_view()
    console.print(f"{path} starts empty for this run; {clients} clients will each append a "
                  "line through a fenced commit")
    states: dict[int, dict[str, Any]] = {i: {"state": "starting"} for i in range(1, clients + 1)}
    procs, events = start_clients(hosts, root, file_name, clients, hold)
    try:
        timeout = 60.0 + clients * (hold + 5.0)
        if console.is_terminal:
            with Live(_view(file_name, states), console=console, refresh_per_second=10) as live:

                def show(index: int, report: dict[str, Any]) -> None:
                    states[index] = report
                    live.update(_view(file_name, states))

                problems = collect(procs, events, show, timeout)
        else:

            def show(index: int, report: dict[str, Any]) -> None:
                states[index] = report
                console.print(_plain(index, report), highlight=False)

            problems = collect(procs, events, show, timeout)
    finally:
        stop_clients(procs)
    reported = {i: int(r["token"]) for i, r in states.items() if "token" in r}
    return _finish(path, clients, reported, problems, console)


def _finish(path: Path, clients: int, reported: dict[int, int], problems: list[str],
            console: Console) -> int:
    # The plain view, exactly what `cat` shows: published after each commit.
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    console.rule(f"{path}")
    console.print(Text(text), end="")
    console.rule()
    problems = problems + check_demo_file(text, clients, reported)
    if problems:
        for problem in problems:
            console.print(Text(f"zkflock: error: {problem}", style="bold red"))
        console.print("the demo check FAILED; the file above shows what was written")
        return 1
    console.print(f"check passed: {clients} whole lines, one per client, "
                  "fencing tokens strictly increasing")
    return 0


def _plain(index: int, report: dict[str, Any]) -> str:
    extra = f" (token {report['token']})" if "token" in report else ""
    message = f": {report['message']}" if "message" in report else ""
    at = time.strftime("%H:%M:%S", time.localtime(report.get("at", time.time())))
    millis = int(report.get("at", 0) * 1000) % 1000
    return f"{at}.{millis:03d} client {index}: {report['state']}{extra}{message}"


def _view(file_name: str, states: dict[int, dict[str, Any]]) -> Group:
    holding = [i for i, r in states.items() if r["state"] == "holding"]
    waiting = [i for i, r in states.items() if r["state"] == "waiting"]
    head = Text(f"lock {file_name!r}: ")
    head.append(f"held by client {holding[0]}" if holding else "free", style="bold")
    if waiting:
        head.append(f"; waiting: {', '.join(f'client {i}' for i in waiting)}")
    table = Table(box=None, header_style="bold")
    for column in ("CLIENT", "STATE", "TOKEN"):
        table.add_column(column)
    for index, report in states.items():
        state = report["state"]
        table.add_row(f"client {index}", Text(state, style=_STYLES.get(state, "")),
                      str(report.get("token", "")))
    return Group(head, table)
