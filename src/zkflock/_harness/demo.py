"""The seed scenario: several client processes share ``data/data.txt``.

Each client is its own OS process (``python -m zkflock._harness.demo client ...``):
it takes the exclusive lock on the file's name, reads the file, appends one
line ``client N token=T at=TIME``, holds the lock briefly and releases it. It
reports its state (waiting, holding, done) to the parent as JSON lines on
stdout; the parent shows them live and checks the file at the end with
:func:`check_demo_file`.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from zkflock._errors import ZkflockError

LINE_RE = re.compile(r"^client (\d+) token=(\d+) at=(\S+)$")


# -- the check (pure) -------------------------------------------------------------


def check_demo_file(
    text: str, clients: int, reported: dict[int, int] | None = None, rounds: int = 1
) -> list[str]:
    """Problems with the demo's file: exactly ``rounds`` whole lines per client
    1..N, tokens strictly increasing in file order, and (when ``reported`` maps
    clients to the tokens they reported) each line carrying its client's
    token from this run. Empty list: the check holds."""
    problems: list[str] = []
    for client, token in sorted((reported or {}).items()):
        if f"client {client} token={token} " not in text:
            problems.append(
                f"client {client} reported token {token}, but no line of this run says so: "
                "the file does not show this run's writes"
            )
    if text and not text.endswith("\n"):
        problems.append("the last line is torn: the file does not end with a newline")
    seen: dict[int, int] = {}
    previous: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = LINE_RE.match(line)
        if match is None:
            problems.append(f"line {number} is not a whole demo line: {line!r}")
            continue
        client, token = int(match.group(1)), int(match.group(2))
        if not 1 <= client <= clients:
            problems.append(f"line {number} names client {client}, but clients 1..{clients} ran")
        seen[client] = seen.get(client, 0) + 1
        if previous is not None and token <= previous:
            problems.append(
                f"line {number}: token {token} is not greater than the line before's "
                f"{previous}: the writes overlapped or went out of lock order"
            )
        previous = token
    for client in range(1, clients + 1):
        count = seen.get(client, 0)
        if count != rounds:
            problems.append(f"client {client} wrote {count} lines, not exactly {rounds}")
    return problems


# -- one client (a process of its own) --------------------------------------------


def demo_line(index: int, token: int) -> str:
    at = datetime.now().astimezone().isoformat(timespec="milliseconds")
    return f"client {index} token={token} at={at}\n"


def _report(state: str, **fields: Any) -> None:
    # The time of the event itself: reports from different clients can reach
    # the parent in another order than they happened (one pipe each).
    print(json.dumps({"state": state, "at": time.time(), **fields}), flush=True)


def client_main(argv: Sequence[str]) -> int:
    """``python -m zkflock._harness.demo client --index N ...``: one demo client."""
    from zkflock._session import connect

    parser = argparse.ArgumentParser(prog="python -m zkflock._harness.demo client")
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        with connect(args.hosts, root=args.root) as zk:
            shared = zk.shared_file(args.file)
            _report("waiting")
            with shared.edit(timeout=args.timeout, purpose=f"demo client {args.index}") as doc:
                _report("holding", token=doc.token)
                before = doc.text
                doc.text += demo_line(args.index, doc.token)
                time.sleep(args.hold)
                token = doc.token
            _report("done", token=token, lines_before=len(before.splitlines()))
    except ZkflockError as err:
        _report("error", message=str(err))
        return err.exit_code
    return 0


# -- the parent ---------------------------------------------------------------------


Event = tuple[int, dict[str, Any]]  # (client index, report)


def _pump(index: int, stream: IO[str], events: queue.Queue[Event]) -> None:
    for raw in stream:
        try:
            report = json.loads(raw)
        except json.JSONDecodeError:
            report = {"state": "output", "message": raw.rstrip()}
        events.put((index, report))
    events.put((index, {"state": "exited"}))


def start_clients(hosts: str, root: Path, file: str, clients: int,
                  hold: float) -> tuple[list[subprocess.Popen[str]], queue.Queue[Event]]:
    events: queue.Queue[Event] = queue.Queue()
    procs = []
    for index in range(1, clients + 1):
        proc = subprocess.Popen(
            [sys.executable, "-m", "zkflock._harness.demo", "client", "--hosts", hosts,
             "--root", str(root), "--file", file, "--index", str(index), "--hold", str(hold)],
            stdout=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        threading.Thread(target=_pump, args=(index, proc.stdout, events), daemon=True).start()
    return procs, events


def collect(procs: list[subprocess.Popen[str]], events: queue.Queue[Event],
            on_event: Callable[[int, dict[str, Any]], None], timeout: float) -> list[str]:
    """Feed every report to ``on_event`` until all clients exited; problems found."""
    deadline = time.monotonic() + timeout
    running = len(procs)
    while running:
        try:
            index, report = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return [f"the clients did not finish within {timeout:g} s"]
        if report["state"] == "exited":
            running -= 1
            continue
        on_event(index, report)
    problems = []
    for index, proc in enumerate(procs, start=1):
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            problems.append(f"client {index} failed with exit code {code}")
    return problems


def stop_clients(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        sys.exit(client_main(sys.argv[2:]))
    sys.exit("usage: python -m zkflock._harness.demo client --hosts H --root R --file F --index N")
