"""The client's hot path: what kazoo's per-iteration ``select`` costs.

kazoo's connection thread calls ``handler.select`` before every read and
write and once per loop turn: about nine times per acquire+release (strace
of a worker: nine ``epoll_create1``/``epoll_ctl``/``epoll_wait``/``close``
sets per cycle, ``benchmarks/handoff_cost.py --strace 2``). Its threading
handler's ``select`` is ``kazoo.handlers.utils.selector_select``, which
builds and closes a new epoll selector on each call (~24 µs of CPU here,
``select.select`` of the same sockets ~2 µs).

This scenario measures a handler whose ``select`` is ``select.select``
(falling back to kazoo's for descriptors past ``FD_SETSIZE``), passed the
supported way (``KazooClient(handler=...)``) for kazoo and set on the
worker's own kazoo class for zkflock (the library has no handler option):
the ``*_select`` contenders, side by side with the stock ones, same run.
"""

from __future__ import annotations

import select
import statistics
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler

from zkflock._bench.contenders import SESSION_TIMEOUT, KazooContender, ZkflockContender
from zkflock._bench.report import spread, summarize_run
from zkflock._bench.runs import contend
from zkflock._bench.workers import interleaved, start_workers, stop_workers, unique_name

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig


class PlainSelectHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler with one ``select(2)`` per call."""

    def select(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return select.select(*args, **kwargs)
        except ValueError:  # a descriptor past FD_SETSIZE: kazoo's own way
            return super().select(*args, **kwargs)


class ZkflockSelect(ZkflockContender):
    def __init__(self, hosts: str, name: str) -> None:
        # This worker process's own kazoo class: nothing else runs in it.
        SequentialThreadingHandler.select = PlainSelectHandler.select
        super().__init__(hosts, name)


class KazooSelect(KazooContender):
    def __init__(self, hosts: str, name: str) -> None:
        self._client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT,
                                   handler=PlainSelectHandler())
        self._client.start(timeout=30)
        self._init_lock(name)


KINDS = ("zkflock", "zkflock_select", "kazoo", "kazoo_select")


def hotpath(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    """Uncontended latency and CPU of the four, then zkflock against
    zkflock_select contended at the first two process counts."""
    workers = start_workers([(k, unique_name(f"h-{k}")) for k in KINDS], hosts)
    try:
        raw = interleaved(workers, cfg)
    finally:
        stop_workers(workers)
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
    cpu = {k: spread(v["cpu_per_cycle_s"], 1e6) for k, v in raw.items()}
    ratios: dict[str, float] = {}
    for base in ("zkflock", "kazoo"):
        ratios[f"{base}_select/{base} p50"] = lat[f"{base}_select"]["p50"] / lat[base]["p50"]
        ratios[f"{base}_select/{base} cpu p50"] = cpu[f"{base}_select"]["p50"] / cpu[base]["p50"]
    rates: dict[str, dict[str, float]] = {}
    for procs in cfg.procs[:2]:
        runs = []
        for rep in range(cfg.repeats):
            order = ("zkflock", "zkflock_select")[:: 1 if rep % 2 == 0 else -1]
            runs += [summarize_run(contend(hosts, kind, procs, cfg)) for kind in order]
        rates[str(procs)] = {kind: statistics.median(r["handoffs_per_s"] for r in runs
                                                     if r["kind"] == kind)
                             for kind in ("zkflock", "zkflock_select")}
        ratios[f"zkflock_select/zkflock handoffs/s @{procs}"] = (
            rates[str(procs)]["zkflock_select"] / rates[str(procs)]["zkflock"])
    return {"latency_ms": lat, "cpu_us_per_cycle": cpu, "handoffs_per_s": rates,
            "ratios": ratios,
            "facts": {f"{k} p50 ms / cpu us": (round(lat[k]["p50"], 3), round(cpu[k]["p50"]))
                      for k in KINDS}}
