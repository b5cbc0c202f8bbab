"""Benchmark statistics: medians with spread, ratios, targets, table, plots."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

# (scenario, key in the summary's ratios, target, "<=" or ">="), per group
# of settings (runner.Setting.targets); issue 14 set the delayed and the
# ensemble ones.
LOOPBACK_TARGETS: list[tuple[str, str, float, str]] = [
    ("uncontended", "zkflock/kazoo p50", 0.6, "<="),  # 0.75 with forceSync=yes, see below
    ("uncontended", "zkflock/raw p50", 1.25, "<="),
    ("contended", "zkflock/kazoo handoffs/s @2", 1.2, ">="),
    ("contended", "zkflock/kazoo handoffs/s @4", 1.2, ">="),
    ("contended", "zkflock/kazoo handoffs/s @8", 1.2, ">="),
    ("contended", "zkflock/kazoo handoffs/s @16", 1.0, ">="),
    ("herd", "handoffs/s @herd / @base", 0.8, ">="),
    ("many", "kazoo/zkflock @10", 5.0, ">="),
    ("many", "kazoo/zkflock @100", 20.0, ">="),
    ("fenced", "fenced/plain throughput", 1 / 1.5, ">="),
    ("cpu", "zkflock/raw cpu p50", 1.2, "<="),
    ("scale", "10000 held / empty p50", 1.2, "<="),  # issue 9; --quick holds 200: no target
    ("scale", "fill / uncontended cycle rate", 1.0, ">="),
]
TARGETS: dict[str, list[tuple[str, str, float, str]]] = {
    "loopback": LOOPBACK_TARGETS,
    "delayed": [  # 0.5 ms each way
        ("uncontended", "zkflock/kazoo p50", 0.55, "<="),
        ("contended", "zkflock/kazoo handoffs/s @2", 1.3, ">="),
        ("contended", "zkflock/kazoo handoffs/s @4", 1.1, ">="),
        ("contended", "zkflock/kazoo handoffs/s @8", 1.1, ">="),
        ("contended", "zkflock/kazoo handoffs/s @16", 1.1, ">="),
    ],
    "ensemble": [
        ("hundred", "zkflock/kazoo handoffs/s @hundred", 1.0, ">="),
        ("hundred", "zkflock notifications/release @hundred", 1.05, "<="),
    ],
    "none": [],
}


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def spread(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {f"p{int(q * 100)}": pct(values, q) * scale for q in (0.1, 0.5, 0.9)} | {
        "n": len(values)
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def overtakes(tokens: list[int]) -> int:
    """Grants out of queue order: a token smaller than the one granted before."""
    return sum(1 for a, b in itertools.pairwise(tokens) if b < a)


def summarize_uncontended(raw: dict[str, Any]) -> dict[str, Any]:
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw["contenders"].items()}
    cpu = {k: spread(v["cpu_per_cycle_s"], 1e6) for k, v in raw["contenders"].items()}
    ratios = {}
    if "kazoo" in lat:
        ratios["zkflock/kazoo p50"] = _ratio(lat["zkflock"]["p50"], lat["kazoo"]["p50"])
    ratios["zkflock/raw p50"] = _ratio(lat["zkflock"]["p50"], lat["raw"]["p50"])
    ratios["zkflock/raw cpu p50"] = _ratio(cpu["zkflock"]["p50"], cpu["raw"]["p50"])
    if "rawlist" in lat:  # the floor for a one-round-trip acquire: see _bench
        ratios["zkflock/rawlist p50"] = _ratio(lat["zkflock"]["p50"], lat["rawlist"]["p50"])
        ratios["zkflock/rawlist cpu p50"] = _ratio(cpu["zkflock"]["p50"], cpu["rawlist"]["p50"])
    return {
        "latency_ms": lat,
        "cpu_us_per_cycle": cpu,
        "zxid_per_cycle": raw["zxid_per_cycle"],
        "failed_cycles": {k: v.get("errors", 0) for k, v in raw["contenders"].items()},
        "ratios": ratios,
        "ratio_spread": {
            f"zkflock/{other} p50": round_ratios(raw["contenders"], "zkflock", other)
            for other in ("kazoo", "raw") if other in lat
        },
    }


def round_ratios(contenders: dict[str, Any], a: str, b: str) -> dict[str, float]:
    """p10/p50/p90 of the round-by-round ratio of ``a``'s median to ``b``'s:
    how much the ratio of medians moves within the run."""
    pairs = zip(contenders[a].get("round_p50_ns", []), contenders[b].get("round_p50_ns", []),
                strict=True)
    return spread([_ratio(x, y) for x, y in pairs])


def summarize_run(run: dict[str, Any]) -> dict[str, Any]:
    times = run["grant_times"]
    waits = [w * 1e3 for w in run.get("waits", [])]
    gaps = [(b - a) * 1e3 for a, b in itertools.pairwise(times)]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    handoffs = max(len(times) - 1, 0)
    return {
        "kind": run["kind"],
        "procs": run["procs"],
        "grants": run["grants"],
        "handoffs_per_s": _ratio(handoffs, span),
        "handoff_ms": spread(gaps),
        "wait_ms": {"p50": pct(waits, 0.5), "p99": pct(waits, 0.99)},
        "fifo_overtakes": overtakes(run["tokens"]),
        "overlaps": run["overlaps"],
        "errors": run.get("errors", 0),
        "wakes_per_handoff": _ratio(run["wakes"], handoffs),
        "server_notifications_per_handoff": _ratio(run["server_notifications"], handoffs),
    }


def _rates(runs: list[dict[str, Any]], kind: str, procs: int) -> list[float]:
    return [r["handoffs_per_s"] for r in runs if r["kind"] == kind and r["procs"] == procs]


def summarize_contended(raw: dict[str, Any]) -> dict[str, Any]:
    runs = [summarize_run(r) for r in raw["runs"]]
    procs = sorted({r["procs"] for r in runs})
    table = {}
    ratios = {}
    ratio_spread = {}
    for n in procs:
        zs, ks = _rates(runs, "zkflock", n), _rates(runs, "kazoo", n)
        z, k = statistics.median(zs), statistics.median(ks)
        table[str(n)] = {"zkflock": z, "kazoo": k}
        ratios[f"zkflock/kazoo handoffs/s @{n}"] = _ratio(z, k)
        # Repeat i of zkflock against repeat i of kazoo (they alternate first).
        ratio_spread[f"zkflock/kazoo handoffs/s @{n}"] = spread(
            [_ratio(a, b) for a, b in zip(zs, ks, strict=False)])
    zk_runs = [r for r in runs if r["kind"] == "zkflock"]
    return {
        "handoffs_per_s": table,
        "ratio_spread": ratio_spread,
        "fifo_overtakes": sum(r["fifo_overtakes"] for r in zk_runs),
        "overlaps": sum(r["overlaps"] for r in runs),
        "failed_cycles": sum(r["errors"] for r in runs),
        "runs": runs,
        "ratios": ratios,
    }


def summarize_herd(raw: dict[str, Any]) -> dict[str, Any]:
    runs = [summarize_run(r) for r in raw["runs"]]
    big, base = raw["waiters"], raw["base"]
    at_big = statistics.median(_rates(runs, "zkflock", big))
    at_base = statistics.median(_rates(runs, "zkflock", base))
    naive = [r for r in runs if r["kind"] == "naive"]
    zk_big = [r for r in runs if r["kind"] == "zkflock" and r["procs"] == big]
    return {
        "waiters": big,
        "handoffs_per_s": {f"zkflock @{big}": at_big, f"zkflock @{base}": at_base}
        | ({f"naive @{big}": naive[0]["handoffs_per_s"]} if naive else {}),
        "notifications_per_release": {
            "zkflock": statistics.median(r["server_notifications_per_handoff"] for r in zk_big),
            "naive": naive[0]["server_notifications_per_handoff"] if naive else None,
        },
        "wakes_per_release": {
            "zkflock": statistics.median(r["wakes_per_handoff"] for r in zk_big),
            "naive": naive[0]["wakes_per_handoff"] if naive else None,
        },
        "zxid_per_uncontended_cycle": raw["zxid_per_cycle"],
        "fifo_overtakes": sum(r["fifo_overtakes"] for r in runs if r["kind"] == "zkflock"),
        "overlaps": sum(r["overlaps"] for r in runs),
        "runs": runs,
        "ratios": {"handoffs/s @herd / @base": _ratio(at_big, at_base)},
    }


def summarize(scenario: str, raw: dict[str, Any]) -> dict[str, Any]:
    if "skipped" in raw:
        return raw
    if scenario in ("uncontended", "cpu"):
        return summarize_uncontended(raw)
    if scenario == "contended":
        return summarize_contended(raw)
    if scenario == "herd":
        return summarize_herd(raw)
    if scenario == "hundred":
        from zkflock._bench.hundred import summarize_hundred  # it builds on this module

        return summarize_hundred(raw)
    return dict(raw)  # many, fenced: already summarised by the scenario


def check_targets(summaries: dict[str, dict[str, Any]], group: str,
                  force_sync: bool) -> list[dict[str, Any]]:
    """Each target of ``group`` whose ratio was measured: met or not."""
    out = []
    for scenario, key, target, op in TARGETS[group]:
        ratios = summaries.get(scenario, {}).get("ratios", {})
        if key not in ratios:
            continue
        if group == "loopback" and key == "zkflock/kazoo p50" and force_sync:
            target = 0.75
        value = ratios[key]
        met = value <= target if op == "<=" else value >= target
        out.append({"scenario": scenario, "ratio": key, "value": value,
                    "target": f"{op} {target:.2f}", "met": bool(met)})
    return out
