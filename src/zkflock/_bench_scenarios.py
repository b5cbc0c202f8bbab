"""The benchmark scenarios. Each returns raw samples as plain JSON-able data;
``_bench_report`` turns them into medians, spreads and ratios.

Contenders are interleaved: in every round each runs one batch, in a
shuffled order, so a load spike on this shared machine hits all of them
rather than one.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkflock._bench import (
    Worker,
    server_zxid,
    shared_counters,
    start_workers,
    stop_workers,
    watches_fired,
)

_run_ids = itertools.count(1)


@dataclass(frozen=True)
class BenchConfig:
    """How long and how hard each scenario runs (``quick`` for the tests)."""

    warmup: int = 200  # uncounted cycles per contender
    batch: int = 100  # cycles per contender per round
    rounds: int = 20
    zxid_cycles: int = 50
    procs: tuple[int, ...] = (2, 4, 8, 16)
    herd: int = 64
    herd_base: int = 4
    loop_warmup: float = 1.0  # seconds of uncounted contention
    loop_seconds: float = 4.0
    repeats: int = 2
    many: tuple[int, ...] = (10, 100)
    many_rounds: int = 10
    fenced_cycles: int = 50

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            warmup=5, batch=10, rounds=2, zxid_cycles=5, procs=(2, 4), herd=8, herd_base=2,
            loop_warmup=0.2, loop_seconds=0.8, repeats=1, many=(3, 10), many_rounds=2,
            fenced_cycles=5,
        )


def _unique(what: str) -> str:
    return f"bench-{int(time.time())}-{next(_run_ids)}/{what}"


def _interleaved(workers: list[Worker], cfg: BenchConfig) -> dict[str, Any]:
    """Warm every worker up, then ``rounds`` rounds of one batch each."""
    for worker in workers:
        worker.send("batch", cfg.warmup)
    for worker in workers:
        worker.result()
    out: dict[str, Any] = {w.kind: {"lat_ns": [], "cpu_per_cycle_s": []} for w in workers}
    for _ in range(cfg.rounds):
        for worker in random.sample(workers, len(workers)):
            worker.send("batch", cfg.batch)
            res = worker.result()
            out[worker.kind]["lat_ns"].extend(res["lat_ns"])
            out[worker.kind]["cpu_per_cycle_s"].append(res["cpu_s"] / cfg.batch)
    return out


def _zxid_per_cycle(worker: Worker, hosts: str, cycles: int) -> float:
    """Transactions per uncontended cycle, read from the server: nothing else
    writes meanwhile (the other workers are idle; pings are not transactions)."""
    before = server_zxid(hosts)
    worker.send("batch", cycles)
    worker.result()
    return (server_zxid(hosts) - before) / cycles


def uncontended(hosts: str, cfg: BenchConfig, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    kinds = kinds or ("zkflock", "kazoo", "raw", "rawlist")
    workers = start_workers([(k, _unique(f"u-{k}")) for k in kinds], hosts)
    try:
        result: dict[str, Any] = {"contenders": _interleaved(workers, cfg), "zxid_per_cycle": {}}
        for worker in workers:
            result["zxid_per_cycle"][worker.kind] = _zxid_per_cycle(worker, hosts, cfg.zxid_cycles)
        result["batch"], result["rounds"] = cfg.batch, cfg.rounds
        return result
    finally:
        stop_workers(workers)


def cpu(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    return uncontended(hosts, cfg, kinds=("zkflock", "raw", "rawlist"))


def contend(hosts: str, kind: str, procs: int, cfg: BenchConfig) -> dict[str, Any]:
    """``procs`` processes of one contender on one lock: every grant, merged
    in grant order, plus the server's watch notifications meanwhile."""
    shared = shared_counters()
    workers = start_workers([(kind, _unique("c"))] * procs, hosts, shared)
    try:
        _run_loop(workers, cfg.loop_warmup)
        fired0 = watches_fired(hosts)
        results = _run_loop(workers, cfg.loop_seconds)
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
        "overlaps": sum(r["overlaps"] for r in results),
        "wakes": sum(r["wakes"] for r in results),
        "server_notifications": fired,
    }


