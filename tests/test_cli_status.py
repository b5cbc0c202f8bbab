"""``zkflock status`` against a known set of holders and waiters (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import zkflock
from zkflock._locks.lock import Lock
from zkflock._locks.protocol import READ

WAIT = 30.0


def cli(hosts: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zkflock", "--hosts", hosts, *args],
                          capture_output=True, text=True, timeout=WAIT * 2)


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def runs(zk_hosts: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "run",
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp_path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # forwarded to the child's group
        proc.communicate(timeout=WAIT)


def test_json_lists_one_holder_then_two_waiters_in_queue_order(
    zk_hosts: str, runs: Callable[..., subprocess.Popen[str]]
) -> None:
    with zkflock.connect(zk_hosts) as zk:
        holder = runs("data/data.txt", "sleep", "30")
        wait_for(lambda: len(zk.holders("data/data.txt")) == 1, "the holder")
        first = runs("data/data.txt", "true")
        wait_for(lambda: len(zk.holders("data/data.txt")) == 2, "the first waiter")
        second = runs("data/data.txt", "echo", "second")
        wait_for(lambda: len(zk.holders("data/data.txt")) == 3, "the second waiter")

        for args in (["--json", "status", "data/data.txt"], ["status", "--json"]):
            result = cli(zk_hosts, *args)
            assert result.returncode == 0, result.stderr
            rows: list[dict[str, Any]] = json.loads(result.stdout)
            assert [r["state"] for r in rows] == ["holding", "waiting", "waiting"]
            assert [r["pid"] for r in rows] == [holder.pid, first.pid, second.pid]
            assert {r["lock"] for r in rows} == {"data/data.txt"}
            assert {r["kind"] for r in rows} == {"exclusive"}
            assert rows[0]["token"] < rows[1]["token"] < rows[2]["token"]
            assert [r["purpose"] for r in rows] == ["sleep 30", "true", "echo second"]


def test_table_shows_locks_modes_and_states(zk_hosts: str) -> None:
    with zkflock.connect(zk_hosts) as zk:
        reader = Lock(zk, "reports/q3.csv", kind=READ, purpose="nightly report")
        assert reader.acquire()
        writer = zk.lock("data/data.txt")
        assert writer.acquire()
        result = cli(zk_hosts, "status")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        row = next(line for line in lines if "reports/q3.csv" in line)
        assert row.split()[1:3] == ["shared", "holding"]
        assert "nightly report" in row
        assert f":{os.getpid()}" in row
        assert "2 lock(s), 2 holding, 0 waiting" in result.stdout
        only = cli(zk_hosts, "status", "data/data.txt").stdout
        assert "data/data.txt" in only
        assert "reports/q3.csv" not in only
        reader.release()
        writer.release()


def test_no_locks(zk_hosts: str) -> None:
    result = cli(zk_hosts, "status")
    assert (result.returncode, result.stdout.strip()) == (0, "no locks")
    assert json.loads(cli(zk_hosts, "--json", "status").stdout) == []
