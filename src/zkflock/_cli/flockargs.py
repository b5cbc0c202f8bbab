"""The arguments of ``zkflock run``, parsed as flock(1) parses its own.

flock(1) (util-linux 2.38) parses with ``getopt_long`` and the ``+`` flag:
options stop at the first non-option, LOCK; what follows is the command,
except that ``LOCK -c CMD`` (or ``--command``) is recognised right after LOCK.
Long options may be abbreviated to any unique prefix (``--nonblock`` is how
most people spell flock's ``--nonblocking``). Python's ``getopt.getopt`` has
the same rules (stops at the first non-option, unique prefixes), so the option
table below is flock's own, plus ours, and a prefix that is ambiguous for
flock (``--no``: ``--nonblocking`` or ``--no-fork``) is ambiguous here too.

The parser is a pure function of (argv, $SHELL), unit-tested without a server.
"""

from __future__ import annotations

import getopt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import click

from zkflock._cli.runner import DEFAULT_GRACE, EX_USAGE

SHORT_OPTIONS = "sexnoFuw:E:hVc:"
LONG_OPTIONS = (
    # flock(1) 2.38's own table, in its order.
    "shared", "exclusive", "unlock", "nonblocking", "nb", "timeout=", "wait=",
    "conflict-exit-code=", "close", "no-fork", "verbose", "help", "version",
    # Ours: -c before LOCK (flock accepts it only after LOCK), semaphores, lock loss.
    "command=", "max-holders=", "grace=",
)

# What makes sense only for a local file descriptor, refused with the reason.
NOT_APPLICABLE = {
    "-u": "there is no lock to drop early: zkflock holds LOCK exactly while COMMAND runs",
    "-o": "no file descriptor is opened for LOCK, so there is none to close",
    "-F": "zkflock must stay alive next to COMMAND to hold the lock and to stop "
          "COMMAND if the lock is lost, so it always forks",
}
_LONG_ALIASES = {"--unlock": "-u", "--close": "-o", "--no-fork": "-F",
                 "--shared": "-s", "--exclusive": "-x", "--nonblocking": "-n", "--nb": "-n",
                 "--timeout": "-w", "--wait": "-w", "--conflict-exit-code": "-E",
                 "--help": "-h", "--version": "-V", "--command": "-c"}


class RunUsageError(Exception):
    """Bad arguments for ``zkflock run``: the message, and exit 64 as flock(1)."""

    exit_code = EX_USAGE


@dataclass(frozen=True)
class RunArgs:
    """What ``zkflock run`` was asked to do."""

    lock: str
    argv: tuple[str, ...]              # the command, ready to execute
    shared: bool = False
    nonblock: bool = False
    timeout: float | None = None       # None: wait for ever
    conflict_exit_code: int = 1
    verbose: bool = False
    max_holders: int | None = None
    grace: float = DEFAULT_GRACE

    @property
    def wait(self) -> float | None:
        """How long acquire may wait: -n wins over -w, whatever the order, as in
        flock (LOCK_NB makes its timer moot); -w 0 means -n."""
        return 0.0 if self.nonblock else self.timeout


@dataclass(frozen=True)
class InfoRequest:
    """-h or -V: print help or the version, exit 0, whatever else was given."""

    what: str  # "help" | "version"


class RawArgsCommand(click.Command):
    """Hands every argument to the command unparsed, for ``parse_run_args``:
    click's parser cannot mimic flock's (it would take a ``--`` before LOCK,
    and knows no option prefixes)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["args"] = tuple(args)
        ctx.args = []
        return []


def version_text(command: str) -> str:
    from importlib.metadata import version  # only when asked: it is slow to import

    return f"zkflock {command} (zkflock {version('zkflock')})\n"


def parse_run_args(args: Sequence[str], env: Mapping[str, str]) -> RunArgs | InfoRequest:
    """Parse ``zkflock run``'s arguments; RunUsageError says what is wrong."""
    if not args:
        raise RunUsageError("not enough arguments")
    try:
        opts, rest = getopt.getopt(list(args), SHORT_OPTIONS, list(LONG_OPTIONS))
    except getopt.GetoptError as err:
        raise RunUsageError(_getopt_message(err)) from None
    fields: dict[str, object] = {}
    shell_command: str | None = None
    for opt, value in opts:
        short = _LONG_ALIASES.get(opt, opt)
        if short in ("-h", "-V"):  # flock answers these at once, in order
            return InfoRequest("help" if short == "-h" else "version")
        if short in NOT_APPLICABLE:
            raise RunUsageError(f"{opt} does not apply to a ZooKeeper lock: "
                                f"{NOT_APPLICABLE[short]}")
        if short == "-c":
            shell_command = value
        else:
            fields.update(_option_field(opt, short, value))
    lock, argv = _lock_and_command(rest, shell_command, env)
    return RunArgs(lock=lock, argv=argv, **fields)  # type: ignore[arg-type]


