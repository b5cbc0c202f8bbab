"""Crash consistency: a writer killed (SIGKILL) at each step of the commit:
segment written, merge written, committed, view extended, view swapped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import zkflock
from zkflock._files import collect as _collect
from zkflock._files import view as _views

CHILD = """
import sys, zkflock
with zkflock.connect(sys.argv[1], root=sys.argv[2], session_timeout=1.0) as zk:
    f = zk.shared_file("data/data.txt")
    if sys.argv[3] == "append":
        f.append("new\\n", timeout=30)
    else:
        f.write(f.read() + "new\\n", timeout=30)
"""
BIG = "old\n" * 40  # large enough that appending "new\n" merges nothing


@pytest.fixture
def session(zk_hosts: str, tmp_path: Path) -> Iterator[zkflock.Session]:
    with zkflock.connect(zk_hosts, root=tmp_path, session_timeout=4.0) as zk:
        yield zk


def _crash_writer(hosts: str, root: Path, step: str, op: str) -> int:
    env = {**os.environ, "ZKFLOCK_TEST_CRASH_AT": step}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, hosts, str(root), op], env=env, timeout=60,
        capture_output=True,
    )
    return proc.returncode


@pytest.mark.parametrize(
    ("step", "op", "base", "committed", "view_updated"),
    [
        ("before-object", "append", BIG, False, False),
        ("after-object", "append", BIG, False, False),  # the new segment written
        ("after-merge", "append", "old\n", False, False),  # a merged segment written
        ("after-commit", "append", BIG, True, False),
        ("after-extend", "append", BIG, True, True),  # view extended, sidecar not updated
        ("after-object", "write", BIG, False, False),
        ("before-rename", "write", BIG, True, False),  # a whole new view not yet renamed
    ],
)
def test_writer_killed_at_each_step(
    session: zkflock.Session, zk_hosts: str, tmp_path: Path, step: str, op: str, base: str,
    committed: bool, view_updated: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = session.shared_file("data/data.txt")
    f.append(base)
    assert _crash_writer(zk_hosts, tmp_path, step, op) == -signal.SIGKILL
    expected = base + "new\n" if committed else base
    assert f.read() == expected  # whole, at a committed version
    assert f.meta().version == (2 if committed else 1)
    view = tmp_path / "data" / "data.txt"
    # never torn, never uncommitted
    assert view.read_text() == (expected if view_updated else base)
    # The next writer (waiting out the dead writer's session) repairs the view
    # and collects leftovers.
    monkeypatch.setattr(_views, "TEMP_GRACE", 0.0)
    monkeypatch.setattr(_collect, "SCAN_EVERY", 1)
    f.append("next\n", timeout=30)
    assert f.read() == expected + "next\n"
    assert view.read_text() == expected + "next\n"
    assert sorted(p.name for p in f.objects_dir.iterdir()) == sorted(f.meta().referenced())
    assert not [p for p in view.parent.iterdir() if p.name.endswith(".tmp")]


def _whole(text: str) -> bool:
    """Every committed version is "0\n1\n...k\n", whole."""
    lines = text.splitlines()
    return text.endswith("\n") and lines == [str(i) for i in range(len(lines))]


def test_whole_check_catches_torn_content() -> None:
    assert _whole("0\n1\n2\n")
    assert not _whole("0\n1\n2")  # torn mid-line
    assert not _whole("0\n2\n")  # a lost version


def test_readers_never_see_torn_or_uncommitted_content(
    session: zkflock.Session, zk_hosts: str, tmp_path: Path
) -> None:
    f = session.shared_file("log.txt")
    f.append("0\n")
    view = tmp_path / "log.txt"
    seen: list[str] = []
    bad: list[str] = []
    stop = threading.Event()

    def read_forever() -> None:
        with zkflock.connect(zk_hosts, root=tmp_path) as reader_zk:
            rf = reader_zk.shared_file("log.txt")
            while not stop.is_set():
                for text in (rf.read(), view.read_text()):
                    if not _whole(text):
                        bad.append(text)
                    seen.append(text)

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for i in range(1, 40):
            f.append(f"{i}\n")
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not bad
    assert len(seen) > 10
    assert f.read().splitlines() == [str(i) for i in range(40)]
