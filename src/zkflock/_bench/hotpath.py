"""The client's hot path: what kazoo's per-iteration ``select`` costs.

kazoo's connection thread calls ``handler.select`` before every read and
write and once per loop turn: about nine times per acquire+release (strace
of a worker: nine ``epoll_create1``/``epoll_ctl``/``epoll_wait``/``close``
sets per cycle, ``benchmarks/handoff_cost.py --strace 2``). Its threading
handler's ``select`` is ``kazoo.handlers.utils.selector_select``, which
builds and closes a new epoll selector on each call (~24 µs of CPU here,
``select.select`` of the same sockets ~2 µs).

zkflock's client now passes ``zkflock._zk.client.OneSelectHandler`` (one
``select(2)`` per call, kazoo's own way past ``FD_SETSIZE``). This scenario
keeps measuring what that saves, side by side in one run: ``zkflock``
against ``zkflock_epoll`` (the stock selector put back in that worker
process), and kazoo's ``Lock`` with the stock handler against
``kazoo_select`` (the same handler, passed the supported way,
``KazooClient(handler=...)``).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler

from zkflock._bench.contenders import SESSION_TIMEOUT, KazooContender, ZkflockContender
from zkflock._bench.report import spread, summarize_run
from zkflock._bench.runs import contend
from zkflock._bench.workers import interleaved, start_workers, stop_workers, unique_name
from zkflock._zk.client import OneSelectHandler

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig


class ZkflockEpoll(ZkflockContender):
    """zkflock with kazoo's stock selector (what it used before)."""

    def __init__(self, hosts: str, name: str) -> None:
        # This worker process's own class: nothing else runs in it.
        OneSelectHandler.select = SequentialThreadingHandler.select  # type: ignore[method-assign]
        super().__init__(hosts, name)


class KazooSelect(KazooContender):
    def __init__(self, hosts: str, name: str) -> None:
        self._client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT,
                                   handler=OneSelectHandler())
        self._client.start(timeout=30)
        self._init_lock(name)


KINDS = ("zkflock_epoll", "zkflock", "kazoo", "kazoo_select")
PAIRS = (("zkflock", "zkflock_epoll"), ("kazoo_select", "kazoo"))  # (with, without)


def hotpath(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    """Uncontended latency and CPU of the four, then zkflock against
    zkflock_epoll contended at the first two process counts."""
    workers = start_workers([(k, unique_name(f"h-{k}")) for k in KINDS], hosts)
    try:
        raw = interleaved(workers, cfg)
    finally:
        stop_workers(workers)
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
    cpu = {k: spread(v["cpu_per_cycle_s"], 1e6) for k, v in raw.items()}
    ratios: dict[str, float] = {}
    for new, old in PAIRS:
        ratios[f"{new}/{old} p50"] = lat[new]["p50"] / lat[old]["p50"]
        ratios[f"{new}/{old} cpu p50"] = cpu[new]["p50"] / cpu[old]["p50"]
    rates: dict[str, dict[str, float]] = {}
    for procs in cfg.procs[:2]:
        runs = []
        for rep in range(cfg.repeats):
            order = ("zkflock", "zkflock_epoll")[:: 1 if rep % 2 == 0 else -1]
            runs += [summarize_run(contend(hosts, kind, procs, cfg)) for kind in order]
        rates[str(procs)] = {kind: statistics.median(r["handoffs_per_s"] for r in runs
                                                     if r["kind"] == kind)
                             for kind in ("zkflock", "zkflock_epoll")}
        ratios[f"zkflock/zkflock_epoll handoffs/s @{procs}"] = (
            rates[str(procs)]["zkflock"] / rates[str(procs)]["zkflock_epoll"])
    return {"latency_ms": lat, "cpu_us_per_cycle": cpu, "handoffs_per_s": rates,
            "ratios": ratios,
            "facts": {f"{k} p50 ms / cpu us": (round(lat[k]["p50"], 3), round(cpu[k]["p50"]))
                      for k in KINDS}}
