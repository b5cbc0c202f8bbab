"""The benchmark harness, run briefly so it cannot rot.

Checks structure and sanity (counts, ratios, FIFO order, no overlap, two
transactions per uncontended cycle, one notification per release), never a
time: timings live in ``make bench``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from zkflock._bench.report import overtakes, summarize, summarize_run
from zkflock._bench.scenarios import SCENARIOS, BenchConfig, contend
from zkflock.cli import main

QUICK = BenchConfig.quick()


def test_overtake_count_catches_an_out_of_order_grant() -> None:
    assert overtakes([5, 9, 12, 40]) == 0
    assert overtakes([5, 12, 9, 40]) == 1  # 9 queued before 12 but was granted after


def test_uncontended_measures_every_contender_and_two_writes_per_cycle(zk_hosts: str) -> None:
    summary = summarize("uncontended", SCENARIOS["uncontended"](zk_hosts, QUICK))
    assert set(summary["latency_ms"]) == {"zkflock", "kazoo", "raw", "rawlist"}
    for stats in summary["latency_ms"].values():
        assert stats["n"] == QUICK.batch * QUICK.rounds
        assert 0 < stats["p10"] <= stats["p50"] <= stats["p90"]
    for ratio in summary["ratios"].values():
        assert math.isfinite(ratio)
        assert ratio > 0
    # A create and a delete: nothing else is written per uncontended cycle.
    assert summary["zxid_per_cycle"]["zkflock"] == 2.0
    assert summary["zxid_per_cycle"]["raw"] == 2.0


@pytest.mark.parametrize("kind", ["zkflock", "kazoo"])
def test_contended_grants_are_fifo_and_exclusive(zk_hosts: str, kind: str) -> None:
    run = summarize_run(contend(zk_hosts, kind, 3, QUICK))
    assert run["grants"] > 0
    assert run["handoffs_per_s"] > 0
    assert run["overlaps"] == 0
    assert run["fifo_overtakes"] == 0


def test_herd_one_notification_per_release_and_naive_shows_the_herd(zk_hosts: str) -> None:
    summary = summarize("herd", SCENARIOS["herd"](zk_hosts, QUICK))
    notes = summary["notifications_per_release"]
    # Each release wakes its one successor (a little under 1: the last
    # release of the window has no waiter left to wake, or none yet).
    assert 0.5 <= notes["zkflock"] <= 1.05
    assert notes["naive"] > 2 * notes["zkflock"]
    assert summary["zxid_per_uncontended_cycle"] == 2.0
    assert summary["fifo_overtakes"] == 0
    assert summary["overlaps"] == 0
    assert summary["ratios"]["handoffs/s @herd / @base"] > 0


@pytest.mark.parametrize("scenario", ["many", "fenced"])
def test_lock_kind_scenarios_compute_their_ratios(zk_hosts: str, scenario: str) -> None:
    summary = summarize(scenario, SCENARIOS[scenario](zk_hosts, QUICK))
    if "skipped" in summary:
        pytest.skip(summary["skipped"])
    assert summary["ratios"]
    for ratio in summary["ratios"].values():
        assert math.isfinite(ratio)
        assert ratio > 0
    for stats in summary["latency_ms"].values():
        assert stats["n"] > 0


def test_command_starts_its_own_server_and_writes_json_and_png(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["bench", "cpu", "--quick", "--force-sync", "no", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "forceSync=no" in result.output
    assert "zkflock/raw cpu p50" in result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["no"]["summaries"]["cpu"]["cpu_us_per_cycle"]["zkflock"]["n"] > 0
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
