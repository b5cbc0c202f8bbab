"""What a run prints: every ratio of every setting, against its target where
there is one, with the facts behind it; the same as Markdown tables."""

from __future__ import annotations

from typing import Any


def rows(per: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ratio of one setting: value, spread (p10..p90 within the run, when
    measured), target and whether it is met (None: no target)."""
    targets = {(t["scenario"], t["ratio"]): t for t in per["targets"]}
    out = []
    for scenario, summary in per["summaries"].items():
        spreads = summary.get("ratio_spread", {})
        for key, value in summary.get("ratios", {}).items():
            target = targets.get((scenario, key))
            spread = spreads.get(key)
            out.append({
                "scenario": scenario, "ratio": key, "value": value,
                "spread": (spread["p10"], spread["p90"]) if spread and spread["n"] > 1 else None,
                "target": target["target"] if target else "",
                "met": target["met"] if target else None,
            })
    return out


def _spread_text(row: dict[str, Any]) -> str:
    return f"{row['spread'][0]:.2f}-{row['spread'][1]:.2f}" if row["spread"] else ""


def table(results: dict[str, Any]) -> str:
    """Plain text, one block per setting."""
    lines = []
    for label, per in results["settings"].items():
        lines.append(label)
        for row in rows(per):
            mark = {True: "ok  ", False: "MISS", None: "    "}[row["met"]]
            spread = f"({_spread_text(row)})" if row["spread"] else ""
            target = f"target {row['target']}" if row["target"] else ""
            lines.append(f"  {mark} {row['scenario']:<11} {row['ratio']:<40} "
                         f"{row['value']:8.3f} {spread:<11} {target}")
        for scenario, summary in per["summaries"].items():
            if "skipped" in summary:
                lines.append(f"  skip {scenario}: {summary['skipped']}")
        lines.extend(_path_facts(per.get("path", {})))
        lines.extend(_facts(per["summaries"]))
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """A Markdown table per setting (for the README), and the command."""
    meta = results["meta"]
    out = [f"`{meta.get('command', 'zkflock bench')}` — load average "
           f"{meta['loadavg']} before, {meta.get('loadavg_after')} after, {meta['when']}", ""]
    for label, per in results["settings"].items():
        out += [f"**{label}**", "", "| scenario | ratio (of medians, same run) | value | "
                "spread p10-p90 | target |", "|---|---|---:|---:|---|"]
        for row in rows(per):
            value = f"{row['value']:.2f}"
            if row["met"]:
                value = f"**{value}**"
            out.append(f"| {row['scenario']} | {row['ratio']} | {value} | {_spread_text(row)} "
                       f"| {row['target']} |")
        out += [""] + [f"- {line.strip()}" for line in _path_facts(per.get("path", {}))
                       + _facts(per["summaries"])] + [""]
    return "\n".join(out)


def _path_facts(path: dict[str, Any]) -> list[str]:
    if not path:
        return []
    share = ", ".join(f"{k} {v:.0%}" for k, v in path["proxy_cpu_share"].items())
    return [f"       path: {path['delay_ms']:g} ms set one way; a read's round trip "
            f"p50 {path['rtt_direct_ms']['p50']:.3f} ms direct, "
            f"{path['rtt_delayed_ms']['p50']:.3f} ms delayed (added one way "
            f"{path['added_one_way_ms_p50']:.3f} ms); proxy CPU (share of a core): {share}"]


def _facts(summaries: dict[str, Any]) -> list[str]:
    lines = []
    if "uncontended" in summaries and "latency_ms" in summaries["uncontended"]:
        u = summaries["uncontended"]
        for kind, s in u["latency_ms"].items():
            lines.append(f"       uncontended {kind:<8} p10/p50/p90 "
                         f"{s['p10']:.3f}/{s['p50']:.3f}/{s['p90']:.3f} ms, "
                         f"cpu p50 {u['cpu_us_per_cycle'][kind]['p50']:.0f} us, "
                         f"zxid/cycle {u['zxid_per_cycle'][kind]:.2f}")
    if "contended" in summaries and "handoffs_per_s" in summaries["contended"]:
        c = summaries["contended"]
        for n, row in c["handoffs_per_s"].items():
            lines.append(f"       contended @{n:<3} handoffs/s zkflock {row['zkflock']:.0f} "
                         f"kazoo {row['kazoo']:.0f}")
        lines.append(f"       contended FIFO overtakes {c['fifo_overtakes']}, "
                     f"overlaps {c['overlaps']}, failed cycles {c.get('failed_cycles', 0)}")
    failed = summaries.get("uncontended", {}).get("failed_cycles", {})
    if any(failed.values()):
        lines.append(f"       uncontended failed cycles (not timed) {failed}")
    if "herd" in summaries and "runs" in summaries["herd"]:
        h = summaries["herd"]
        lines.append(f"       herd handoffs/s {h['handoffs_per_s']}; notifications/release "
                     f"{h['notifications_per_release']}; zxid/uncontended cycle "
                     f"{h['zxid_per_uncontended_cycle']:.2f}")
    for kind, k in summaries.get("hundred", {}).get("kinds", {}).items():
        mem = k["memory_kib"]
        lines.append(f"       hundred {kind:<8} handoffs/s {k['handoffs_per_s']:.0f}, "
                     f"notifications/release {k['notifications_per_release']:.3f}, wait p50/p99 "
                     f"{k['wait_ms']['p50']:.0f}/{k['wait_ms']['p99']:.0f} ms, memory per "
                     f"process rss/pss/private {mem['rss'] / 1024:.1f}/{mem['pss'] / 1024:.1f}/"
                     f"{mem['private'] / 1024:.1f} MiB, overlaps {k['overlaps']}, "
                     f"overtakes {k['fifo_overtakes']}")
    lines += [f"       {line}" for line in summaries.get("scale", {}).get("text", [])]
    for name in ("many", "fenced"):
        if name in summaries and "facts" in summaries[name]:
            lines.append(f"       {name}: {summaries[name]['facts']}")
    return lines
