"""The metadata read of a fenced write rides in the lock's round trip, and is
used only when it shows the state at the grant (real ZooKeeper)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

import zkflock
from zkflock._files.meta import FileMeta
from zkflock._names import lock_parent


def _count_meta_reads(session: zkflock.Session, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the separate metadata reads the session makes (the real
    reads still run)."""
    reads: list[str] = []
    real = session.zk.get_meta

    def counted(path: str, **kw: Any) -> Any:
        reads.append(path)
        return real(path, **kw)

    monkeypatch.setattr(session.zk, "get_meta", counted)
    return reads


def test_uncontended_append_reads_the_metadata_in_the_locks_round_trip(
    sessions: Callable[..., zkflock.Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = sessions(root=tmp_path)
    f = session.shared_file("log.txt")
    f.append("first\n")  # creates the metadata node (read separately: it was missing)
    reads = _count_meta_reads(session, monkeypatch)
    for i in range(3):
        f.append(f"line {i}\n")
    with f.edit() as doc:
        doc.text += "edited\n"
    assert reads == []  # fails when load_for_write reads again after the grant
    assert f.read() == "first\nline 0\nline 1\nline 2\nedited\n"


def test_a_writer_that_waited_builds_on_the_commit_made_meanwhile(
    sessions: Callable[..., zkflock.Session], kazoo_client: KazooClient, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B queues while A holds the lock, so the read behind B's create shows
    the version before A's commit: B must read again after its grant (with
    the early read, its commit would be refused on the znode version)."""
    a, b = sessions(root=tmp_path), sessions(root=tmp_path)
    fa, fb = a.shared_file("log.txt"), b.shared_file("log.txt")
    fa.append("base\n")
    reads = _count_meta_reads(b, monkeypatch)
    parent = lock_parent("log.txt")
    outcome: list[object] = []

    def append_b() -> None:
        try:
            outcome.append(fb.append("from b\n"))
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)

    with fa.edit() as doc:
        thread = threading.Thread(target=append_b)
        thread.start()
        deadline = time.monotonic() + 10
        while len(kazoo_client.get_children(parent)) < 2:  # B is queued behind A
            assert time.monotonic() < deadline, "B never queued"
            time.sleep(0.01)
        doc.text += "from a\n"
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], FileMeta), outcome
    assert outcome[0].version == 3
    assert fa.read() == "base\nfrom a\nfrom b\n"
    assert len(reads) == 1  # B waited: it read once, after its grant
