"""``zkflock server start|stop|status``: a local ZooKeeper running in the background."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zkflock._server.local import LocalZooKeeper

DEFAULT_DIR = Path(".zkflock") / "server"

_dir_option = click.option(
    "--dir", "base_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
    show_default=True, help="Folder for the servers' data, logs and state.",
)


def register(group: click.Group) -> None:
    group.add_command(server)


@click.group()
def server() -> None:
    """A local ZooKeeper (standalone or ensemble) for the demo and tests."""


def _running(base_dir: Path) -> LocalZooKeeper | None:
    zk = LocalZooKeeper.load(base_dir)
    if zk is None or not any(zk.is_running(m) for m in range(1, zk.nodes + 1)):
        return None
    return zk


def _describe(zk: LocalZooKeeper) -> str:
    kind = "standalone" if zk.nodes == 1 else f"{zk.nodes}-node ensemble"
    return f"ZooKeeper running ({kind}): hosts {zk.hosts}\nexport ZKFLOCK_HOSTS={zk.hosts}"


@server.command()
@_dir_option
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="1 for a standalone server, 3 or 5 for an ensemble.")
@click.option("--tick-time", type=click.IntRange(min=1), default=500, show_default=True,
              help="ZooKeeper's tickTime in ms (sessions may last 2 to 120 ticks).")
@click.option("--no-force-sync", is_flag=True, help="Do not fsync the transaction log.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the servers to be ready.")
def start(base_dir: Path, nodes: int, tick_time: int, no_force_sync: bool, timeout: float) -> None:
    """Start ZooKeeper in the background and print its hosts."""
    zk = _running(base_dir)
    if zk is not None:
        click.echo(f"already running in {base_dir}")
    else:
        zk = LocalZooKeeper(base_dir, nodes=nodes, tick_time=tick_time,
                            force_sync=not no_force_sync)
        zk.start(timeout, background=True)
        zk.save_state()
    click.echo(_describe(zk))


@server.command()
@_dir_option
def stop(base_dir: Path) -> None:
    """Stop the ZooKeeper started by 'zkflock server start'."""
    zk = LocalZooKeeper.load(base_dir)
    if zk is None:
        click.echo(f"ZooKeeper is not running in {base_dir}")
        return
    zk.stop()
    (base_dir / "state.json").unlink(missing_ok=True)
    click.echo("ZooKeeper stopped")


@server.command()
@_dir_option
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, base_dir: Path, json_output: bool) -> None:
    """Show each node's port, pid and mode; exit 1 if none is running."""
    as_json = json_output or bool(getattr(ctx.obj, "json", False))
    zk = _running(base_dir)
    if zk is None:
        if as_json:
            click.echo(json.dumps({"running": False, "dir": str(base_dir), "nodes": []}))
        else:
            click.echo(f"ZooKeeper is not running in {base_dir}")
        ctx.exit(1)
    rows = [
        {"myid": myid, "port": zk.client_ports[myid], "pid": zk.pid(myid),
         "running": zk.is_running(myid), "mode": zk.mode(myid)}
        for myid in range(1, zk.nodes + 1)
    ]
    if as_json:
        doc = {"running": True, "dir": str(base_dir), "hosts": zk.hosts, "nodes": rows}
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(_describe(zk))
    click.echo(f"{'myid':>4}  {'port':>5}  {'pid':>7}  mode")
    for row in rows:
        mode = row["mode"] or ("not answering" if row["running"] else "stopped")
        click.echo(f"{row['myid']:>4}  {row['port']:>5}  {row['pid'] or '-':>7}  {mode}")
