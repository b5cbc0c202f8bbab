"""``zkflock bench``: the benchmarks, side by side with kazoo's recipe."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from zkflock._bench.runner import run_bench, settings_for
from zkflock._bench.scenarios import SCENARIOS, BenchConfig
from zkflock.cli import CliContext

DEFAULT_OUT = Path("benchmarks") / "results"


def register(group: click.Group) -> None:
    group.add_command(bench)


def _without_raw(results: dict[str, Any]) -> dict[str, Any]:
    settings = {k: {kk: vv for kk, vv in v.items() if kk != "raw"}
                for k, v in results["settings"].items()}
    return results | {"settings": settings}


def save(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write results.json (summaries), raw.json (every sample), results.md
    (the tables) and results.png."""
    from zkflock._bench.plots import plot
    from zkflock._bench.tables import markdown

    out.mkdir(parents=True, exist_ok=True)
    summary = out / "results.json"
    summary.write_text(json.dumps(_without_raw(results), indent=1, default=str) + "\n")
    (out / "raw.json").write_text(json.dumps(results, default=str) + "\n")
    (out / "results.md").write_text(markdown(results) + "\n")
    png = out / "results.png"
    plot(results, str(png))
    return summary, png


def _counts(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        counts = tuple(int(x) for x in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of process counts, "
                                 "e.g. 2,4,16", param_hint="--procs")
    return counts


@click.command()
@click.argument("scenario", nargs=-1, type=click.Choice(sorted(SCENARIOS)))
@click.option("--quick", is_flag=True, help="A short run (seconds), for smoke tests.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_OUT, show_default=True, help="Folder for JSON and PNG results.")
@click.option("--force-sync", type=click.Choice(["both", "yes", "no"]), default="both",
              show_default=True, help="ZooKeeper's forceSync for the servers bench starts.")
@click.option("--delay", "delays", type=click.FloatRange(min=0, min_open=True), multiple=True,
              metavar="MS", help="Also measure through a TCP path that delays each direction "
              "by MS milliseconds (repeatable: --delay 0.1 --delay 0.5).")
@click.option("--ensemble", is_flag=True,
              help="Also measure on a local 3-node ensemble (clients spread, and on a follower).")
@click.option("--loopback/--no-loopback", default=True, show_default=True,
              help="Measure on a loopback standalone server.")
@click.option("--procs", help="Process counts of the contended scenario, e.g. 2,4,16.")
@click.option("--hundred", "hundred", type=click.IntRange(min=2), default=None,
              help="Processes of the hundred scenario (default 100).")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Interleaved rounds of the uncontended scenarios (default 20).")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=None,
              help="Counted seconds of each contended run (default 4).")
@click.pass_obj
def bench(obj: CliContext, scenario: tuple[str, ...], quick: bool, out: Path, force_sync: str,
          delays: tuple[float, ...], ensemble: bool, loopback: bool, procs: str | None,
          hundred: int | None, rounds: int | None, seconds: float | None) -> None:
    """Benchmark zkflock against kazoo's Lock recipe.

    By default every scenario but `hundred`, on a loopback standalone server
    per forceSync setting; --delay and --ensemble add settings (which run
    uncontended, contended, many and fenced, and hundred on the spread
    ensemble, unless scenarios are named). Starts its own servers unless
    --hosts is given.
    """
    cfg = BenchConfig.quick() if quick else BenchConfig()
    if (counts := _counts(procs)) is not None:
        cfg = dataclasses.replace(cfg, procs=counts)
    sizes: dict[str, Any] = {"hundred": hundred, "rounds": rounds, "loop_seconds": seconds}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in sizes.items() if v is not None})
    fs = {"both": (False, True), "yes": (True,), "no": (False,)}[force_sync]
    settings = settings_for(force_sync=fs, delays_ms=delays, ensemble=ensemble and not obj.hosts,
                            loopback=loopback, scenarios=scenario)
    if not settings:
        raise click.UsageError("nothing to measure: --no-loopback needs --delay or --ensemble")

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    results = run_bench(settings, cfg, hosts=obj.hosts, progress=progress)
    results["meta"]["command"] = "zkflock " + " ".join(sys.argv[1:])
    summary, png = save(results, out)
    from zkflock._bench.tables import table

    if obj.json:
        click.echo(json.dumps(_without_raw(results), default=str))
    else:
        click.echo(table(results))
        click.echo(f"results: {summary}, {summary.with_name('results.md')} and {png}")
