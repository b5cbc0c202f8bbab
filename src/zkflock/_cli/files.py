"""``zkflock append`` (TEXT or standard input) and ``zkflock cat``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from zkflock._session import Session

if TYPE_CHECKING:
    from zkflock._files.shared_file import SharedFile


def register(group: click.Group) -> None:
    group.add_command(append)
    group.add_command(cat)


def _session(ctx: click.Context) -> Session:
    obj = ctx.obj
    return Session(obj.hosts, root=obj.root)




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
    """Stream standard input into one new segment (bounded memory, the old
    content never read) and commit it once: a reader sees all of it or none."""
    meta = shared.append(sys.stdin.buffer, timeout=timeout)
    return meta.version, meta.token


@click.command()
@click.argument("file")
@click.pass_context
def cat(ctx: click.Context, file: str) -> None:
    """Print the latest committed content of the fenced FILE, checksum-verified,
    streamed segment by segment in bounded memory."""
    import shutil

    with _session(ctx) as zk, zk.shared_file(file).open() as reader:
        shutil.copyfileobj(reader, sys.stdout.buffer, 1 << 20)
    sys.stdout.buffer.flush()
