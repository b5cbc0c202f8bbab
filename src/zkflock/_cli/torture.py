"""``zkflock torture``: the counter workload under faults, checked."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from zkflock._harness.torture import Outcome, SharedMounts


def register(group: click.Group) -> None:
    group.add_command(torture_command)


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
@click.option("--shared-volume", is_flag=True,
              help="On a GlusterFS volume mounted three times (needs root and GlusterFS): "
                   "writers on mounts 1 and 2 in turn, readers on mount 2 and on mount 3, "
                   "which caches failed lookups for 2 s.")
@click.pass_context
def torture_command(ctx: click.Context, faults: str, clients: int, duration: float,
                    unfenced: bool, pause: float | None, shared_volume: bool) -> None:
    """Run the counter workload under faults and check every acknowledged increment."""
    from zkflock._harness.nemesis import NEMESES
    from zkflock._harness.torture import torture

    names = [*NEMESES, "all"] if faults == "all" else faults.split(",")
    hosts = ctx.obj.hosts
    if hosts:
        names = [n for n in names if n in ("kill", "pause", "partition")]
    outcomes = []
    with _mounts(shared_volume) as mounts:
        for name in names:
            outcomes.append(torture(
                name, clients=clients, duration=duration, unfenced=unfenced, hosts=hosts,
                pause=pause if pause is not None else (0.2 if unfenced else 0.02),
                mounts=mounts,
            ))
    _show(ctx, outcomes, unfenced)
    for o in outcomes:
        if o.kept is not None and not ctx.obj.json:
            click.echo(f"{o.fault}: the run folder (histories, server logs) is kept: {o.kept}",
                       err=True)
    passed = all(o.ok for o in outcomes)
    ctx.exit(0 if passed else 1)


@contextmanager
def _mounts(shared_volume: bool) -> Iterator[SharedMounts | None]:
    if not shared_volume:
        yield None
        return
    from zkflock._harness.sharedfs import GlusterVolume
    from zkflock._harness.torture import SharedMounts

    with tempfile.TemporaryDirectory(prefix="zkflock-shared-") as base, \
            GlusterVolume(Path(base), mounts=("", "", "negative-timeout=2")) as volume:
        a, b, cached = volume.mounts
        yield SharedMounts(writers=(a, b), readers=(b, cached))


def _show(ctx: click.Context, outcomes: list[Outcome], unfenced: bool) -> None:
    if ctx.obj.json:
        click.echo(json.dumps([_as_dict(o) for o in outcomes]))
        return
    from rich.table import Table

    from zkflock._cli.console import output_console

    shared = any(o.reads is not None or o.views for o in outcomes)
    title = "zkflock torture" + (" (UNFENCED control)" if unfenced else "") + (
        " on a GlusterFS volume mounted 3 times" if shared else "")
    table = Table(title=title)
    columns = ["fault", "faults hit", "attempted", "acknowledged", "final", "lost",
               "duplicated"]
    if shared:
        columns += ["writer errors", "reads", "reader errors", "backwards", "views at final"]
    for column in [*columns, "verdict"]:
        table.add_column(column, justify="left" if column == "fault" else "right")
    for o in outcomes:
        v = o.verdict
        verdict = "[green]PASS[/]" if o.ok else "[red]FAIL[/]"
        if not o.view_ok:
            verdict += " (view differs)"
        row = [o.fault, str(o.struck), str(v.attempted), str(v.acknowledged), str(v.final),
               str(v.lost), str(v.duplicated)]
        if shared:
            r = o.reads
            at_final = sum(1 for text in o.views.values() if text.strip() == str(v.final))
            row += [str(v.misreported), *(["-"] * 3 if r is None else
                                          [str(r.reads), str(r.errors), str(r.backwards)]),
                    f"{at_final}/{len(o.views)}"]
        table.add_row(*row, verdict)
    output_console().print(table)


def _as_dict(o: Outcome) -> dict[str, object]:
    out: dict[str, object] = {"fault": o.fault, "faults_hit": o.struck, **o.verdict.as_dict(),
                              "view_ok": o.view_ok}
    if o.reads is not None:
        out["reads"] = o.reads.as_dict()
    if o.views:
        out["views"] = o.views
    if o.kept is not None:
        out["kept"] = str(o.kept)
    return out
