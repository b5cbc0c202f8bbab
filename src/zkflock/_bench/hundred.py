"""A hundred processes on one lock, zkflock against kazoo's ``Lock``.

Each run is ``cfg.hundred`` processes (one session each) contending for
``cfg.loop_seconds`` after ``cfg.loop_warmup`` uncounted seconds, bounded in
time like every contended run, and in count by the processes; the kinds
alternate which goes first. Reported: handoffs/s, watch notifications per
release (all servers' ``mntr``), the wait from asking to holding (p50, p99)
and each contender process's memory.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from zkflock._bench.report import pct, summarize_run
from zkflock._bench.runs import contend

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig

KINDS = ("zkflock", "kazoo")


def hundred(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for rep in range(cfg.repeats):
        order = KINDS if rep % 2 == 0 else KINDS[::-1]
        runs.extend(contend(hosts, kind, cfg.hundred, cfg) for kind in order)
    return {"runs": runs, "procs": cfg.hundred}


def summarize_hundred(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over the runs of each kind; the memory of every process."""
    runs = [summarize_run(r) for r in raw["runs"]]
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [r for r in runs if r["kind"] == kind]
        raws = [r for r in raw["runs"] if r["kind"] == kind]
        if not mine:
            continue
        memory = [m for r in raws for m in r["memory_kib"]]
        per_kind[kind] = {
            "handoffs_per_s": statistics.median(r["handoffs_per_s"] for r in mine),
            "handoffs_per_s_runs": [r["handoffs_per_s"] for r in mine],
            "notifications_per_release": statistics.median(
                r["server_notifications_per_handoff"] for r in mine),
            "wait_ms": {"p50": statistics.median(r["wait_ms"]["p50"] for r in mine),
                        "p99": statistics.median(r["wait_ms"]["p99"] for r in mine)},
            "memory_kib": {key: pct([m[key] for m in memory], 0.5)
                           for key in ("rss", "pss", "private")},
            "overlaps": sum(r["overlaps"] for r in mine),
            "fifo_overtakes": sum(r["fifo_overtakes"] for r in mine),
        }
    ratios = {}
    if len(per_kind) == 2:
        z, k = per_kind["zkflock"], per_kind["kazoo"]
        ratios["zkflock/kazoo handoffs/s @hundred"] = z["handoffs_per_s"] / k["handoffs_per_s"]
        ratios["zkflock/kazoo p99 wait @hundred"] = z["wait_ms"]["p99"] / k["wait_ms"]["p99"]
        ratios["zkflock notifications/release @hundred"] = z["notifications_per_release"]
    return {"procs": raw["procs"], "kinds": per_kind, "runs": runs, "ratios": ratios}
