"""``zkflock bench``: the benchmarks, side by side with kazoo's recipe."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from zkflock._bench.scenarios import SCENARIOS, BenchConfig, run_bench
from zkflock.cli import CliContext

DEFAULT_OUT = Path("benchmarks") / "results"


def register(group: click.Group) -> None:
    group.add_command(bench)


def _without_raw(results: dict[str, Any]) -> dict[str, Any]:
    settings = {k: {kk: vv for kk, vv in v.items() if kk != "raw"}
                for k, v in results["settings"].items()}
    return results | {"settings": settings}


def save(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write results.json (summaries), raw.json (every sample) and results.png."""
    from zkflock._bench.report import plot

    out.mkdir(parents=True, exist_ok=True)
    summary = out / "results.json"
    summary.write_text(json.dumps(_without_raw(results), indent=1, default=str) + "\n")
    (out / "raw.json").write_text(json.dumps(results, default=str) + "\n")
    png = out / "results.png"
    plot(results, str(png))
    return summary, png


@click.command()
@click.argument("scenario", nargs=-1, type=click.Choice(sorted(SCENARIOS)))
@click.option("--quick", is_flag=True, help="A short run (seconds), for smoke tests.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_OUT, show_default=True, help="Folder for JSON and PNG results.")
@click.option("--force-sync", type=click.Choice(["both", "yes", "no"]), default="both",
              show_default=True, help="ZooKeeper's forceSync for the server bench starts.")
@click.pass_obj
def bench(obj: CliContext, scenario: tuple[str, ...], quick: bool, out: Path,
          force_sync: str) -> None:
    """Benchmark zkflock against kazoo's Lock recipe (all scenarios by default).

    Starts its own local ZooKeeper per forceSync setting unless --hosts is given.
    """
    names = list(scenario) or list(SCENARIOS)
    cfg = BenchConfig.quick() if quick else BenchConfig()
    fs = {"both": (False, True), "yes": (True,), "no": (False,)}[force_sync]

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    results = run_bench(names, cfg, force_sync=fs, hosts=obj.hosts, progress=progress)
    results["meta"]["command"] = "zkflock " + " ".join(sys.argv[1:])
    summary, png = save(results, out)
    from zkflock._bench.report import table

    if obj.json:
        click.echo(json.dumps(_without_raw(results), default=str))
    else:
        click.echo(table(results))
        click.echo(f"results: {summary} and {png}")
