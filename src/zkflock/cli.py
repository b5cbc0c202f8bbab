"""The ``zkflock`` command: a thin click layer over the library.

Each command group lives in its own ``_cli_*`` module exposing ``register(main)``;
add a module to ``COMMAND_MODULES`` to plug it in.
"""

from __future__ import annotations

import importlib
import logging
import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import click

from zkflock._errors import ZkflockError

if TYPE_CHECKING:
    from zkflock._session import Session

# >>> Command modules, each with a ``register(group: click.Group) -> None``.
# >>> Add one line per module (e.g. "zkflock._cli.locks", "zkflock._cli.demo").
COMMAND_MODULES: Sequence[str] = (
    "zkflock._cli.server",
    "zkflock._cli.files",
    "zkflock._cli.bench",
    "zkflock._cli.locks",
    "zkflock._cli.demo",
    "zkflock._cli.container",
    "zkflock._cli.exporter",
)


@dataclass(frozen=True)
class CliContext:
    """The global options, shared by every command through ``ctx.obj``."""

    hosts: str | None
    root: str | None
    json: bool
    verbose: int

    def connect(self, **kw: Any) -> Session:
        """A session from the global options; auth and TLS come from the
        ``ZKFLOCK_*`` variables that ``--auth-file``/``--tls-*`` set."""
        from zkflock._session import connect

        return connect(self.hosts, root=self.root, **kw)


def _export(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Security options travel as ``ZKFLOCK_*`` variables, so every session
    the command makes, and every client process it starts (demo, torture),
    uses them. Never a password on the command line: only a file naming it."""
    if value:
        envvar = param.envvar if isinstance(param.envvar, str) else None
        if envvar:
            os.environ[envvar] = value
    return value


def _security_options(f: Any) -> Any:
    for name, var, text in reversed((
        ("--auth-file", "ZKFLOCK_AUTH_FILE", "File holding 'user:password' (mode 600)."),
        ("--tls-ca", "ZKFLOCK_TLS_CA", "CA certificate (PEM) for TLS to ZooKeeper."),
        ("--tls-cert", "ZKFLOCK_TLS_CERT", "Client certificate (PEM) for TLS."),
        ("--tls-key", "ZKFLOCK_TLS_KEY", "Client private key (PEM) for TLS."),
    )):
        f = click.option(name, envvar=var, metavar="FILE", help=text, callback=_export,
                         expose_value=False, is_eager=True)(f)
    return f


def _version() -> str:
    try:
        return version("zkflock")
    except PackageNotFoundError:
        return "unknown"


class _Group(click.Group):
    """Turns every ZkflockError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZkflockError as err:
            obj = ctx.find_object(CliContext)
            if obj is not None and obj.verbose:
                traceback.print_exc()
            click.echo(f"zkflock: error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hosts", envvar="ZKFLOCK_HOSTS", help="ZooKeeper hosts, e.g. 127.0.0.1:2181.")
@click.option("--root", envvar="ZKFLOCK_ROOT", help="Shared root that lock names are relative to.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", count=True, help="More output; -v shows tracebacks.")
@_security_options
@click.version_option(_version(), prog_name="zkflock")
@click.pass_context
def main(ctx: click.Context, hosts: str | None, root: str | None, json_output: bool,
         verbose: int) -> None:
    """Distributed file locking on Apache ZooKeeper."""
    ctx.obj = CliContext(hosts=hosts, root=root, json=json_output, verbose=verbose)
    _configure_logging(verbose)


def _configure_logging(verbose: int) -> None:
    """kazoo logs every refused connection attempt, and our own error says it
    once: keep kazoo's records for -v, and prefix ours like our errors."""
    ours = logging.getLogger("zkflock")
    if not ours.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("zkflock: %(message)s"))
        ours.addHandler(handler)
    if verbose:
        ours.setLevel(logging.DEBUG)
        return
    kazoo_log = logging.getLogger("kazoo")
    kazoo_log.addHandler(logging.NullHandler())
    kazoo_log.propagate = False


def _register_commands(group: click.Group) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(group)


_register_commands(main)