def _run_loop(workers: list[Worker], seconds: float) -> list[dict[str, Any]]:
    until = time.monotonic() + 0.05 + seconds
    for worker in workers:
        worker.send("loop", until)
    return [worker.result(timeout=seconds + 120) for worker in workers]


def contended(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for procs in cfg.procs:
        for rep in range(cfg.repeats):
            order = ("zkflock", "kazoo") if rep % 2 == 0 else ("kazoo", "zkflock")
            runs.extend(contend(hosts, kind, procs, cfg) for kind in order)
    return {"runs": runs}


def herd(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for rep in range(cfg.repeats):
        runs.append(contend(hosts, "zkflock", cfg.herd, cfg))
        runs.append(contend(hosts, "zkflock", cfg.herd_base, cfg))
        if rep == 0:
            runs.append(contend(hosts, "naive", cfg.herd, cfg))
    (single,) = start_workers([("zkflock", _unique("z"))], hosts)
    try:
        single.send("batch", cfg.warmup)
        single.result()
        zxid = _zxid_per_cycle(single, hosts, cfg.zxid_cycles)
    finally:
        stop_workers([single])
    return {"runs": runs, "waiters": cfg.herd, "base": cfg.herd_base, "zxid_per_cycle": zxid}


def _missing(what: str) -> dict[str, Any]:
    return {"skipped": f"{what} does not exist yet in this checkout; scenario skipped"}


def many(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    from zkflock._session import Session

    if not hasattr(Session, "lock_many"):
        return _missing("Session.lock_many")
    from zkflock._bench_extra import many_scenario

    return many_scenario(hosts, cfg)


def fenced(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    from zkflock._session import Session

    if not hasattr(Session, "shared_file"):
        return _missing("Session.shared_file")
    from zkflock._bench_extra import fenced_scenario

    return fenced_scenario(hosts, cfg)


SCENARIOS: dict[str, Callable[[str, BenchConfig], dict[str, Any]]] = {
    "uncontended": uncontended,
    "contended": contended,
    "herd": herd,
    "many": many,
    "fenced": fenced,
    "cpu": cpu,
}


def run_bench(
    scenarios: list[str],
    cfg: BenchConfig,
    *,
    force_sync: tuple[bool, ...] = (False, True),
    hosts: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run ``scenarios`` on a fresh local ZooKeeper per forceSync setting (or
    on ``hosts``, whose forceSync we cannot know), and summarise them."""
    import tempfile

    from zkflock._bench import machine
    from zkflock._bench_report import check_targets, summarize
    from zkflock._server import LocalZooKeeper

    results: dict[str, Any] = {"meta": machine() | {"config": cfg.__dict__}, "settings": {}}
    settings: tuple[bool | None, ...] = (None,) if hosts else force_sync
    for fs in settings:
        label = "unknown (--hosts)" if fs is None else ("yes" if fs else "no")
        summaries: dict[str, Any] = {}
        raws: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="zkflock-bench-") as tmp:
            server = None
            if fs is not None:
                # 64 herd waiters are 64 sessions from one address: lift
                # ZooKeeper's default cap of 60 connections per client IP.
                server = LocalZooKeeper(tmp, tick_time=500, force_sync=fs,
                                        extra_config={"maxClientCnxns": "0"}).start()
            try:
                target = hosts or (server.hosts if server else "")
                for name in scenarios:
                    progress(f"forceSync={label}: {name} ...")
                    started = time.monotonic()
                    raws[name] = SCENARIOS[name](target, cfg)
                    summaries[name] = summarize(name, raws[name])
                    progress(f"forceSync={label}: {name} done in "
                             f"{time.monotonic() - started:.0f} s")
            finally:
                if server is not None:
                    server.stop()
        results["settings"][label] = {
            "summaries": summaries,
            "targets": check_targets(summaries, fs is True),
            "raw": raws,
        }
    results["meta"]["loadavg_after"] = machine()["loadavg"]
    return results
