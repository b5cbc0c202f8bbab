"""The benchmark scenarios. Each returns raw samples as plain JSON-able data;
``report`` turns them into medians, spreads and ratios.

Contenders are interleaved: in every round each runs one batch, in a
shuffled order, so a load spike on this shared machine hits all of them
rather than one.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkflock._bench.files import files
from zkflock._bench.hotpath import hotpath
from zkflock._bench.hundred import hundred
from zkflock._bench.observer import observer
from zkflock._bench.probes import servers
from zkflock._bench.report import spread
from zkflock._bench.runs import contend, zxid_per_cycle
from zkflock._bench.scale import scale
from zkflock._bench.startup import startup
from zkflock._bench.workers import interleaved, start_workers, stop_workers, unique_name


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
    hundred: int = 100  # processes on one lock in ``hundred``

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            warmup=5, batch=10, rounds=2, zxid_cycles=5, procs=(2, 4), herd=8, herd_base=2,
            loop_warmup=0.2, loop_seconds=0.8, repeats=1, many=(3, 10), many_rounds=2,
            fenced_cycles=5, hundred=6,
        )


def uncontended(hosts: str, cfg: BenchConfig, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    kinds = kinds or ("zkflock", "kazoo", "raw", "rawlist")
    # On an ensemble, each contender once per node: the same placements.
    per_kind = len(servers(hosts))
    specs = [(k, unique_name(f"u-{k}")) for k in kinds for _ in range(per_kind)]
    workers = start_workers(specs, hosts)
    try:
        result: dict[str, Any] = {"contenders": interleaved(workers, cfg), "zxid_per_cycle": {}}
        for worker in workers:
            result["zxid_per_cycle"][worker.kind] = zxid_per_cycle(worker, hosts, cfg.zxid_cycles)
        result["batch"], result["rounds"] = cfg.batch * per_kind, cfg.rounds
        return result
    finally:
        stop_workers(workers)


def cpu(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    return uncontended(hosts, cfg, kinds=("zkflock", "raw", "rawlist"))


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
    (single,) = start_workers([("zkflock", unique_name("z"))], hosts)
    try:
        single.send("batch", cfg.warmup)
        single.result()
        zxid = zxid_per_cycle(single, hosts, cfg.zxid_cycles)
    finally:
        stop_workers([single])
    return {"runs": runs, "waiters": cfg.herd, "base": cfg.herd_base, "zxid_per_cycle": zxid}


def many(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"latency_ms": {}, "ratios": {}}
    small = dataclasses.replace(cfg, warmup=2, batch=3, rounds=cfg.many_rounds)
    for count in cfg.many:
        kinds = [f"zkflock_many:{count}", f"kazoo_many:{count}"]
        workers = start_workers([(k, unique_name(f"m{count}")) for k in kinds], hosts)
        try:
            raw = interleaved(workers, small)
        finally:
            stop_workers(workers)
        lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
        out["latency_ms"] |= lat
        out["ratios"][f"kazoo/zkflock @{count}"] = lat[kinds[1]]["p50"] / lat[kinds[0]]["p50"]
    out["facts"] = {k: round(v["p50"], 2) for k, v in out["latency_ms"].items()}
    return out


def fenced(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    small = dataclasses.replace(cfg, warmup=5, batch=10, rounds=max(2, cfg.fenced_cycles // 10))
    with tempfile.TemporaryDirectory(prefix="zkflock-bench-files-") as root:
        rel = unique_name("f").replace("/", "-")
        workers = start_workers([(k, f"{root}::{rel}-{k}") for k in ("fenced", "plain")], hosts)
        try:
            raw = interleaved(workers, small)
        finally:
            stop_workers(workers)
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
    ratio = lat["plain"]["p50"] / lat["fenced"]["p50"]
    return {"latency_ms": lat, "ratios": {"fenced/plain throughput": ratio},
            "facts": {k: round(v["p50"], 2) for k, v in lat.items()}}


SCENARIOS: dict[str, Callable[[str, BenchConfig], dict[str, Any]]] = {
    "uncontended": uncontended,
    "contended": contended,
    "herd": herd,
    "many": many,
    "fenced": fenced,
    "cpu": cpu,
    "hundred": hundred,
    "observer": observer,
    "hotpath": hotpath,
    "startup": startup,
    "scale": scale,
    "files": files,
}
"""Every scenario by name: ``name(hosts, cfg) -> raw samples``. A scenario of
another module is registered here with one line; ``summarize`` passes on the
raw samples of a scenario it does not know, so its own summary can be them."""

__all__ = ["SCENARIOS", "BenchConfig", "contend"]
