"""A 3-node ensemble loses its leader while the lock is held and contended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _workers import Spawner, find_overlaps, read_log, wait_until
from zkflock import LocalZooKeeper

WORKERS = 3
ROUNDS = 25


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.close()


def _holder_inside(log: Path) -> bool:
    """True when the last record is an 'enter': somebody holds the lock now."""
    if not log.exists():
        return False
    records = read_log(log)
    return bool(records) and records[-1][1] == "enter"


def test_leader_killed_while_lock_held_and_contended(
    zk_ensemble: LocalZooKeeper, spawner: Spawner, tmp_path: Path
) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(WORKERS)]
    procs = [
        spawner.start(
            "mutex", "--hosts", zk_ensemble.hosts, "--log", str(log), "--go", str(go),
            "--ready", str(ready[i]), "--rounds", str(ROUNDS), "--hold", "0.05",
            # Long enough that re-election does not expire the sessions: the
            # test is about the service going on, not about lock loss.
            "--session-timeout", "4.0", "--acquire-timeout", "60",
        )
        for i in range(WORKERS)
    ]
    wait_until(lambda: all(r.exists() for r in ready), 60, "workers to connect")
    go.touch()

    wait_until(lambda: len(read_log(log)) >= 10 if log.exists() else False, 60, "some rounds")
    leader = zk_ensemble.leader()
    assert leader is not None
    wait_until(lambda: _holder_inside(log), 30, "a holder inside its critical section")
    entries_at_kill = sum(1 for _, what, _ in read_log(log) if what == "enter")
    zk_ensemble.kill_node(leader)

    for n, proc in enumerate(procs):
        proc.wait(timeout=90)
        assert proc.returncode == 0, spawner.stderr(n)
    records = read_log(log)
    entries = [token for _, what, token in records if what == "enter"]
    assert len(entries) == WORKERS * ROUNDS  # every worker completed its rounds
    assert entries_at_kill < len(entries)  # service went on after the leader died
    new_leader = zk_ensemble.leader()
    assert new_leader is not None
    assert new_leader != leader
    assert find_overlaps(log) == []  # never two holders at once
    assert entries == sorted(entries)  # tokens grow in grant order, across the election
