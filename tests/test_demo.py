"""``zkflock demo`` end to end (real processes, real ZooKeeper) and its file check."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from zkflock._harness.demo import check_demo_file

GOOD = (
    "client 2 token=17 at=2026-01-01T10:00:00.000+00:00\n"
    "client 1 token=21 at=2026-01-01T10:00:00.300+00:00\n"
    "client 3 token=30 at=2026-01-01T10:00:00.600+00:00\n"
)


def demo(*args: str, cwd: Path, hosts: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKFLOCK_")}
    prefix = ["--hosts", hosts] if hosts else []
    return subprocess.run([sys.executable, "-m", "zkflock", *prefix, "demo", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


# -- the check catches what it must -------------------------------------------------


def test_check_accepts_one_whole_line_per_client_in_token_order() -> None:
    assert check_demo_file(GOOD, 3) == []


@pytest.mark.parametrize(
    ("text", "clients", "expected"),
    [
        (GOOD, 4, "client 4 wrote 0 lines"),                          # a client's line lost
        (GOOD + GOOD.splitlines(True)[0], 3, "client 2 wrote 2 lines"),  # duplicated
        (GOOD[:-1], 3, "torn"),                                        # no final newline
        (GOOD.replace("token=21", "token=12"), 3, "token 12 is not greater"),  # out of order
        (GOOD.replace("token=30", "token=21"), 3, "token 21 is not greater"),  # equal tokens
        (GOOD.replace("client 3 token", "client 3 tok"), 3, "not a whole demo line"),
        (GOOD.replace("client 3", "client 9"), 3, "names client 9"),
        ("client 1 token=5 at=Xclient 2 token=6 at=Y\n", 2, "client 2 wrote 0 lines"),  # mixed
        ("", 1, "client 1 wrote 0 lines"),
    ],
)
def test_check_rejects_bad_files(text: str, clients: int, expected: str) -> None:
    problems = check_demo_file(text, clients)
    assert any(expected in p for p in problems), problems


def test_check_rejects_a_file_that_does_not_show_this_runs_writes() -> None:
    assert check_demo_file(GOOD, 3, {2: 17, 1: 21, 3: 30}) == []
    problems = check_demo_file(GOOD, 3, {2: 17, 1: 21, 3: 31})  # an earlier run's file
    assert any("client 3 reported token 31" in p for p in problems), problems


# -- end to end -----------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_demo_against_a_given_zookeeper(zk_hosts: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.txt").write_text("a line from an earlier run\n")
    result = demo("--clients", "4", "--hold", "0.1", cwd=tmp_path, hosts=zk_hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout
    lines = _lines(tmp_path / "data" / "data.txt")  # a plain file, as `cat` sees it
    assert sorted(int(line.split()[1]) for line in lines) == [1, 2, 3, 4]
    assert check_demo_file((tmp_path / "data" / "data.txt").read_text(), 4) == []
    for line in lines:  # the demo printed the file
        assert line in result.stdout


def test_demo_starts_and_stops_its_own_zookeeper(tmp_path: Path) -> None:
    result = demo("--hold", "0.1", cwd=tmp_path)  # no --hosts, no ZKFLOCK_HOSTS
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(line.split()[1] for line in _lines(tmp_path / "data" / "data.txt")) == [
        "1", "2", "3"]
    match = re.search(r"serving at 127\.0\.0\.1:(\d+)", result.stdout)
    assert match, result.stdout
    assert "local ZooKeeper stopped" in result.stdout
    with pytest.raises(ConnectionRefusedError), socket.create_connection(
        ("127.0.0.1", int(match.group(1))), timeout=5
    ):
        pass  # nobody listens there any more


def test_demo_twice_in_one_folder_shows_the_second_run(tmp_path: Path) -> None:
    # Each run starts a fresh ZooKeeper over the same folder: versions count
    # from 1 again, and the plain view must still show the new run's lines
    # (a view guarded by the old run's version number would stay stale).
    first = demo("--hold", "0.05", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = _lines(tmp_path / "data" / "data.txt")
    second = demo("--hold", "0.05", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    after = _lines(tmp_path / "data" / "data.txt")
    assert len(after) == 3
    assert not set(after) & set(before), (before, after)
