"""The runs every scenario is made of: contention on one lock, zxids per cycle."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from zkflock._bench.probes import server_zxid, watches_fired
from zkflock._bench.workers import (
    Worker,
    shared_counters,
    start_workers,
    stop_workers,
    unique_name,
)

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig


def zxid_per_cycle(worker: Worker, hosts: str, cycles: int) -> float:
    """Transactions per uncontended cycle, read from the server: nothing else
    writes meanwhile (the other workers are idle; pings are not transactions)."""
    before = server_zxid(hosts)
    worker.send("batch", cycles)
    worker.result()
    return (server_zxid(hosts) - before) / cycles


def contend(hosts: str, kind: str, procs: int, cfg: BenchConfig) -> dict[str, Any]:
    """``procs`` processes of one contender on one lock: every grant, merged
    in grant order, each wait, the server's watch notifications meanwhile and
    each process's memory at the end."""
    shared = shared_counters()
    workers = start_workers([(kind, unique_name("c"))] * procs, hosts, shared)
    try:
        run_loop(workers, cfg.loop_warmup)
        fired0 = watches_fired(hosts)
        results = run_loop(workers, cfg.loop_seconds)
        fired = watches_fired(hosts) - fired0
    finally:
        stop_workers(workers)
    grants = sorted(g for r in results for g in r["grants"])
    return {
        "kind": kind,
        "procs": procs,
        "seconds": cfg.loop_seconds,
        "grants": len(grants),
        "grant_times": [g[2] for g in grants],
        "tokens": [g[1] for g in grants],
        "waits": [w for r in results for w in r["waits"]],
        "overlaps": sum(r["overlaps"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "wakes": sum(r["wakes"] for r in results),
        "server_notifications": fired,
        "memory_kib": [r["memory_kib"] for r in results],
    }


def run_loop(workers: list[Worker], seconds: float) -> list[dict[str, Any]]:
    """Every worker contends for ``seconds`` from one shared start."""
    # Telling a hundred workers takes a while on 2 cores: start them together.
    until = time.monotonic() + 0.05 + 0.002 * len(workers) + seconds
    for worker in workers:
        worker.send("loop", until)
    return [worker.result(timeout=seconds + 120) for worker in workers]
