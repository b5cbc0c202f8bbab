"""``zkflock scenario client`` and ``zkflock scenario check``: the seed
scenario with one client per container (docker-compose.yml).

A client is the demo's client (lock ``data.txt``, read it, append
``client N token=T at=TIME`` through a fenced commit, release), run for
``--rounds`` rounds, and it rides out a lost connection or a lost lock: a
ZooKeeper leader killed mid-run (the ensemble variant) costs a retry, never a
line lost or written twice. It reports each step as a JSON line on stdout
(``docker compose logs`` collects them). ``check`` reads the plain file and
those reports afterwards and checks what ``make demo`` checks — one whole
line per client and round, tokens strictly increasing in file order — and
that no two committed holds overlapped in time (the containers share the
host's clock).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from zkflock._errors import (
    AuthFailedError,
    ConnectError,
    LockLostError,
    LockTimeoutError,
    StaleTokenError,
)
from zkflock._files.shared_file import SharedFile
from zkflock._harness.demo import check_demo_file, demo_line

# What a round retries: a broken connection, a lock lost or refused at commit
# (the fenced commit then wrote nothing), a wait that outlived an election.
_RETRIED = (ConnectError, LockLostError, StaleTokenError, LockTimeoutError)


def register(group: click.Group) -> None:
    group.add_command(scenario)


@click.group()
def scenario() -> None:
    """The container scenario's client and its check (see docker-compose.yml)."""


# -- the client ---------------------------------------------------------------------


def _report(index: int, round_: int, state: str, **fields: Any) -> None:
    record = {"client": index, "round": round_, "state": state, "at": time.time(), **fields}
    print(json.dumps(record), flush=True)


@scenario.command("client")
@click.option("--index", type=click.IntRange(1), required=True, help="This client's number N.")
@click.option("--file", "file_name", default="data.txt", show_default=True,
              help="The shared file (relative to --root); also the lock's name.")
@click.option("--rounds", type=click.IntRange(1), default=1, show_default=True,
              help="How many lines this client appends, one lock hold each.")
@click.option("--hold", type=click.FloatRange(min=0), default=0.5, show_default=True,
              metavar="SECONDS", help="How long each hold lasts after writing.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="SECONDS", help="How long one attempt waits for the lock.")
@click.option("--give-up", type=click.FloatRange(min=0), default=300.0, show_default=True,
              metavar="SECONDS", help="How long a round keeps retrying before it fails.")
@click.pass_context
def client(ctx: click.Context, index: int, file_name: str, rounds: int, hold: float,
           timeout: float, give_up: float) -> None:
    """Append one demo line per round to FILE under its lock (a fenced commit).

    ZooKeeper comes from --hosts or ZKFLOCK_HOSTS, the shared root from --root
    or ZKFLOCK_ROOT. Exits 0 once every round's line is committed; with an
    error's exit code when a round could not be committed within --give-up.
    """
    with ctx.obj.connect() as zk:
        shared = zk.shared_file(file_name)
        for round_ in range(1, rounds + 1):
            _one_round(shared, index, round_, hold, timeout, time.monotonic() + give_up)
    _report(index, rounds, "finished", rounds=rounds)


def _one_round(shared: SharedFile, index: int, round_: int, hold: float, timeout: float,
               deadline: float) -> None:
    while True:
        token: int | None = None
        _report(index, round_, "waiting")
        try:
            with shared.edit(timeout=timeout, purpose=f"scenario client {index}") as doc:
                token = doc.token
                _report(index, round_, "holding", token=token)
                doc.text += demo_line(index, token)
                time.sleep(hold)
                _report(index, round_, "committing", token=token)
        except AuthFailedError:
            raise
        except _RETRIED as err:
            _report(index, round_, "retry", token=token, message=str(err))
            if token is not None and _landed(shared, index, token, deadline):
                _report(index, round_, "done", token=token, recovered=True)
                return
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)  # a pause between attempts while an election runs
            continue
        _report(index, round_, "done", token=token)
        return


def _landed(shared: SharedFile, index: int, token: int, deadline: float) -> bool:
    """Whether this attempt's line is committed after all (a commit whose
    reply was lost). Asks until ZooKeeper answers: guessing "no" could write
    the line twice."""
    while True:
        try:
            return f"client {index} token={token} at=" in shared.read()
        except ConnectError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


