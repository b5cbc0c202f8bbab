"""The benchmark harness, run briefly so it cannot rot.

Checks structure and sanity (counts, ratios, FIFO order, no overlap, two
transactions per uncontended cycle, one notification per release), never a
time: timings live in ``make bench``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zkflock._bench.delay import DelayPath
from zkflock._bench.report import overtakes, summarize, summarize_run
from zkflock._bench.scenarios import SCENARIOS, BenchConfig, contend
from zkflock._bench.workers import node_of
from zkflock._server.local import LocalZooKeeper
from zkflock._zk.client import OneSelectHandler
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


def test_hotpath_measures_the_select_handler_beside_the_stock_one(zk_hosts: str) -> None:
    summary = SCENARIOS["hotpath"](zk_hosts, dataclasses.replace(QUICK, procs=(2,)))
    assert set(summary["latency_ms"]) == {"zkflock", "zkflock_epoll", "kazoo", "kazoo_select"}
    assert set(summary["handoffs_per_s"]) == {"2"}
    for ratio in summary["ratios"].values():
        assert math.isfinite(ratio)
        assert ratio > 0


def test_one_select_handler_answers_as_kazoos_and_falls_back_past_fd_setsize() -> None:
    a, b = socket.socketpair()
    high = [fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, 1500)]  # past select(2)'s FD_SETSIZE
    try:
        handler = OneSelectHandler()
        b.send(b"x")
        assert handler.select([a], [], [], 1.0)[0] == [a]
        assert handler.select([], [b], [], 1.0)[1] == [b]
        assert handler.select([b], [], [], 0.01) == ([], [], [])
        assert handler.select([high[0]], [], [], 1.0)[0] == [high[0]]  # kazoo's selector
    finally:
        os.close(high[0])
        a.close()
        b.close()


def test_command_starts_its_own_server_and_writes_json_and_png(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["bench", "cpu", "--quick", "--force-sync", "no", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "loopback forceSync=no" in result.output
    assert "zkflock/raw cpu p50" in result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    summaries = saved["settings"]["loopback forceSync=no"]["summaries"]
    assert summaries["cpu"]["cpu_us_per_cycle"]["zkflock"]["n"] > 0
    assert "| cpu | zkflock/raw cpu p50 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_reports_the_held_figure_and_lock_many_in_the_plain_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["bench", "scale", "--quick", "--force-sync", "no", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "200 held / empty p50" in result.output
    assert "fill / uncontended cycle rate" in result.output
    assert "pipelined fill / uncontended cycle rate" in result.output
    assert "with 200 held" in result.output
    assert "scale: lock_many of 200 names: held all" in result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    scale = saved["settings"]["loopback forceSync=no"]["summaries"]["scale"]
    assert scale["held"] == 200
    assert scale["many"]["outcome"] == "held"
    assert all(math.isfinite(r) and r > 0 for r in scale["ratios"].values())
    assert "scale: lock_many of 200 names: held all" in (tmp_path / "results.md").read_text()


def test_scale_text_says_how_many_names_fit_when_refused() -> None:
    from zkflock._bench.scale import _text

    keys = ["same session, 10000 held", "empty session, meanwhile", "same session, 0 held",
            "empty session, before"]
    lat = {key: {"p50": 1.0} for key in keys}
    fill = {"fill_locks_per_s": 600.0, "cycles_per_s": 500.0}
    many = {"names": 10000, "outcome": "refused", "answer_ms": 180.0, "fit": 3632,
            "fit_cycle_ms": 900.0}
    lines = _text(10000, lat, fill, fill, many)
    assert "lock_many of 10,000 names: refused (ConfigError) in 180 ms: 3,632 fit" in lines[2]
    assert "with 10,000 held" in lines[0]


def test_command_refuses_a_run_with_nothing_to_measure(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "--no-loopback", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--no-loopback needs --delay or --ensemble" in result.output


def test_workers_spread_over_the_nodes_and_keep_the_chroot() -> None:
    hosts = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3/chroot"
    assert [node_of(hosts, i) for i in range(4)] == [
        "127.0.0.1:1/chroot", "127.0.0.1:2/chroot", "127.0.0.1:3/chroot", "127.0.0.1:1/chroot"]
    assert node_of("127.0.0.1:9", 5) == "127.0.0.1:9"


# -- the delay path -------------------------------------------------------------


def _echo_server() -> tuple[socket.socket, int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def _early_round_trips(port: int, delay: float, count: int = 20) -> tuple[int, bytes]:
    """Round trips through 127.0.0.1:port that came back sooner than the path
    allows (twice ``delay``), and every byte echoed, in order."""
    early = 0
    echoed = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for i in range(count):
            message = f"message {i:03d} ".encode() * (1 + i * 50)  # up to ~14 kB
            started = time.monotonic()
            sock.sendall(message)
            got = b""
            while len(got) < len(message):
                got += sock.recv(65536)
            if time.monotonic() - started < 2 * delay:
                early += 1
            echoed.append(got)
    return early, b"".join(echoed)


def test_delay_path_holds_every_byte_both_ways_and_keeps_their_order() -> None:
    """A lower bound, not a timing: load only makes bytes later, never earlier.
    The same check against a path without delay shows it can fail."""
    listener, port = _echo_server()
    sent = b"".join(f"message {i:03d} ".encode() * (1 + i * 50) for i in range(20))
    try:
        with DelayPath([("127.0.0.1", port)], delay=0.02) as path:
            early, echoed = _early_round_trips(path.ports[0], 0.02)
        assert echoed == sent
        assert early == 0
    finally:
        listener.close()
    listener, port = _echo_server()  # the broken variant: no delay at all
    try:
        with DelayPath([("127.0.0.1", port)], delay=0.0) as undelayed:
            early, echoed = _early_round_trips(undelayed.ports[0], 0.02)
        assert echoed == sent
        assert early > 0
    finally:
        listener.close()


def test_hundred_on_an_ensemble_counts_every_nodes_notifications(
    zk_ensemble: LocalZooKeeper,
) -> None:
    """Clients spread over three nodes, each notifying its own: one
    notification per release only if every node's count is summed."""
    summary = summarize("hundred", SCENARIOS["hundred"](zk_ensemble.hosts, QUICK))
    for kind in ("zkflock", "kazoo"):
        stats = summary["kinds"][kind]
        assert 0.5 <= stats["notifications_per_release"] <= 1.05
        assert stats["overlaps"] == 0
        assert stats["fifo_overtakes"] == 0
        assert stats["wait_ms"]["p50"] <= stats["wait_ms"]["p99"]
        assert 0 < stats["memory_kib"]["private"] <= stats["memory_kib"]["rss"]
    assert summary["ratios"]["zkflock/kazoo handoffs/s @hundred"] > 0
