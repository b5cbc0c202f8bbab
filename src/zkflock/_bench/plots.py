"""The plot of a run: each panel compares zkflock with kazoo across settings."""

from __future__ import annotations

from typing import Any


def plot(results: dict[str, Any], path: str) -> None:
    """Uncontended latency, contended throughput ratio, lock_many/fenced
    latency and the hundred-process run, every setting side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = {label: per["summaries"] for label, per in results["settings"].items()}
    fig, axes = plt.subplots(1, 4, figsize=(26, 6.5))
    _uncontended(axes[0], settings)
    _contended(axes[1], settings)
    _many(axes[2], settings)
    _hundred(axes[3], settings)
    fig.suptitle(f"zkflock vs kazoo — {results['meta'].get('command', 'zkflock bench')} "
                 f"(load {results['meta']['loadavg'][0]} → {results['meta'].get('loadavg_after')})")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def _grouped(ax: Any, labels: list[str], series: dict[str, list[dict[str, float] | None]],
             unit: str, title: str) -> None:
    """Bars of p50 with p10..p90 whiskers, one group per setting."""
    width = 0.8 / max(len(series), 1)
    for i, (name, stats) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        p50 = [s["p50"] if s else 0.0 for s in stats]
        err = [[s["p50"] - s["p10"] if s else 0.0 for s in stats],
               [s["p90"] - s["p50"] if s else 0.0 for s in stats]]
        ax.bar(xs, p50, width, yerr=err, capsize=3, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel=f"p50 {unit} (whiskers p10..p90)", title=title)
    if labels:
        ax.legend()


def _uncontended(ax: Any, settings: dict[str, dict[str, Any]]) -> None:
    labels = [k for k, s in settings.items() if "latency_ms" in s.get("uncontended", {})]
    series = {kind: [settings[k]["uncontended"]["latency_ms"].get(kind) for k in labels]
              for kind in ("zkflock", "kazoo", "raw")}
    _grouped(ax, labels, series, "ms", "uncontended acquire+release")


def _contended(ax: Any, settings: dict[str, dict[str, Any]]) -> None:
    for label, s in settings.items():
        tab = s.get("contended", {}).get("handoffs_per_s")
        if not tab:
            continue
        xs = [int(n) for n in tab]
        ax.plot(xs, [tab[str(n)]["zkflock"] / tab[str(n)]["kazoo"] for n in xs], marker="o",
                label=label)
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_xscale("log", base=2)
    procs = sorted({int(n) for s in settings.values()
                    for n in s.get("contended", {}).get("handoffs_per_s", {})})
    ax.set(xticks=procs, xticklabels=[str(n) for n in procs], xlabel="processes on one lock",
           ylabel="handoffs/s, zkflock / kazoo", title="contended throughput ratio (median runs)")
    if procs:
        ax.legend(fontsize=7)


def _many(ax: Any, settings: dict[str, dict[str, Any]]) -> None:
    labels = [k for k, s in settings.items() if "latency_ms" in s.get("many", {})
              or "latency_ms" in s.get("fenced", {})]
    kinds = sorted({kind for k in labels for name in ("many", "fenced")
                    for kind in settings[k].get(name, {}).get("latency_ms", {})})
    series = {kind: [_latency(settings[k], kind) for k in labels] for kind in kinds}
    _grouped(ax, labels, series, "ms", "lock_many and fenced append, per cycle")
    ax.set_yscale("log")


def _latency(summaries: dict[str, Any], kind: str) -> dict[str, float] | None:
    for name in ("many", "fenced"):
        found = summaries.get(name, {}).get("latency_ms", {}).get(kind)
        if found:
            return dict(found)
    return None


def _hundred(ax: Any, settings: dict[str, dict[str, Any]]) -> None:
    labels = [k for k, s in settings.items() if s.get("hundred", {}).get("kinds")]
    for i, kind in enumerate(("zkflock", "kazoo")):
        rates = [settings[k]["hundred"]["kinds"].get(kind, {}).get("handoffs_per_s", 0.0)
                 for k in labels]
        ax.bar([x + i * 0.4 for x in range(len(labels))], rates, 0.4, label=kind)
    ax.set_xticks([x + 0.2 for x in range(len(labels))])
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel="handoffs/s", title="a hundred processes on one lock")
    if labels:
        ax.legend()
