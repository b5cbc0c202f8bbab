"""``zkflock scenario client|check`` (the clients of docker-compose.yml): the
checks catch what they must, and real clients against a real ZooKeeper pass
them. The containers themselves run in ``make compose-test``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zkflock._cli.container import (
    check_reports,
    check_rounds_file,
    committed_holds,
    longest_pause,
    parse_reports,
)

GOOD = (
    "client 2 token=17 at=2026-01-01T10:00:00.000+00:00\n"
    "client 1 token=21 at=2026-01-01T10:00:00.300+00:00\n"
    "client 1 token=30 at=2026-01-01T10:00:00.600+00:00\n"
    "client 2 token=31 at=2026-01-01T10:00:00.900+00:00\n"
)


def reports_for(holds: list[tuple[int, int, float, float]]) -> list[dict[str, object]]:
    """The reports of committed holds (client, token, start, end)."""
    out: list[dict[str, object]] = []
    for client, token, start, end in holds:
        out += [
            {"client": client, "state": "holding", "token": token, "at": start},
            {"client": client, "state": "committing", "token": token, "at": end},
            {"client": client, "state": "done", "token": token, "at": end + 0.01},
        ]
    return out


GOOD_HOLDS = [(2, 17, 0.0, 0.2), (1, 21, 0.3, 0.5), (1, 30, 0.6, 0.8), (2, 31, 2.0, 2.2)]


# -- the checks catch what they must --------------------------------------------------


def test_rounds_check_accepts_whole_lines_in_token_order() -> None:
    assert check_rounds_file(GOOD, 2, 2) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("token=30", "token=20"), "token 20 is not greater"),  # out of lock order
        (GOOD.replace("token=31", "token=30"), "token 30 is not greater"),  # the same token twice
        (GOOD + GOOD.splitlines(True)[0], "client 2 wrote 3 lines, not exactly 2"),  # written twice
        ("".join(GOOD.splitlines(True)[:3]), "client 2 wrote 1 lines, not exactly 2"),  # lost
        (GOOD[:-1], "torn"),
        (GOOD.replace("client 1 token=30", "client 1 tok=30"), "not a whole demo line"),
        (GOOD.replace("client 2 token=31", "client 7 token=31"), "names client 7"),
    ],
)
def test_rounds_check_rejects_bad_files(text: str, expected: str) -> None:
    problems = check_rounds_file(text, 2, 2)
    assert any(expected in p for p in problems), problems


def test_one_round_is_the_demos_check() -> None:
    one = "".join(GOOD.splitlines(True)[:2])
    assert check_rounds_file(one, 2, 1) == []
    problems = check_rounds_file(GOOD, 2, 1)
    assert any("wrote 2 lines, not exactly 1" in p for p in problems), problems


def test_reports_check_accepts_disjoint_committed_holds() -> None:
    reports = reports_for(GOOD_HOLDS)
    assert check_reports(reports, GOOD, 2, 2) == []
    assert longest_pause(committed_holds(reports)) == pytest.approx(1.2)


def test_reports_check_catches_overlapping_holds() -> None:
    # The broken variant: a long hold of client 2's overlaps two of client 1's;
    # the second of them does not overlap the hold just before it, only the long one.
    holds = [(2, 17, 0.0, 1.0), (1, 21, 0.2, 0.3), (1, 30, 0.5, 0.7), (2, 31, 2.0, 2.2)]
    problems = check_reports(reports_for(holds), GOOD, 2, 2)
    overlaps = [p for p in problems if "overlapped" in p]
    assert len(overlaps) == 2, problems
    assert all("client 2 (token 17)" in p for p in overlaps), overlaps
    assert "client 1 (token 21)" in overlaps[0]
    assert "client 1 (token 30)" in overlaps[1]


def test_reports_check_catches_unfinished_clients_and_missing_commits() -> None:
    reports = reports_for(GOOD_HOLDS[:3])
    problems = check_reports(reports, GOOD, 2, 2)
    assert "client 2 reported 1 committed rounds, not 2" in problems
    reports = reports_for([*GOOD_HOLDS[:3], (2, 99, 2.0, 2.2)])
    problems = check_reports(reports, GOOD, 2, 2)
    assert any("token 99 committed, but no line" in p for p in problems), problems


def test_a_hold_that_did_not_commit_is_no_hold() -> None:
    # A retried attempt (lock lost before its commit) may overlap the next
    # holder's: nothing of it was written, so it is not checked.
    reports = reports_for(GOOD_HOLDS)
    reports += [{"client": 1, "state": "holding", "token": 25, "at": 0.1},
                {"client": 1, "state": "committing", "token": 25, "at": 0.4},
                {"client": 1, "state": "retry", "token": 25, "at": 0.45}]
    assert check_reports(reports, GOOD, 2, 2) == []


def test_parse_reports_reads_compose_logs() -> None:
    lines = [
        "Attaching to p_client1_1",
        'p_client1_1  | {"client": 1, "round": 1, "state": "waiting", "at": 1.5}',
        "p_client1_1  | zkflock: connection dropped {not json",
        'p_client2_1  | {"state": "other"}',
    ]
    assert parse_reports(lines) == [{"client": 1, "round": 1, "state": "waiting", "at": 1.5}]


# -- real clients, real ZooKeeper -----------------------------------------------------


def zkflock(*args: str, hosts: str, root: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKFLOCK_")}
    env.update(ZKFLOCK_HOSTS=hosts, ZKFLOCK_ROOT=str(root))
    return subprocess.Popen([sys.executable, "-m", "zkflock", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_clients_take_turns_and_pass_the_check(zk_hosts: str, tmp_path: Path) -> None:
    procs = [zkflock("scenario", "client", "--index", str(i), "--rounds", "3", "--hold", "0.02",
                     hosts=zk_hosts, root=tmp_path) for i in (1, 2, 3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    logs = tmp_path / "logs.txt"
    logs.write_text("".join(out for out, _ in outputs))
    states = [json.loads(line)["state"] for line in logs.read_text().splitlines()]
    assert states.count("done") == 9
    assert states.count("finished") == 3

    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zkflock", "scenario", "check", "--clients", "3",
             "--rounds", "3", *extra], capture_output=True, text=True, timeout=60)

    result = check("--file", str(tmp_path / "data.txt"), "--reports", str(logs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed: 3 clients x 3 rounds" in result.stdout
    assert (tmp_path / "data.txt").read_text() in result.stdout  # the file was printed
    # The broken variant, the same file with its lines reversed: the check fires.
    reversed_file = tmp_path / "reversed.txt"
    reversed_file.write_text("".join(reversed((tmp_path / "data.txt").read_text()
                                              .splitlines(True))))
    result = check("--file", str(reversed_file))
    assert result.returncode == 1
    assert "is not greater than the line before's" in result.stderr
