"""The counter workload client: ``python -m zkflock._harness.workload ...``.

Each critical section reads an integer from the shared file, pauses briefly
(so faults land inside it), and writes it back plus one. Every attempt is
logged (append + fsync) to the client's own history file, acknowledged only
when the commit returned. ``--unfenced`` is the negative control: a plain
lock with direct file writes, which a paused holder can overwrite.
``--reader`` runs a reader instead: ``read()`` in a loop, each result (or
error) logged, for the checker's ``check_reads``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import IO

import zkflock
from zkflock._errors import ZkflockError
from zkflock._harness.check import INVOKED, Attempt, Read


class History:
    """An append-only log of attempts, fsynced per record."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def log(self, attempt: Attempt | Read) -> None:
        self._file.write(attempt.to_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _parse(text: str) -> int:
    return int(text.strip() or 0)


def fenced_step(f: zkflock.SharedFile, pause: float) -> int:
    """One fenced increment; returns the value acknowledged."""
    with f.edit(timeout=30) as doc:
        value = _parse(doc.text) + 1
        _invoke(value)
        time.sleep(pause)
        doc.text = str(value)
    return value


def unfenced_step(zk: zkflock.Session, view: Path, name: str, pause: float) -> int:
    """One increment under a plain lock, writing the file directly: no fencing.

    The holder goes on working for a while after its write, still holding the
    lock, as real critical sections do. That matters for the control: a stale
    write that lands while the current holder is between its read and its
    write is overwritten blindly and harms nobody; one that lands after a
    write is read by the next holder, and acknowledged updates are lost.
    """
    with zk.lock(name, timeout=30):
        try:
            value = _parse(view.read_text()) + 1
        except FileNotFoundError:
            value = 1
        _invoke(value)
        time.sleep(pause)
        tmp = view.with_name(f".{view.name}.{os.getpid()}.tmp")
        tmp.write_text(str(value))
        os.replace(tmp, view)
        time.sleep(AFTER_WRITE * pause)
    return value


AFTER_WRITE = 3  # the post-write share of the critical section, in pauses


_current: list[int] = []  # the value the running attempt tries to write
_history: list[History] = []


def _invoke(value: int) -> None:
    """Log the attempt before it can land: a client killed after its commit
    but before logging the outcome leaves an unknown attempt, not a mystery."""
    _current.append(value)
    _history[0].log(Attempt(value, False, INVOKED))


def outcome_unknown(exc: BaseException) -> bool:
    """Whether an error told the writer that its commit may have landed.

    The library says so in the message ("the outcome of the commit ... is
    unknown"); every other error claims that nothing was committed, which
    the checker holds it to."""
    text = str(exc)
    return "outcome" in text and "unknown" in text


def run(args: argparse.Namespace) -> None:
    history = History(Path(args.history))
    _history.append(history)
    deadline = time.monotonic() + args.duration
    with zkflock.connect(args.hosts, root=args.root, namespace=args.namespace,
                         session_timeout=args.session_timeout, connect_timeout=30) as zk:
        f = zk.shared_file(args.name)
        view = Path(args.root) / args.name
        while time.monotonic() < deadline:
            _current.clear()
            try:
                if args.unfenced:
                    value = unfenced_step(zk, view, args.name, args.pause)
                else:
                    value = fenced_step(f, args.pause)
            # OSError too: a file-system error that escapes the library is a
            # failure the writer was told of, which the checker must see.
            except (ZkflockError, ValueError, OSError) as exc:
                history.log(Attempt(_current[0] if _current else None, False,
                                    f"{type(exc).__name__}: {exc}", outcome_unknown(exc)))
                time.sleep(0.05)
                continue
            history.log(Attempt(value, True))
    history.close()


def read_loop(args: argparse.Namespace) -> None:
    """Read the counter through the library until the deadline, logging each read."""
    history = History(Path(args.history))
    deadline = time.monotonic() + args.duration
    with zkflock.connect(args.hosts, root=args.root, namespace=args.namespace,
                         session_timeout=10.0, connect_timeout=30) as zk:
        f = zk.shared_file(args.name)
        while time.monotonic() < deadline:
            try:
                history.log(Read(_parse(f.read())))
            except (ZkflockError, ValueError, OSError) as exc:
                history.log(Read(None, f"{type(exc).__name__}: {exc}"))
            time.sleep(args.pause)
    history.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zkflock._harness.workload")
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--name", default="counter.txt")
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--history", required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--session-timeout", type=float, default=1.0)
    parser.add_argument("--unfenced", action="store_true")
    parser.add_argument("--reader", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    read_loop(args) if args.reader else run(args)


if __name__ == "__main__":
    main()
