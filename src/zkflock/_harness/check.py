"""The history checker of the counter workload (pure: no I/O beyond parsing).

Each client logs every increment it attempted: the value it tried to write
(``n + 1``) and whether the commit was acknowledged. With the final value of
the counter the checker decides:

- ``lost``: acknowledged increments that the final value does not account
  for (acknowledged count minus the distinct acknowledged values in
  ``1..final``). A paused writer that overwrote newer values shows up here.
- ``duplicated``: values acknowledged more than once (two writers both
  believed they moved the counter from ``n`` to ``n + 1``).
- ``unexplained``: values in ``1..final`` that nobody acknowledged and nobody
  even attempted (a counter that jumped).

Attempts that failed (refused, timed out, connection lost) may or may not
have landed when their outcome was unknown, so a value in ``1..final`` that
only an unacknowledged attempt wrote is allowed (``indeterminate``) when one
of its writers was told "outcome unknown" (or was killed before it could be
told anything). When every writer of such a value was told a plain failure,
the writer was told a committed write failed (``misreported``): a caller who
retries then writes it twice.

A reader's history (``parse_reads``) is judged by ``check_reads``: every
``read()`` succeeded, and the counter never went backwards.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Attempt:
    """One increment a client attempted."""

    value: int | None  # None: it failed before reading the counter
    ok: bool
    error: str = ""
    unknown: bool = False  # the writer was told the outcome is unknown (or was killed)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class Verdict:
    attempted: int
    acknowledged: int
    final: int
    lost: int
    duplicated: int
    unexplained: int
    indeterminate: int
    misreported: int = 0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.unexplained == 0
                and self.misreported == 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


INVOKED = "invoked"


def parse_history(lines: Iterable[str]) -> list[Attempt]:
    """Attempts from one client's history file.

    A client logs an ``invoked`` record before it commits and the outcome
    after; an invocation with no outcome (the client was killed in between)
    becomes an unknown attempt. A torn last line is skipped."""
    out = []
    pending: Attempt | None = None
    for line in lines:
        try:
            doc = json.loads(line)
            value = doc["value"]
            record = Attempt(None if value is None else int(value), bool(doc["ok"]),
                             str(doc.get("error", "")), bool(doc.get("unknown", False)))
        except (ValueError, KeyError, TypeError):
            continue
        if pending is not None and record.value != pending.value:
            out.append(Attempt(pending.value, False, "unknown", unknown=True))
        pending = None
        if record.error == INVOKED:
            pending = record
        else:
            out.append(record)
    if pending is not None:
        out.append(Attempt(pending.value, False, "unknown", unknown=True))
    return out


def check(attempts: Iterable[Attempt], final: int) -> Verdict:
    """Judge a whole run: every client's attempts and the counter's final value."""
    attempts = list(attempts)
    acked = Counter(a.value for a in attempts if a.ok and a.value is not None)
    tried = {a.value for a in attempts if not a.ok and a.value is not None}
    told_unknown = {a.value for a in attempts if a.unknown and a.value is not None}
    in_range = {v for v in acked if 1 <= v <= final}
    acknowledged = sum(acked.values())
    missing = [v for v in range(1, final + 1) if v not in acked]
    return Verdict(
        attempted=len(attempts),
        acknowledged=acknowledged,
        final=final,
        lost=acknowledged - len(in_range),
        duplicated=sum(count - 1 for count in acked.values()),
        unexplained=sum(1 for v in missing if v not in tried),
        indeterminate=sum(1 for v in missing if v in told_unknown),
        misreported=sum(1 for v in missing if v in tried and v not in told_unknown),
    )


@dataclass(frozen=True)
class Read:
    """One ``read()`` of the counter by a reader: its value, or its error."""

    value: int | None
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class ReadVerdict:
    reads: int
    errors: int
    backwards: int  # reads that returned less than an earlier read of the same reader
    last: int  # the highest value read
    first_error: str = ""

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.backwards == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def parse_reads(lines: Iterable[str]) -> list[Read]:
    """Reads from one reader's history file (a torn last line is skipped)."""
    out = []
    for line in lines:
        try:
            doc = json.loads(line)
            value = doc["value"]
            out.append(Read(None if value is None else int(value), str(doc.get("error", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def check_reads(histories: Iterable[list[Read]]) -> ReadVerdict:
    """Judge every reader: no failed read, and no reader saw the counter go back."""
    reads = errors = backwards = last = 0
    first_error = ""
    for history in histories:
        highest = 0
        for read in history:
            reads += 1
            if read.value is None:
                errors += 1
                first_error = first_error or read.error
                continue
            if read.value < highest:
                backwards += 1
            highest = max(highest, read.value)
        last = max(last, highest)
    return ReadVerdict(reads, errors, backwards, last, first_error)
