"""``zkflock edit FILE [--] COMMAND ...``: a fenced edit by any program.

The command edits a private working copy of the fenced FILE (``ZKFLOCK_FILE``
names it) while zkflock holds FILE's lock; the copy becomes the new version
with a fenced commit only when the command exits 0 and the lock is still held
(``SharedFile.working_copy``). A command paused past its lock, whose lock was
handed on meanwhile, can therefore never overwrite the next holder's version:
its commit is refused and nothing is written (exit 75).

Arguments are ``zkflock run``'s (flock(1)'s forms and flags, see flockargs),
but for -s and --max-holders: an edit is always exclusive.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from typing import TYPE_CHECKING

import click

from zkflock._cli.flockargs import (
    InfoRequest,
    RawArgsCommand,
    RunArgs,
    RunUsageError,
    parse_run_args,
    version_text,
)
from zkflock._cli.runner import EX_LOCK_LOST, SignalGate, error_exit_code, spawn, supervise
from zkflock._errors import LockTimeoutError, StaleTokenError, ZkflockError

if TYPE_CHECKING:
    from zkflock._files.working_copy import WorkingCopy
    from zkflock._session import Session

EDIT_HELP = """\
Usage:
 zkflock edit [options] FILE [--] COMMAND [ARGUMENT ...]
 zkflock edit [options] FILE -c 'SHELL CMD'

Take the fenced FILE's lock, give COMMAND a private working copy of its latest
version (ZKFLOCK_FILE names it; edit it in place or replace it by rename), and
commit the copy as the new version with a fenced commit when COMMAND exits 0
and the lock is still held. An unchanged copy commits nothing.

Options (as zkflock run's, before FILE):
 -n, --nb, --nonblocking       fail rather than wait for the lock
 -w, --wait, --timeout SECS    wait at most SECS
 -E, --conflict-exit-code N    exit code after conflict or timeout (default 1)
 -c, --command 'SHELL CMD'     run SHELL CMD through $SHELL -c (or /bin/sh -c)
     --verbose                 say how long getting the lock took, and what runs
     --grace SECS              on lock loss: SIGTERM, then SIGKILL after SECS (default 5)
 -h, --help                    display this help

COMMAND also gets ZKFLOCK_LOCK and ZKFLOCK_TOKEN (the fencing token); signals are
forwarded to it as by zkflock run.

Exit codes: 0 committed (or nothing to commit); COMMAND's own status if it
failed (nothing committed); 128+N if signal N killed it; the -E code on conflict
or timeout (silent unless --verbose); 64 usage error or invalid name; 65 FILE is
damaged; 69 ZooKeeper unreachable or COMMAND could not be executed; 71 other OS
error; 75 the lock was lost (COMMAND was stopped) or the fenced commit was
refused: nothing committed; 77 refused by ZooKeeper's ACL or credentials.
"""


def register(group: click.Group) -> None:
    group.add_command(edit)


def _error(message: str) -> None:
    click.echo(f"zkflock: error: {message}", err=True)


def _parse(args: tuple[str, ...]) -> RunArgs | InfoRequest:
    parsed = parse_run_args(args, os.environ)
    if isinstance(parsed, RunArgs) and (parsed.shared or parsed.max_holders is not None):
        raise RunUsageError("an edit is always exclusive: -s and --max-holders do not apply")
    return parsed


@click.command(cls=RawArgsCommand, add_help_option=False,
               short_help="Run COMMAND on a working copy of the fenced FILE; commit it, fenced.")
@click.pass_context
def edit(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run COMMAND on a working copy of the fenced FILE; commit it, fenced (see -h)."""
    try:
        parsed = _parse(args)
    except RunUsageError as err:
        click.echo(f"zkflock: {err}\nTry 'zkflock edit --help' for more information.", err=True)
        ctx.exit(err.exit_code)
    if isinstance(parsed, InfoRequest):
        click.echo(EDIT_HELP if parsed.what == "help" else version_text("edit"), nl=False)
        return
    from zkflock._session import connect

    try:
        session = connect(getattr(ctx.obj, "hosts", None), root=getattr(ctx.obj, "root", None))
    except ZkflockError as err:
        _error(str(err))
        ctx.exit(error_exit_code(err))
    try:
        code = _edit(session, parsed)
    finally:
        session.close()
    ctx.exit(code)


def _say(args: RunArgs, message: str, *, err: bool = False) -> None:
    if args.verbose:  # on the streams flock uses for the same words
        stream = sys.stderr if err else sys.stdout
        stream.write(f"zkflock: {message}\n")
        stream.flush()


def _edit(session: Session, args: RunArgs) -> int:
    """Lock, run the command on the copy, commit (or not); our exit code."""
    started = time.monotonic()
    try:
        shared_file = session.shared_file(args.lock)
        with SignalGate() as gate, shared_file.working_copy(
            timeout=args.wait, purpose=shlex.join(["edit", *args.argv])[:200]
        ) as copy:
            _say(args, f"getting lock took {time.monotonic() - started:.6f} seconds")
            gate.hold()  # from here a signal goes to the child, or waits for the commit
            code = _run_on_copy(copy, args)
            if code != 0:
                copy.discard()
                return code
        return 0
    except LockTimeoutError:
        _say(args, "failed to get lock" if not args.wait else
             "timeout while waiting to get lock", err=True)
        return args.conflict_exit_code
    except StaleTokenError as err:
        _error(f"{err}; the lock was lost before the commit: check, then run the edit again")
        return EX_LOCK_LOST
    except (ZkflockError, OSError, KeyboardInterrupt) as err:
        if not isinstance(err, KeyboardInterrupt):
            _error(str(err))
        return error_exit_code(err, args.conflict_exit_code)


def _run_on_copy(copy: WorkingCopy, args: RunArgs) -> int:
    env = dict(os.environ, ZKFLOCK_FILE=str(copy.path), ZKFLOCK_TOKEN=str(copy.token),
               ZKFLOCK_LOCK=copy.lock.name)
    _say(args, f"executing {args.argv[0]}")
    result = supervise(spawn(args.argv, env), copy.lock, grace=args.grace)
    if result.lock_lost:
        _error(f"{result.lost_message(copy.lock.name)}; nothing was committed: run the "
               "edit again")
    return result.exit_code
