"""Benchmark statistics: medians with spread, ratios, targets, table, plots."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

# (scenario, key in the summary's ratios, target, "<=" or ">=")
TARGETS: list[tuple[str, str, float, str]] = [
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
]


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
        "ratios": ratios,
    }


def summarize_run(run: dict[str, Any]) -> dict[str, Any]:
    times = run["grant_times"]
    gaps = [(b - a) * 1e3 for a, b in itertools.pairwise(times)]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    handoffs = max(len(times) - 1, 0)
    return {
        "kind": run["kind"],
        "procs": run["procs"],
        "grants": run["grants"],
        "handoffs_per_s": _ratio(handoffs, span),
        "handoff_ms": spread(gaps),
        "fifo_overtakes": overtakes(run["tokens"]),
        "overlaps": run["overlaps"],
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
    for n in procs:
        z = statistics.median(_rates(runs, "zkflock", n))
        k = statistics.median(_rates(runs, "kazoo", n))
        table[str(n)] = {"zkflock": z, "kazoo": k}
        ratios[f"zkflock/kazoo handoffs/s @{n}"] = _ratio(z, k)
    zk_runs = [r for r in runs if r["kind"] == "zkflock"]
    return {
        "handoffs_per_s": table,
        "fifo_overtakes": sum(r["fifo_overtakes"] for r in zk_runs),
        "overlaps": sum(r["overlaps"] for r in runs),
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
    return dict(raw)  # many, fenced: already summarised by the scenario


def check_targets(summaries: dict[str, dict[str, Any]], force_sync: bool) -> list[dict[str, Any]]:
    out = []
    for scenario, key, target, op in TARGETS:
        ratios = summaries.get(scenario, {}).get("ratios", {})
        if key not in ratios:
            continue
        if scenario == "uncontended" and key == "zkflock/kazoo p50" and force_sync:
            target = 0.75
        value = ratios[key]
        met = value <= target if op == "<=" else value >= target
        out.append({"scenario": scenario, "ratio": key, "value": value,
                    "target": f"{op} {target:.2f}", "met": bool(met)})
    return out


def table(results: dict[str, Any]) -> str:
    """The ratios against their targets, one block per forceSync setting."""
    lines = []
    for fs, per in results["settings"].items():
        lines.append(f"forceSync={fs}")
        for row in per["targets"]:
            mark = "ok  " if row["met"] else "MISS"
            lines.append(f"  {mark} {row['scenario']:<11} {row['ratio']:<32} "
                         f"{row['value']:8.3f}  target {row['target']}")
        for scenario, summary in per["summaries"].items():
            if "skipped" in summary:
                lines.append(f"  skip {scenario}: {summary['skipped']}")
        lines.extend(_facts(per["summaries"]))
    return "\n".join(lines)


def _facts(summaries: dict[str, Any]) -> list[str]:
    lines = []
    if "uncontended" in summaries and "latency_ms" in summaries["uncontended"]:
        u = summaries["uncontended"]
        for kind, s in u["latency_ms"].items():
            lines.append(f"       uncontended {kind:<8} p10/p50/p90 "
                         f"{s['p10']:.3f}/{s['p50']:.3f}/{s['p90']:.3f} ms, "
                         f"cpu p50 {u['cpu_us_per_cycle'][kind]['p50']:.0f} us, "
                         f"zxid/cycle {u['zxid_per_cycle'][kind]:.2f}")
    for name in ("uncontended", "cpu"):
        ratios = summaries.get(name, {}).get("ratios", {})
        if "zkflock/rawlist p50" in ratios:
            lines.append(f"       {name} against the rawlist floor: latency "
                         f"{ratios['zkflock/rawlist p50']:.3f}x, cpu "
                         f"{ratios['zkflock/rawlist cpu p50']:.3f}x")
    if "contended" in summaries and "handoffs_per_s" in summaries["contended"]:
        c = summaries["contended"]
        for n, row in c["handoffs_per_s"].items():
            lines.append(f"       contended @{n:<3} handoffs/s zkflock {row['zkflock']:.0f} "
                         f"kazoo {row['kazoo']:.0f}")
        lines.append(f"       contended FIFO overtakes {c['fifo_overtakes']}, "
                     f"overlaps {c['overlaps']}")
    if "herd" in summaries and "runs" in summaries["herd"]:
        h = summaries["herd"]
        lines.append(f"       herd handoffs/s {h['handoffs_per_s']}; notifications/release "
                     f"{h['notifications_per_release']}; zxid/uncontended cycle "
                     f"{h['zxid_per_uncontended_cycle']:.2f}")
    for name in ("many", "fenced"):
        if name in summaries and "facts" in summaries[name]:
            lines.append(f"       {name}: {summaries[name]['facts']}")
    return lines


def plot(results: dict[str, Any], path: str) -> None:
    """Latency, throughput and notifications against contenders, per forceSync."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = results["settings"]
    fig, axes = plt.subplots(len(settings), 5, figsize=(25, 4.5 * len(settings)), squeeze=False)
    for row, (fs, per) in zip(axes, settings.items(), strict=True):
        s = per["summaries"]
        if "latency_ms" in s.get("uncontended", {}):
            _bars(row[0], s["uncontended"]["latency_ms"], "ms",
                  f"uncontended cycle latency (forceSync={fs})")
        if "handoffs_per_s" in s.get("contended", {}):
            tab = s["contended"]["handoffs_per_s"]
            xs = [int(n) for n in tab]
            for kind in ("zkflock", "kazoo"):
                row[1].plot(xs, [tab[str(n)][kind] for n in xs], marker="o", label=kind)
            row[1].set_xscale("log", base=2)
            row[1].set(xticks=xs, xticklabels=[str(x) for x in xs], ylim=(0, None),
                       xlabel="processes", ylabel="handoffs/s",
                       title=f"contended throughput (forceSync={fs})")
            row[1].legend()
        if "notifications_per_release" in s.get("herd", {}):
            h = s["herd"]
            vals = {k: v for k, v in h["notifications_per_release"].items() if v is not None}
            row[2].bar(list(vals), list(vals.values()), color=["tab:blue", "tab:red"][: len(vals)])
            row[2].set(ylabel="watch notifications per release",
                       title=f"herd: {h['waiters']} waiters (forceSync={fs})")
        if "cpu_us_per_cycle" in s.get("cpu", {}):
            _bars(row[3], s["cpu"]["cpu_us_per_cycle"], "us",
                  f"client CPU per uncontended cycle (forceSync={fs})")
        kinds = {k: v for name in ("many", "fenced")
                 for k, v in s.get(name, {}).get("latency_ms", {}).items()}
        if kinds:
            _bars(row[4], kinds, "ms", f"lock_many and fenced append (forceSync={fs})")
            row[4].set_yscale("log")
            row[4].tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _bars(ax: Any, stats: dict[str, dict[str, float]], unit: str, title: str) -> None:
    kinds = list(stats)
    p50 = [stats[k]["p50"] for k in kinds]
    err = [[stats[k]["p50"] - stats[k]["p10"] for k in kinds],
           [stats[k]["p90"] - stats[k]["p50"] for k in kinds]]
    ax.bar(kinds, p50, yerr=err, capsize=6, color="tab:blue")
    ax.set(ylabel=f"p50 {unit} (bars: p10..p90)", title=title)
