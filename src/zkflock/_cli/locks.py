"""``zkflock run`` (flock(1) across hosts) and ``zkflock status`` (lslocks(8) for ZooKeeper)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from zkflock._cli.fastexit import PURPOSE_MAX
from zkflock._cli.flockargs import (
    InfoRequest,
    RunArgs,
    RunUsageError,
    parse_run_args,
    version_text,
)
from zkflock._cli.runner import error_exit_code, signals_interrupt, spawn, supervise
from zkflock._errors import ZkflockError

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock
    from zkflock._locks.status import Holder
    from zkflock._session import Session


RUN_HELP = """\
Usage:
 zkflock run [options] LOCK [--] COMMAND [ARGUMENT ...]
 zkflock run [options] LOCK -c 'SHELL CMD'

Run COMMAND while holding LOCK, a lock in ZooKeeper: flock(1) across hosts.
Options, as flock(1)'s (they go before LOCK; long ones may be abbreviated):

 -s, --shared                  get a shared lock
 -x, -e, --exclusive           get an exclusive lock (default)
 -n, --nb, --nonblocking       fail rather than wait
 -w, --wait, --timeout SECS    wait at most SECS (-w 0 is -n)
 -E, --conflict-exit-code N    exit code after conflict or timeout (default 1)
 -c, --command 'SHELL CMD'     run SHELL CMD through $SHELL -c (or /bin/sh -c)
     --verbose                 say how long getting the lock took, and what runs
     --max-holders N           a semaphore: at most N holders at once
     --grace SECS              on lock loss: SIGTERM, then SIGKILL after SECS (default 5)
 -h, --help                    display this help
 -V, --version                 display the version
flock's -u, -o, -F and its file-descriptor form do not apply to a ZooKeeper lock.

COMMAND gets ZKFLOCK_LOCK (the normalised name) and ZKFLOCK_TOKEN (the fencing
token) and runs in a process group of its own; SIGINT, SIGTERM and SIGHUP are
forwarded to it; if the lock is lost while it runs it gets SIGTERM, then SIGKILL
after --grace.

Exit codes: COMMAND's own status; 128+N if signal N killed it; the -E code
(default 1) on conflict or timeout, silently unless --verbose; 64 usage error or
invalid lock name; 69 ZooKeeper unreachable or COMMAND could not be executed;
71 other OS error; 75 the lock was lost and COMMAND was stopped.
"""


def register(group: click.Group) -> None:
    group.add_command(run)
    group.add_command(status)


def _global(ctx: click.Context, attr: str) -> Any:
    return getattr(ctx.obj, attr, None)


def _error(message: str) -> None:
    click.echo(f"zkflock: error: {message}", err=True)


# -- run ----------------------------------------------------------------------------


class RawArgsCommand(click.Command):
    """Hands every argument to the command unparsed, for ``parse_run_args``:
    click's parser cannot mimic flock's (it would take a ``--`` before LOCK,
    and knows no option prefixes)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["args"] = tuple(args)
        ctx.args = []
        return []



@click.command(cls=RawArgsCommand, add_help_option=False,
               short_help="Run COMMAND while holding LOCK, like flock(1) across hosts.")
@click.pass_context
def run(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run COMMAND while holding LOCK, like flock(1) across hosts (see -h)."""
    try:
        parsed = parse_run_args(args, os.environ)
        if isinstance(parsed, RunArgs) and parsed.shared and parsed.max_holders is not None:
            raise RunUsageError("--shared and --max-holders do not combine; pick one")
    except RunUsageError as err:
        click.echo(f"zkflock: {err}\nTry 'zkflock run --help' for more information.", err=True)
        ctx.exit(err.exit_code)
    if isinstance(parsed, InfoRequest):
        _info(parsed)
        return
    try:
        from zkflock._session import connect

        session = connect(_global(ctx, "hosts"), root=_global(ctx, "root"))
    except ZkflockError as err:
        _error(str(err))
        ctx.exit(error_exit_code(err, parsed.conflict_exit_code))
    try:
        code = _locked_run(session, parsed)
    finally:
        session.close()
    ctx.exit(code)


def _info(request: InfoRequest) -> None:
    click.echo(RUN_HELP if request.what == "help" else version_text("run"), nl=False)


def _make_lock(session: Session, args: RunArgs, purpose: str) -> Lock:
    if args.max_holders is not None:
        return session.semaphore(args.lock, max_leases=args.max_holders, purpose=purpose)
    if args.shared:
        return session.read_lock(args.lock, purpose=purpose)
    return session.lock(args.lock, purpose=purpose)


def _verbose(args: RunArgs, message: str, *, err: bool = False) -> None:
    # flock prints its timing and 'executing' lines on stdout, its failures on
    # stderr; a script that reads them finds them in the same place.
    if args.verbose:
        stream = sys.stderr if err else sys.stdout
        stream.write(f"zkflock: {message}\n")
        stream.flush()


def _locked_run(session: Session, args: RunArgs) -> int:
    conflict_code = args.conflict_exit_code
    try:
        lock = _make_lock(session, args, shlex.join(args.argv)[:PURPOSE_MAX])
        started = time.monotonic()
        with signals_interrupt():
            acquired = lock.acquire(timeout=args.wait)
        if not acquired:
            # Silent, as flock is: a script that asked for -n or -w expects to
            # branch on the exit code, not to print to its user.
            _verbose(args, _busy_message(session, args), err=True)
            return conflict_code
        _verbose(args, f"getting lock took {time.monotonic() - started:.6f} seconds")
        try:
            env = dict(os.environ, ZKFLOCK_LOCK=lock.name, ZKFLOCK_TOKEN=str(lock.token))
            _verbose(args, f"executing {args.argv[0]}")
            proc = spawn(args.argv, env)
            result = supervise(proc, lock, grace=args.grace)
        finally:
            lock.release()
    except (ZkflockError, OSError, KeyboardInterrupt) as err:
        code = error_exit_code(err, conflict_code)
        if not isinstance(err, KeyboardInterrupt):
            _error(str(err))
        return code
    if result.lock_lost:
        _error(f"{result.lost_message(lock.name)}; its work may overlap with the next "
               "holder's: check it, then run it again")
    return result.exit_code


def _busy_message(session: Session, args: RunArgs) -> str:
    """flock's words ('failed to get lock', 'timeout while waiting to get lock'),
    then who holds it: what --verbose adds to a silent conflict."""
    try:
        holders = [h for h in session.holders(args.lock) if h.state == "holding"]
    except ZkflockError:
        holders = []
    who = ", ".join(f"{h.host}:{h.pid}" for h in holders) or "another process"
    what = "failed to get lock" if not args.wait else "timeout while waiting to get lock"
    return f"{what} {args.lock!r} (held by {who}; see 'zkflock status {args.lock}')"


# -- status -------------------------------------------------------------------------


@click.command()
@click.argument("lock_name", metavar="[LOCK]", required=False)
@click.option("--json", "json_output", is_flag=True, help="Print a JSON list of holders.")
@click.option("--watch", is_flag=True, help="A live view, redrawn as the locks change.")
@click.pass_context
def status(ctx: click.Context, lock_name: str | None, json_output: bool, watch: bool) -> None:
    """Holders and waiters of LOCK (or of every lock), like lslocks(8)."""
    if watch:  # the live view lives in _cli/watch.py
        from zkflock._cli.watch import watch_status

        watch_status(ctx, lock_name, json_output)
        return
    from zkflock._session import connect

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
