"""``zkflock run`` (flock(1) across hosts) and ``zkflock status`` (lslocks(8) for ZooKeeper)."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from zkflock._cli.runner import (
    DEFAULT_GRACE,
    EX_USAGE,
    error_exit_code,
    signals_interrupt,
    spawn,
    supervise,
)
from zkflock._errors import ZkflockError
from zkflock._locks.lock import Lock
from zkflock._locks.status import Holder
from zkflock._session import Session, connect

_PURPOSE_MAX = 200


def register(group: click.Group) -> None:
    group.add_command(run)
    group.add_command(status)


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    click.echo(f"zkflock: error: {message}", err=True)
    ctx.exit(code)


def _global(ctx: click.Context, attr: str) -> Any:
    return getattr(ctx.obj, attr, None)


class _UsageError(click.UsageError):
    exit_code = EX_USAGE


class _RunCommand(click.Command):
    """flock(1) and sysexits: a usage error exits 64, not click's 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise _UsageError(err.format_message(), err.ctx) from err


# -- run ----------------------------------------------------------------------------


@click.command(
    cls=_RunCommand,
    # Parsing stops at LOCK: everything after it is the command, its options included.
    context_settings={"allow_interspersed_args": False},
)
@click.option("-s", "--shared", "mode", flag_value="shared", help="Take a shared (read) lock.")
@click.option("-x", "-e", "--exclusive", "mode", flag_value="exclusive", default=True,
              help="Take an exclusive lock (the default).")
@click.option("-n", "--nonblock", "--nb", is_flag=True,
              help="Fail (exit with the -E code) rather than wait if the lock is busy.")
@click.option("-w", "--timeout", "--wait", type=click.FloatRange(min=0), default=None,
              metavar="SECONDS", help="Wait at most this long, then exit with the -E code.")
@click.option("-E", "--conflict-exit-code", type=click.IntRange(0, 255), default=1,
              show_default=True, help="Exit code on conflict (-n) or timeout (-w).")
@click.option("-c", "--command", "shell_command", metavar="'SHELL CMD'",
              help="Run this through /bin/sh -c instead of COMMAND ...")
@click.option("--max-holders", type=click.IntRange(min=1), default=None, metavar="N",
              help="A semaphore: at most N holders at once (every caller must agree on N).")
@click.option("--grace", type=click.FloatRange(min=0), default=DEFAULT_GRACE, show_default=True,
              metavar="SECONDS", help="On lock loss: SIGTERM, then SIGKILL after this long.")