# -- the check (pure) ---------------------------------------------------------------


def check_rounds_file(text: str, clients: int, rounds: int) -> list[str]:
    """Problems with a file of ``rounds`` lines per client: each line whole,
    clients 1..N only, tokens strictly increasing in file order, exactly
    ``rounds`` lines per client. One round is the demo's own check."""
    return check_demo_file(text, clients, rounds=rounds)


@dataclass(frozen=True)
class Hold:
    """One committed hold as its client saw it: from ``holding`` (after the
    acquire) to ``committing`` (before the commit released the lock)."""

    client: int
    token: int
    start: float
    end: float


def parse_reports(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The clients' JSON reports in ``lines`` (``docker compose logs`` output:
    a service prefix before each report); other lines are skipped."""
    reports = []
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "client" in record and "state" in record:
            reports.append(record)
    return reports


def committed_holds(reports: Sequence[dict[str, Any]]) -> list[Hold]:
    """The holds whose commit landed, sorted by start. A committed hold held
    its lock node from acquire to commit, so two of them can never overlap."""
    starts: dict[tuple[int, int], float] = {}
    ends: dict[tuple[int, int], float] = {}
    holds = []
    for r in reports:
        key = (int(r["client"]), int(r.get("token") or 0))
        if r["state"] == "holding":
            starts[key] = float(r["at"])
        elif r["state"] == "committing":
            ends[key] = float(r["at"])
        elif r["state"] == "done" and key in starts and key in ends:
            holds.append(Hold(key[0], key[1], starts[key], ends[key]))
    return sorted(holds, key=lambda h: h.start)


def check_reports(reports: Sequence[dict[str, Any]], text: str, clients: int,
                  rounds: int) -> list[str]:
    """Problems the reports show: a client that did not finish its rounds, a
    reported commit missing from the file, two committed holds overlapping."""
    problems = []
    for c in range(1, clients + 1):
        done = [r for r in reports if r["client"] == c and r["state"] == "done"]
        if len(done) != rounds:
            problems.append(f"client {c} reported {len(done)} committed rounds, not {rounds}")
        problems += [
            f"client {c} reported token {r['token']} committed, but no line of the file says so"
            for r in done if f"client {c} token={r['token']} at=" not in text
        ]
    # Against the hold that ends last so far, not only the one just before:
    # a long hold can overlap several that start inside it.
    latest: Hold | None = None
    for hold in committed_holds(reports):
        if latest is not None and hold.start < latest.end:
            problems.append(
                f"client {hold.client} (token {hold.token}) held the lock from "
                f"{hold.start:.3f} while client {latest.client} (token {latest.token}) "
                f"held it until {latest.end:.3f}: two holds overlapped"
            )
        if latest is None or hold.end > latest.end:
            latest = hold
    return problems


def longest_pause(holds: Sequence[Hold]) -> float:
    """The longest time between one committed hold's end and the next one's
    start (how long an election stalled the clients)."""
    return max((b.start - a.end for a, b in itertools.pairwise(holds)), default=0.0)


# -- the check (command) -------------------------------------------------------------


@scenario.command("check")
@click.option("--clients", type=click.IntRange(1), default=3, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=1, show_default=True)
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("/data/data.txt"), show_default=True,
              help="The plain file, as `cat` reads it.")
@click.option("--reports", type=click.File("r"), default=None,
              help="The clients' output (docker compose logs), '-' for stdin.")
@click.pass_context
def check(ctx: click.Context, clients: int, rounds: int, path: Path,
          reports: Any) -> None:
    """Print FILE and check it (and the clients' reports); exit 0 when it holds."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    click.echo(text, nl=False)
    problems = check_rounds_file(text, clients, rounds)
    pause = ""
    if reports is not None:
        records = parse_reports(reports)
        problems += check_reports(records, text, clients, rounds)
        pause = f"; longest pause between holds {longest_pause(committed_holds(records)):.2f} s"
    if problems:
        for problem in problems:
            click.echo(f"zkflock: error: {problem}", err=True)
        click.echo("the scenario check FAILED; the file above shows what was written", err=True)
        ctx.exit(1)
    click.echo(f"check passed: {clients} clients x {rounds} rounds, whole lines, fencing "
               f"tokens strictly increasing{', holds disjoint' if reports else ''}{pause}")
    sys.stdout.flush()
