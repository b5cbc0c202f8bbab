"""The ``zkflock`` executable's entry point, and the fast path of ``run``.

``zkflock [--hosts H] [--root R] [--json] run [flock options] LOCK COMMAND``
is recognised by a hand parse of argv and served without click, kazoo or
threads (``_cli/fastrun.py`` on ``_zk/lite.py``): a script that takes a lock
per file in a loop pays an interpreter start and a few round trips, not the
imports of the whole command. Anything else takes the full path
(``zkflock.cli``), unchanged, and so does ``run`` with anything the fast path
does not serve: any other global option (``-v``, ``--help``, ``--version``,
``--tls-*``), TLS from the environment (``ZKFLOCK_TLS_*``), run's ``--verbose``,
``-h``/``-V``, and any usage error (the full path words it). Digest credentials
(``--auth-file``, ``ZKFLOCK_AUTH``, ``ZKFLOCK_AUTH_FILE``) it serves itself
(``_cli/fastauth.py``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: Global options the fast path serves, each with one value.
VALUE_OPTIONS = ("--hosts", "--root", "--auth-file")
#: ... and the one flag (it changes nothing for ``run``).
FLAG_OPTIONS = ("--json",)
#: Set and non-empty, these mean TLS: the full path's.
FALLBACK_VARS = ("ZKFLOCK_TLS_CA", "ZKFLOCK_TLS_CERT", "ZKFLOCK_TLS_KEY")
#: ``ZKFLOCK_FAST=0`` turns the fast path off (the tests compare both paths).
SWITCH_VAR = "ZKFLOCK_FAST"


def recognise(argv: Sequence[str],
              env: Mapping[str, str]) -> tuple[dict[str, str], list[str]] | None:
    """(global option values, run's arguments) if argv is a ``run`` the fast
    path serves; None for the full path."""
    if env.get(SWITCH_VAR) == "0" or any(env.get(var) for var in FALLBACK_VARS):
        return None
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "run":
            return values, list(argv[i + 1:])
        name, eq, value = arg.partition("=")
        if name in VALUE_OPTIONS:
            if not eq:
                if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                    return None
                i += 1
                value = argv[i]
            values[name[2:]] = value
        elif arg not in FLAG_OPTIONS:
            return None
        i += 1
    return None


def try_fast(argv: Sequence[str]) -> int | None:
    """The exit code of ``zkflock ARGV`` served on the fast path, or None."""
    found = recognise(argv, os.environ)
    if found is None:
        return None
    values, run_args = found
    if values.get("auth-file"):
        # As the click option does: every session of the command reads it there.
        os.environ["ZKFLOCK_AUTH_FILE"] = values["auth-file"]
    from zkflock._cli.deferred import defer

    # dataclasses imports inspect (ast, dis, tokenize: about half a bare
    # interpreter start) for one call, made only for a dataclass without a
    # docstring; ours all have one, so it is loaded only if ever used.
    defer(("inspect",))
    from zkflock._cli.flockargs import RunArgs, RunUsageError, parse_run_args

    try:
        parsed = parse_run_args(run_args, os.environ)
    except RunUsageError:
        return None
    if not isinstance(parsed, RunArgs) or parsed.verbose:
        return None
    if parsed.shared and parsed.max_holders is not None:
        return None
    from zkflock._cli.fastrun import fast_run

    return fast_run(parsed, values.get("hosts"), values.get("root"))


def entry() -> None:
    """The ``zkflock`` executable."""
    code = try_fast(sys.argv[1:])
    if code is None:
        from zkflock.cli import entry as full

        full()
        return
    sys.exit(code)
