"""A fenced append with its metadata read behind the lock's create, the same
append with the read made separately after the grant (the path before
``read_behind_queue``), and the plain lock + append + fsync: latency p50 and
the client's CPU per operation, interleaved in one process.

    .venv/bin/python benchmarks/fenced_append_cost.py            # 3 runs of 400 each

It starts its own standalone ZooKeeper (forceSync=no) in a temporary folder
and stops it. The separate read is had by making ``read_at_grant`` answer
None, which is what the writer does after a wait. The CPU is
``time.process_time`` (every thread of the process, kazoo's included), each
kind measured in its own block of operations right after its latencies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zkflock
from zkflock._files import shared_file
from zkflock._server.local import LocalZooKeeper

LINE = "a small line\n"


def _never(early: Any, held: Any) -> tuple[bytes, int] | None:
    return None  # what read_at_grant answers after a wait: the writer reads again


def _kinds(zk: zkflock.Session, root: Path, tag: str) -> dict[str, Callable[[], None]]:
    early = shared_file.read_at_grant
    behind, separate = zk.shared_file(f"behind-{tag}.txt"), zk.shared_file(f"separate-{tag}.txt")

    def read_behind() -> None:
        shared_file.read_at_grant = early
        behind.append(LINE)

    def separate_read() -> None:
        shared_file.read_at_grant = _never
        separate.append(LINE)

    def plain() -> None:
        with zk.lock(f"plain-{tag}.txt"), open(root / "plain.txt", "a") as out:
            out.write(LINE)
            out.flush()
            os.fsync(out.fileno())

    return {"read behind": read_behind, "separate read": separate_read, "plain": plain}


def run(zk: zkflock.Session, root: Path, tag: str, n: int) -> dict[str, object]:
    kinds = _kinds(zk, root, tag)
    for fn in kinds.values():  # warm up
        for _ in range(20):
            fn()
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    order = list(kinds.items())
    for i in range(n):
        for key, fn in order[i % 3:] + order[: i % 3]:
            t0 = time.perf_counter()
            fn()
            lat[key].append((time.perf_counter() - t0) * 1000)
    cpu = {}
    for key, fn in kinds.items():
        c0 = time.process_time()
        for _ in range(n // 4):
            fn()
        cpu[key] = round((time.process_time() - c0) / (n // 4) * 1000, 3)
    p50 = {k: round(statistics.median(v), 3) for k, v in lat.items()}
    return {"p50 ms": p50, "client CPU ms per op": cpu,
            "plain/read behind": round(p50["plain"] / p50["read behind"], 3),
            "plain/separate read": round(p50["plain"] / p50["separate read"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=400, help="operations of each kind per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zkflock-fenced-cost-") as base, \
            LocalZooKeeper(Path(base) / "zk", force_sync=False) as server:
        root = Path(base) / "root"
        root.mkdir()
        with zkflock.connect(server.hosts, root=root) as zk:
            for r in range(args.runs):
                load = os.getloadavg()
                out = run(zk, root, str(r), args.n)
                out["load average before, after"] = [[round(x, 2) for x in load],
                                                     [round(x, 2) for x in os.getloadavg()]]
                print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
