"""``zkflock run``'s exit codes and defaults, importable for nothing: the
fast path (``_cli/fast.py``) and the full one (``_cli/runner.py``) share them.
The table of what each code means is in ``_cli/runner.py``."""

from __future__ import annotations

EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_OSERR = 71
EX_LOCK_LOST = 75  # EX_TEMPFAIL: the work may be retried once the lock is taken again
EX_NOPERM = 77

DEFAULT_GRACE = 5.0
PURPOSE_MAX = 200  # characters of the command kept as the lock's purpose


def child_exit_code(returncode: int) -> int:
    """Our exit code for a child's ``Popen.returncode``: its status, or 128+signal."""
    if returncode < 0:
        return 128 + (-returncode)
    return returncode