def _option_field(opt: str, short: str, value: str) -> dict[str, object]:
    if short in ("-s", "-e", "-x"):
        return {"shared": short == "-s"}  # the last one given wins, as in flock
    if short == "-n":
        return {"nonblock": True}
    if short == "-w":
        return {"timeout": _seconds(value, "invalid timeout value")}
    if short == "-E":
        return {"conflict_exit_code": _exit_code(value)}
    if opt == "--verbose":
        return {"verbose": True}
    if opt == "--max-holders":
        return {"max_holders": _positive_int(value, "--max-holders")}
    if opt == "--grace":
        return {"grace": _seconds(value, "invalid --grace value")}
    raise AssertionError(f"option {opt} is in the table but not handled")


def _lock_and_command(rest: list[str], shell_command: str | None,
                      env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    if not rest:
        raise RunUsageError("requires a lock name and a command: zkflock run LOCK COMMAND ... "
                            "or zkflock run LOCK -c 'SHELL CMD'")
    lock, command = rest[0], rest[1:]
    if command[:1] in (["-c"], ["--command"]):
        if shell_command is not None or len(command) != 2:
            raise RunUsageError(f"{command[0]} requires exactly one command argument")
        shell_command = command[1]
        command = []
    # flock would try to execute a program named '--'; we take it as the end of
    # our options, so that 'zkflock run LOCK -- COMMAND ...' reads as it looks.
    if command[:1] == ["--"]:
        command = command[1:]
    if shell_command is not None:
        if command:
            raise RunUsageError("give either -c 'SHELL CMD' or COMMAND ..., not both")
        # flock runs $SHELL -c, or /bin/sh when SHELL is unset or empty.
        return lock, (env.get("SHELL") or "/bin/sh", "-c", shell_command)
    if not command:
        raise RunUsageError(
            f"no command to run after {lock!r}: zkflock run LOCK COMMAND ... or "
            "zkflock run LOCK -c 'SHELL CMD' (flock's file-descriptor form, "
            "'flock FD', does not apply: a ZooKeeper lock is held by a process, not a file)")
    return lock, tuple(command)


def _getopt_message(err: getopt.GetoptError) -> str:
    """flock's (glibc getopt's) wording, from Python getopt's error."""
    opt = err.opt
    text = str(err)
    if "not a unique prefix" in text:
        matches = [f"'--{name.rstrip('=')}'" for name in LONG_OPTIONS
                   if name.startswith(opt)]
        return f"option '--{opt}' is ambiguous; possibilities: {' '.join(matches)}"
    if "requires argument" in text:
        if len(opt) == 1:
            return f"option requires an argument -- '{opt}'"
        return f"option '--{opt}' requires an argument"
    if "must not have an argument" in text:
        return f"option '--{opt}' doesn't allow an argument"
    if len(opt) == 1:
        return f"invalid option -- '{opt}'"
    return f"unrecognized option '--{opt}'"


def _seconds(value: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise RunUsageError(f"{what}: '{value}'") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise RunUsageError(f"{what}: '{value}' (expected seconds, 0 or more)")
    return seconds


def _exit_code(value: str) -> int:
    try:
        code = int(value, 10)
    except ValueError:
        raise RunUsageError(f"invalid exit code: '{value}'") from None
    if not 0 <= code <= 255:
        raise RunUsageError("exit code out of range (expected 0 to 255)")
    return code


def _positive_int(value: str, what: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        number = 0
    if number < 1:
        raise RunUsageError(f"invalid {what} value: '{value}' (expected a whole number, 1 or more)")
    return number
