"""What a contender's node says about it (``zkflock status`` shows it): the
holder data, cheap to import, so ``zkflock run``'s fast path writes the very
bytes the full path writes without importing ``json`` (and with it ``re``).

The encoding is ``json.dumps(fixed, separators=(",", ":"))``'s, by the same C
function json uses for strings (``tests/test_fast_run.py`` compares them).
"""

from __future__ import annotations

import os
import time

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover - CPython always has _json
    from json.encoder import py_encode_basestring_ascii as _quote

KIND_NAMES = {"x": "exclusive", "r": "shared", "s": "semaphore"}

_HEADS: dict[tuple[int, str, str], str] = {}


def process_start() -> float | None:
    """When this process started (epoch seconds), from /proc: with the pid it
    tells a holder apart from a later process that reused the pid."""
    try:  # bytes: a text file would import the ascii codec for it
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _head(pid: int, kind: str, purpose: str) -> str:
    """``json.dumps`` of the fixed fields, without its closing brace."""
    started = process_start()
    return (f'{{"host":{_quote(os.uname().nodename)},"pid":{pid},'
            f'"started":{"null" if started is None else repr(started)},'
            f'"kind":{_quote(KIND_NAMES.get(kind, kind))},"purpose":{_quote(purpose)}')


def holder_data(kind: str, purpose: str, acquired: bool) -> bytes:
    """What a contender's node says about it: shown by ``zkflock status``."""
    # gethostname() and encoding the fixed fields cost tens of microseconds
    # per acquire (the bench's hot path); they change only with the process
    # (the pid is in the key, so a fork gets its own), so encode them once.
    pid = os.getpid()
    key = (pid, kind, purpose)
    head = _HEADS.get(key)
    if head is None:
        head = _head(pid, kind, purpose)
        if len(_HEADS) < 256:
            _HEADS[key] = head
    now = time.time()
    acquired_at = repr(now) if acquired else "null"
    return f'{head},"queued_at":{now!r},"acquired_at":{acquired_at}}}'.encode()
