"""SharedFile.working_copy() against a real ZooKeeper: commit, no-op, discard,
exception, and the stale case (lock lost before exit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkflock


@pytest.fixture
def session(zk_hosts: str, tmp_path: Path) -> Iterator[zkflock.Session]:
    with zkflock.connect(zk_hosts, root=tmp_path, session_timeout=4.0) as zk:
        yield zk


def _leftovers(f: zkflock.SharedFile) -> list[str]:
    return [p.name for p in f.objects_dir.iterdir() if p.name.endswith(".edit")]


def test_changed_copy_is_committed(session: zkflock.Session, tmp_path: Path) -> None:
    f = session.shared_file("w/a.txt")
    f.append("one\n")
    with f.working_copy() as copy:
        assert copy.path.read_text() == "one\n"
        assert copy.path.parent == f.objects_dir  # same volume as the objects
        assert copy.token == copy.lock.token > 0
        copy.lock.ensure_held()
        copy.path.write_text("one\ntwo\n")
    assert f.read() == "one\ntwo\n"
    assert f.meta().version == 2
    assert (tmp_path / "w" / "a.txt").read_text() == "one\ntwo\n"
    assert session.holders("w/a.txt") == []
    assert not _leftovers(f)


def test_copy_replaced_by_rename_is_committed(session: zkflock.Session) -> None:
    # Editors and `sed -i` write a new file and rename it over the old one.
    f = session.shared_file("r.txt")
    f.append("old\n")
    with f.working_copy() as copy:
        tmp = copy.path.with_name("tmp-by-editor")
        tmp.write_text("new\n")
        tmp.replace(copy.path)
    assert f.read() == "new\n"


def test_unchanged_or_discarded_copy_commits_nothing(session: zkflock.Session) -> None:
    f = session.shared_file("u.txt")
    f.append("same\n")
    with f.working_copy():
        pass
    with f.working_copy() as copy:
        copy.path.write_text("discarded\n")
        copy.discard()
    assert f.read() == "same\n"
    assert f.meta().version == 1
    assert session.holders("u.txt") == []
    assert not _leftovers(f)


def test_exception_commits_nothing_and_passes_through(session: zkflock.Session) -> None:
    f = session.shared_file("e.txt")
    f.append("kept\n")

    def failing_edit() -> None:
        with f.working_copy() as copy:
            copy.path.write_text("lost\n")
            raise KeyError("the caller's own error")

    with pytest.raises(KeyError):
        failing_edit()
    assert f.read() == "kept\n"
    assert session.holders("e.txt") == []
    assert not _leftovers(f)


def test_lock_lost_before_exit_is_stale_and_commits_nothing(
    session: zkflock.Session, kazoo_client: KazooClient, tmp_path: Path
) -> None:
    f = session.shared_file("s.txt")
    f.append("v1\n")

    def stale_edit() -> None:
        with f.working_copy() as copy:
            copy.path.write_text("stale\n")
            # The lock passes on behind the holder's back: delete its node by force.
            holder = session.holders("s.txt")[0]
            kazoo_client.delete(f"/zkflock/locks/s.txt/{holder.id}")

    with pytest.raises(zkflock.StaleTokenError):
        stale_edit()
    assert f.read() == "v1\n"
    assert f.meta().version == 1
    assert (tmp_path / "s.txt").read_text() == "v1\n"
    assert not _leftovers(f)


def test_new_file_starts_empty(session: zkflock.Session) -> None:
    f = session.shared_file("n.txt")
    with f.working_copy() as copy:
        assert copy.path.read_bytes() == b""
        copy.path.write_bytes(b"\x00binary")
    assert f.read_bytes() == b"\x00binary"