@click.argument("lock_name", metavar="LOCK")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, mode: str, nonblock: bool, timeout: float | None,
        conflict_exit_code: int, shell_command: str | None, max_holders: int | None,
        grace: float, lock_name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND while holding LOCK, like flock(1) across hosts.

    \b
    The command gets ZKFLOCK_LOCK (the normalised name) and ZKFLOCK_TOKEN (the
    fencing token). It runs in a process group of its own: SIGINT, SIGTERM and
    SIGHUP are forwarded to that group, and if the lock is lost while it runs
    the group gets SIGTERM, then SIGKILL after --grace.

    \b
    Exit codes: the command's own status; 128+N if signal N killed it;
    the -E code (default 1) on conflict or timeout; 64 usage error;
    69 ZooKeeper unreachable or the command could not be executed;
    71 other OS error; 75 the lock was lost and the command was stopped.
    """
    argv = _command_argv(ctx, command, shell_command)
    if mode == "shared" and max_holders is not None:
        _fail(ctx, "--shared and --max-holders do not combine; pick one", EX_USAGE)
    wait = 0.0 if nonblock else timeout
    purpose = shlex.join(argv)[:_PURPOSE_MAX]
    try:
        session = connect(_global(ctx, "hosts"), root=_global(ctx, "root"))
    except ZkflockError as err:
        _fail(ctx, str(err), error_exit_code(err, conflict_exit_code))
    try:
        code = _locked_run(ctx, session, lock_name, mode, max_holders, wait, purpose, argv,
                           grace, conflict_exit_code)
    finally:
        session.close()
    ctx.exit(code)


def _command_argv(ctx: click.Context, command: Sequence[str], shell: str | None) -> list[str]:
    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if shell is not None and args:
        _fail(ctx, "give either -c 'SHELL CMD' or COMMAND ..., not both", EX_USAGE)
    if shell is not None:
        return ["/bin/sh", "-c", shell]
    if not args:
        _fail(ctx, "no command to run: zkflock run LOCK -- COMMAND ... "
                   "(or -c 'SHELL CMD'); see 'zkflock run --help'", EX_USAGE)
    return args


def _make_lock(session: Session, name: str, mode: str, max_holders: int | None,
               purpose: str) -> Lock:
    if max_holders is not None:
        return session.semaphore(name, max_leases=max_holders, purpose=purpose)
    if mode == "shared":
        return session.read_lock(name, purpose=purpose)
    return session.lock(name, purpose=purpose)


def _locked_run(ctx: click.Context, session: Session, name: str, mode: str,
                max_holders: int | None, wait: float | None, purpose: str, argv: list[str],
                grace: float, conflict_code: int) -> int:
    try:
        lock = _make_lock(session, name, mode, max_holders, purpose)
        with signals_interrupt():
            acquired = lock.acquire(timeout=wait)
        if not acquired:
            click.echo(f"zkflock: error: {_busy_message(session, name, wait)}", err=True)
            return conflict_code
        try:
            env = dict(os.environ, ZKFLOCK_LOCK=lock.name, ZKFLOCK_TOKEN=str(lock.token))
            proc = spawn(argv, env)
            result = supervise(proc, lock, grace=grace)
        finally:
            lock.release()
    except (ZkflockError, OSError, KeyboardInterrupt) as err:
        code = error_exit_code(err, conflict_code)
        if not isinstance(err, KeyboardInterrupt):
            click.echo(f"zkflock: error: {err}", err=True)
        return code
    if result.lock_lost:
        how = "SIGTERM, then SIGKILL" if result.killed else "SIGTERM"
        click.echo(
            f"zkflock: error: lock {lock.name!r} was lost while the command ran, so it was "
            f"stopped with {how}; its work may overlap with the next holder's: check it, "
            "then run it again", err=True)
    return result.exit_code


def _busy_message(session: Session, name: str, wait: float | None) -> str:
    try:
        holders = [h for h in session.holders(name) if h.state == "holding"]
    except ZkflockError:
        holders = []
    who = ", ".join(f"{h.host}:{h.pid}" for h in holders) or "another process"
    waited = "is busy" if not wait else f"was not acquired within {wait:g} s"
    return (f"lock {name!r} {waited} (held by {who}); retry later, wait with -w SECONDS, "
            f"or see who holds it with 'zkflock status {name}'")


# -- status -------------------------------------------------------------------------


@click.command()
@click.argument("lock_name", metavar="[LOCK]", required=False)
@click.option("--json", "json_output", is_flag=True, help="Print a JSON list of holders.")
@click.pass_context
def status(ctx: click.Context, lock_name: str | None, json_output: bool) -> None:
    """Holders and waiters of LOCK (or of every lock), like lslocks(8)."""
    with connect(_global(ctx, "hosts"), root=_global(ctx, "root")) as session:
        names = [lock_name] if lock_name else session.lock_names()
        rows = [h for name in names for h in session.holders(name)]
    if json_output or _global(ctx, "json"):
        click.echo(json.dumps([h.as_dict() for h in rows], indent=2))
        return
    _print_table(rows, lock_name)


def _print_table(rows: list[Holder], lock_name: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from zkflock._cli.console import output_console

    console = output_console()
    if not rows:
        console.print(f"no holders or waiters for {lock_name!r}" if lock_name else "no locks")
        return
    table = Table(box=None, header_style="bold")
    for column in ("LOCK", "MODE", "STATE", "HOLDER", "TOKEN", "SINCE", "PURPOSE"):
        table.add_column(column, no_wrap=column != "PURPOSE")
    for h in rows:
        # Text, not markup: names and purposes may contain '[' (sh -c '[ -f x ]').
        state = Text(h.state, style="green" if h.state == "holding" else "yellow")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.since))
        holder = f"{h.host}:{h.pid if h.pid is not None else '?'}"
        table.add_row(Text(h.lock), h.kind, state, Text(holder), str(h.token), since,
                      Text(h.purpose))
    console.print(table)
    holding = sum(1 for h in rows if h.state == "holding")
    locks = len({h.lock for h in rows})
    console.print(f"{locks} lock(s), {holding} holding, {len(rows) - holding} waiting")
