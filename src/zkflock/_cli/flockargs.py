"""The arguments of ``zkflock run``, parsed as flock(1) parses its own.

flock(1) (util-linux 2.38) parses with ``getopt_long`` and the ``+`` flag:
options stop at the first non-option, LOCK; what follows is the command,
except that ``LOCK -c CMD`` (or ``--command``) is recognised right after LOCK.
Long options may be abbreviated to any unique prefix (``--nonblock`` is how
most people spell flock's ``--nonblocking``). Python's ``getopt.getopt`` has
the same rules (stops at the first non-option, unique prefixes), so the option
table below is flock's own, plus ours, and a prefix that is ambiguous for
flock (``--no``: ``--nonblocking`` or ``--no-fork``) is ambiguous here too.
:func:`getopt` is ``getopt.getopt``'s algorithm without the module, whose
``gettext`` import cost ``zkflock run`` a third of a bare interpreter start.

The parser is a pure function of (argv, $SHELL), unit-tested without a server,
and imports neither click nor anything heavy: the fast path parses with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zkflock._cli.fastexit import DEFAULT_GRACE, EX_USAGE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


def version_text(command: str) -> str:
    from importlib.metadata import version  # only when asked: it is slow to import

    return f"zkflock {command} (zkflock {version('zkflock')})\n"


def parse_run_args(args: Sequence[str], env: Mapping[str, str]) -> RunArgs | InfoRequest:
    """Parse ``zkflock run``'s arguments; RunUsageError says what is wrong."""
    if not args:
        raise RunUsageError("not enough arguments")
    opts, rest = getopt(list(args))
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


def getopt(args: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``getopt.getopt(args, SHORT_OPTIONS, LONG_OPTIONS)``: options up to the
    first non-option (or ``--``), then the rest; RunUsageError in flock's words."""
    opts: list[tuple[str, str]] = []
    while args and args[0].startswith("-") and args[0] != "-":
        if args[0] == "--":
            return opts, args[1:]
        if args[0].startswith("--"):
            args = _long(opts, args[0][2:], args[1:])
        else:
            args = _shorts(opts, args[0][1:], args[1:])
    return opts, args


def _long(opts: list[tuple[str, str]], opt: str, args: list[str]) -> list[str]:
    opt, eq, value = opt.partition("=")
    has_arg, opt = _long_has_arg(opt)
    if has_arg and not eq:
        if not args:
            raise RunUsageError(f"option '--{opt}' requires an argument")
        value, args = args[0], args[1:]
    elif eq and not has_arg:
        raise RunUsageError(f"option '--{opt}' doesn't allow an argument")
    opts.append(("--" + opt, value))
    return args


def _long_has_arg(opt: str) -> tuple[bool, str]:
    found = [name for name in LONG_OPTIONS if name.startswith(opt)]
    if not found:
        raise RunUsageError(f"unrecognized option '--{opt}'")
    if opt in found:
        return False, opt
    if opt + "=" in found:
        return True, opt
    if len(found) > 1:
        matches = " ".join(f"'--{name.rstrip('=')}'" for name in found)
        raise RunUsageError(f"option '--{opt}' is ambiguous; possibilities: {matches}")
    return found[0].endswith("="), found[0].rstrip("=")


def _shorts(opts: list[tuple[str, str]], letters: str, args: list[str]) -> list[str]:
    while letters:
        opt, letters = letters[0], letters[1:]
        index = SHORT_OPTIONS.find(opt) if opt != ":" else -1
        if index < 0:
            raise RunUsageError(f"invalid option -- '{opt}'")
        value = ""
        if SHORT_OPTIONS.startswith(":", index + 1):
            if not letters:
                if not args:
                    raise RunUsageError(f"option requires an argument -- '{opt}'")
                letters, args = args[0], args[1:]
            value, letters = letters, ""
        opts.append(("-" + opt, value))
    return args


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


def __getattr__(name: str) -> Any:
    # RawArgsCommand needs click, which the fast path never imports: it lives
    # with the click commands (_cli/locks.py) and is found here on first use.
    if name == "RawArgsCommand":
        from zkflock._cli.locks import RawArgsCommand

        return RawArgsCommand
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
