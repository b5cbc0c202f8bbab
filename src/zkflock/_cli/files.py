"""``zkflock append`` (TEXT or standard input), ``zkflock cat`` and ``zkflock torture``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from zkflock._session import Session

if TYPE_CHECKING:
    from zkflock._files.shared_file import SharedFile
    from zkflock._harness.torture import Outcome


def register(group: click.Group) -> None:
    group.add_command(append)
    group.add_command(cat)
    group.add_command(torture_command)


def _session(ctx: click.Context) -> Session:
    obj = ctx.obj
    return Session(obj.hosts, root=obj.root)


_CHUNK = 1 << 20


@click.command()
@click.argument("file")
@click.argument("text")
@click.option("-w", "--timeout", type=float, default=None, help="Seconds to wait for the lock.")
@click.option("-n", "--no-newline", is_flag=True, help="Do not add a newline to TEXT.")
@click.pass_context
def append(ctx: click.Context, file: str, text: str, timeout: float | None,
           no_newline: bool) -> None:
    """Append TEXT (or, for '-', standard input) to the fenced FILE: lock,
    fenced commit, release. Standard input is appended as it is, in one commit."""
    with _session(ctx) as zk:
        shared = zk.shared_file(file)
        if text == "-":
            version, token = _append_stdin(shared, timeout)
        else:
            meta = shared.append(text if no_newline else text + "\n", timeout=timeout)
            version, token = meta.version, meta.token
    if ctx.obj.json:
        click.echo(json.dumps({"file": file, "version": version, "token": token}))
    elif ctx.obj.verbose:
        click.echo(f"{file}: version {version} (token {token})", err=True)


def _append_stdin(shared: SharedFile, timeout: float | None) -> tuple[int, int]:
    """Stream standard input onto a working copy, chunk by chunk (bounded
    memory here), and commit it once: a reader sees all of it or none."""
    with shared.working_copy(timeout=timeout, purpose=f"append - {shared.name}") as copy:
        with open(copy.path, "ab") as out:
            while chunk := sys.stdin.buffer.read(_CHUNK):
                out.write(chunk)
        token = copy.token
    return shared.meta().version, token


@click.command()
@click.argument("file")
@click.pass_context
def cat(ctx: click.Context, file: str) -> None:
    """Print the latest committed content of the fenced FILE, checksum-verified."""
    with _session(ctx) as zk:
        data = zk.shared_file(file).read_bytes()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@click.command("torture")
@click.option("--nemesis", "faults", default="all", show_default=True,
              help="kill, pause, restart, leader, partition, all (each in turn, then "
                   "together), or a comma-separated list.")
@click.option("--clients", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--duration", type=float, default=30.0, show_default=True,
              help="Seconds per fault.")
@click.option("--unfenced", is_flag=True,
              help="The negative control: a plain lock and direct writes (expected to lose).")
@click.option("--pause", type=float, default=None,
              help="Seconds each critical section sleeps (default 0.02; 0.2 with --unfenced).")
@click.pass_context
def torture_command(ctx: click.Context, faults: str, clients: int, duration: float,
                    unfenced: bool, pause: float | None) -> None:
    """Run the counter workload under faults and check every acknowledged increment."""
    from zkflock._harness.nemesis import NEMESES
    from zkflock._harness.torture import torture

    names = [*NEMESES, "all"] if faults == "all" else faults.split(",")
    hosts = ctx.obj.hosts
    if hosts:
        names = [n for n in names if n in ("kill", "pause", "partition")]
    outcomes = []
    for name in names:
        outcomes.append(torture(
            name, clients=clients, duration=duration, unfenced=unfenced, hosts=hosts,
            pause=pause if pause is not None else (0.2 if unfenced else 0.02),
        ))
    _show(ctx, outcomes, unfenced)
    passed = all(o.ok for o in outcomes)
    ctx.exit(0 if passed else 1)


def _show(ctx: click.Context, outcomes: list[Outcome], unfenced: bool) -> None:
    if ctx.obj.json:
        click.echo(json.dumps([{"fault": o.fault, "faults_hit": o.struck, **o.verdict.as_dict(),
                                "view_ok": o.view_ok}
                               for o in outcomes]))
        return
    from rich.table import Table

    from zkflock._cli.console import output_console

    title = "zkflock torture" + (" (UNFENCED control)" if unfenced else "")
    table = Table(title=title)
    for column in ("fault", "faults hit", "attempted", "acknowledged", "final", "lost",
                   "duplicated", "verdict"):
        table.add_column(column, justify="left" if column == "fault" else "right")
    for o in outcomes:
        v = o.verdict
        verdict = "[green]PASS[/]" if o.ok else "[red]FAIL[/]"
        if not o.view_ok:
            verdict += " (view differs)"
        table.add_row(o.fault, str(o.struck), str(v.attempted), str(v.acknowledged), str(v.final),
                      str(v.lost), str(v.duplicated), verdict)
    output_console().print(table)
