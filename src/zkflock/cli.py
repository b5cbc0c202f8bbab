"""The ``zkflock`` command: a thin click layer over the library.

Each command group lives in its own ``zkflock._cli`` module exposing
``register(group)``; name its commands in ``COMMAND_MODULES`` to plug it in.
A module is imported only when one of its commands runs (click's lazy-group
pattern), so ``zkflock run`` does not pay for the benchmarks, the harness, the
local server or rich.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from zkflock._errors import ZkflockError

if TYPE_CHECKING:
    from zkflock._session import Session

# >>> Command name -> the module whose ``register(group: click.Group) -> None``
# >>> adds it. Add one line per command (e.g. "run": "zkflock._cli.locks").
COMMAND_MODULES: Mapping[str, str] = {
    "append": "zkflock._cli.files",
    "bench": "zkflock._cli.bench",
    "cat": "zkflock._cli.files",
    "demo": "zkflock._cli.demo",
    "edit": "zkflock._cli.edit",
    "exporter": "zkflock._cli.exporter",
    "run": "zkflock._cli.locks",
    "scenario": "zkflock._cli.container",
    "server": "zkflock._cli.server",
    "status": "zkflock._cli.locks",
    "torture": "zkflock._cli.torture",
}


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


class _Group(click.Group):
    """Loads each command's module on demand (``COMMAND_MODULES``), and turns
    every ZkflockError into one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(module).register(self)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZkflockError as err:
            obj = ctx.find_object(CliContext)
            if obj is not None and obj.verbose:
                import traceback

                traceback.print_exc()
            click.echo(f"zkflock: error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hosts", envvar="ZKFLOCK_HOSTS", help="ZooKeeper hosts, e.g. 127.0.0.1:2181.")
@click.option("--root", envvar="ZKFLOCK_ROOT", help="Shared root that lock names are relative to.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", count=True, help="More output; -v shows tracebacks.")
@_security_options
@click.version_option(package_name="zkflock", prog_name="zkflock")  # looked up when asked
@click.pass_context
def main(ctx: click.Context, hosts: str | None, root: str | None, json_output: bool,
         verbose: int) -> None:
    """Distributed file locking on Apache ZooKeeper."""
    ctx.obj = CliContext(hosts=hosts, root=root, json=json_output, verbose=verbose)
    _configure_logging(verbose)


def entry() -> None:
    """The ``zkflock`` executable: the command, with ``ssl`` loaded only if used."""
    from zkflock._cli.deferred import defer

    defer()
    main(prog_name="zkflock")


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

