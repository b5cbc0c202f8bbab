"""Fenced files at any size, against a real ZooKeeper: an append writes only
its bytes and never opens old objects; the view grows in place; reads retry
a hidden or short object within a bound; after a commit has landed nothing
makes the writer see a failure; format 1 is still read."""

from __future__ import annotations

import errno
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkflock
from zkflock._files import collect as _collect
from zkflock._files import objects as _objects
from zkflock._files import shared_file as _shared_file
from zkflock._files import view as _view
from zkflock._files.meta import checksum
from zkflock._files.view import ViewPublisher
from zkflock._names import file_meta_path

BIG = b"x" * 100_000


@pytest.fixture
def session(zk_hosts: str, tmp_path: Path) -> Iterator[zkflock.Session]:
    with zkflock.connect(zk_hosts, root=tmp_path, session_timeout=4.0) as zk:
        yield zk


def _opens(monkeypatch: pytest.MonkeyPatch, directory: Path) -> list[str]:
    """Names in ``directory`` that os.open opens from now on."""
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if isinstance(path, (str, Path)) and Path(path).parent == directory:
            opened.append(Path(path).name)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    return opened


def _appends_open_old_objects(f: zkflock.SharedFile, monkeypatch: pytest.MonkeyPatch) -> bool:
    big = f.meta().segments[0].object
    opened = _opens(monkeypatch, f.objects_dir)
    for i in range(10):
        f.append(f"line {i}\n")
    monkeypatch.undo()
    return big in opened


def test_append_never_opens_the_old_content(
    session: zkflock.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = session.shared_file("big.txt")
    f.write(BIG)
    assert not _appends_open_old_objects(f, monkeypatch)
    assert f.read_bytes() == BIG + b"".join(f"line {i}\n".encode() for i in range(10))
    # The check catches the broken variant: an append that reads the whole file.
    def reading_append(data: str, *, timeout: float | None = None) -> object:
        with f.edit(timeout=timeout) as doc:
            doc.text = doc.text + "x"  # a rewrite of the whole content
            doc.data = doc.data[:-1] + data.encode()
        return doc.committed

    monkeypatch.setattr(f, "append", reading_append)
    assert _appends_open_old_objects(f, monkeypatch)


def test_segments_merge_and_stay_readable(session: zkflock.Session, tmp_path: Path) -> None:
    f = session.shared_file("log.txt")
    lines = [f"{i}\n" for i in range(200)]
    for line in lines:
        f.append(line)
    meta = f.meta()
    assert meta.size == len("".join(lines))
    assert len(meta.segments) <= 10  # merged geometrically, not 200
    assert meta.lineage == 1  # appends and merges extend the first version
    assert f.read() == "".join(lines)
    assert (tmp_path / "log.txt").read_text() == "".join(lines)
    names = sorted(p.name for p in f.objects_dir.iterdir())
    assert names == sorted(meta.referenced())  # merged-away segments were collected
    with f.open() as reader:
        assert [line.decode() for line in reader] == lines


def test_view_grows_in_place_and_rewrites_swap(session: zkflock.Session,
                                               tmp_path: Path) -> None:
    f = session.shared_file("v.txt")
    view = tmp_path / "v.txt"
    f.write(BIG)
    ino = view.stat().st_ino
    f.append("more\n")
    assert view.stat().st_ino == ino  # extended, not copied
    assert view.read_bytes() == BIG + b"more\n"
    f.write("short\n")
    assert view.stat().st_ino != ino
    assert view.read_text() == "short\n"


def test_late_extender_never_writes_into_a_rewritten_view(
    session: zkflock.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = session.shared_file("s.txt")
    f.write("abc\n")
    old = f.append("def\n")
    # The publisher of the next append is late: a rewrite comes first.
    extra = f._store.create("3-1-0123456789abcdef", [b"ghi\n"])
    grown = old.successor(1, extra.object, (*old.segments, extra), extends=True)
    f.write("rewritten\n")
    view = tmp_path / "s.txt"
    publisher = f._publisher
    assert publisher._extend(grown, f._chunks, f._latest_or_none)  # the lineage tag refuses
    assert view.read_text() == "rewritten\n"
    # Where the file system keeps no extended attributes, ZooKeeper refuses.
    monkeypatch.setattr(_view, "_is_lineage", lambda fd, meta: None)
    assert publisher._extend(grown, f._chunks, f._latest_or_none)
    assert view.read_text() == "rewritten\n"
    # The check catches the broken variant, which trusts any view file.
    monkeypatch.setattr(_view, "_is_lineage", lambda fd, meta: True)
    assert publisher._extend(grown, f._chunks, f._latest_or_none)
    assert view.read_text() != "rewritten\n"


def test_extension_goes_on_from_what_the_view_file_holds(
    session: zkflock.Session, tmp_path: Path
) -> None:
    # A late publisher renamed an older version of the lineage in: the next
    # append fills in everything that file lacks, not only its own bytes.
    f = session.shared_file("g.txt")
    f.write("one\n")
    first = f.meta()
    f.append("two\n")
    f._publisher._swap(first, f._chunks)
    assert (tmp_path / "g.txt").read_text() == "one\n"
    f.append("three\n")
    assert (tmp_path / "g.txt").read_text() == "one\ntwo\nthree\n"


def test_write_streams_a_file_object_and_open_streams_it_back(
    session: zkflock.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_objects, "CHUNK", 4096)
    monkeypatch.setattr(_objects, "VERIFY_BUFFER", 8192)  # a "large" segment: streamed
    data = os.urandom(50_000)
    f = session.shared_file("bin.dat")
    meta = f.write(io.BytesIO(data))
    assert meta.size == len(data)
    assert meta.segments[0].sha256 == checksum(data)
    with f.open() as reader:
        assert reader.read(10) == data[:10]
        assert reader.read() == data[10:]
    # A same-size corruption of a streamed segment is caught at its end.
    monkeypatch.setattr(_objects, "RETRY_WINDOW", 0.1)
    path = f.objects_dir / meta.object
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(zkflock.FileCorruptError), f.open() as reader:
        reader.read()


def test_edit_refuses_a_file_too_large_for_memory(
    session: zkflock.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = session.shared_file("huge.txt")
    f.write(BIG)
    monkeypatch.setattr(_shared_file, "EDIT_LIMIT", 1000)
    with pytest.raises(zkflock.ConfigError, match="open\\(\\)"), f.edit():
        pass
    assert session.holders("huge.txt") == []
    f.append("still appendable\n")


def _hide_then_restore(path: Path, replacement: bytes | None, delay: float) -> threading.Thread:
    """Make ``path`` look missing (None) or short for ``delay`` seconds, as a
    negative-lookup or size cache of a shared volume's client does."""
    data = path.read_bytes()
    if replacement is None:
        path.rename(path.with_name("hidden"))
    else:
        path.write_bytes(replacement)

    def restore() -> None:
        if replacement is None:
            path.with_name("hidden").rename(path)
        else:
            path.write_bytes(data)

    timer = threading.Timer(delay, restore)
    timer.start()
    return timer


@pytest.mark.parametrize("replacement", [None, b""], ids=["hidden", "short"])
def test_read_retries_a_hidden_or_short_object(
    session: zkflock.Session, monkeypatch: pytest.MonkeyPatch, replacement: bytes | None
) -> None:
    f = session.shared_file("r.txt")
    meta = f.append("hello\n")
    timer = _hide_then_restore(f.objects_dir / meta.object, replacement, 0.3)
    try:
        assert f.read() == "hello\n"
    finally:
        timer.join()
    # The broken variant, with no retry window, calls a good object corrupt.
    monkeypatch.setattr(_objects, "RETRY_WINDOW", 0.0)
    timer = _hide_then_restore(f.objects_dir / meta.object, replacement, 0.3)
    try:
        with pytest.raises(zkflock.FileCorruptError):
            f.read()
    finally:
        timer.join()


def test_failures_after_the_commit_never_reach_the_writer(
    session: zkflock.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = session.shared_file("h.txt")
    f.append("one\n")

    def stale_handle(*args: object) -> None:
        raise OSError(errno.ESTALE, "Stale file handle")

    monkeypatch.setattr(ViewPublisher, "publish", stale_handle)
    monkeypatch.setattr(ViewPublisher, "collect_temps", stale_handle)
    monkeypatch.setattr(_collect, "SCAN_EVERY", 1)
    meta = f.append("two\n")  # committed: must not raise
    assert meta.version == 2
    assert f.read() == "one\ntwo\n"
    # The broken variant (publishing without the guard) would tell the writer
    # its committed append failed: the check above catches it.
    monkeypatch.setattr(f, "_after_commit", lambda new, dropped: f._publisher.publish(
        new, f._chunks, f._latest_or_none))
    with pytest.raises(OSError, match="Stale"):
        f.append("three\n")
    assert f.read() == "one\ntwo\nthree\n"  # yet it was committed


def test_volume_errors_before_the_commit_say_nothing_was_committed(
    session: zkflock.Session, tmp_path: Path
) -> None:
    f = session.shared_file("full.txt")
    f.append("kept\n")
    f.objects_dir.chmod(0o500)  # root ignores this; so make the directory a file
    f.objects_dir.chmod(0o755)
    for child in f.objects_dir.iterdir():
        child.rename(tmp_path / child.name)
    f.objects_dir.rmdir()
    f.objects_dir.write_text("not a directory")
    with pytest.raises(zkflock.VolumeError, match="nothing was committed") as info:
        f.write("lost\n")
    assert info.value.exit_code == 12
    assert f.meta().version == 1
    assert session.holders("full.txt") == []


def test_format_1_is_read_and_upgraded(session: zkflock.Session, kazoo_client: KazooClient,
                                       tmp_path: Path) -> None:
    # A file written by the previous format: one whole-content object per version.
    obj = "1-77-0123456789abcdef"
    objects = tmp_path / ".zkflock" / "objects" / "old.txt"
    objects.mkdir(parents=True)
    (objects / obj).write_bytes(b"legacy\n")
    doc = {"format": 1, "version": 1, "token": 77, "object": obj, "size": 7,
           "sha256": checksum(b"legacy\n"), "recent": [obj], "file_id": "ab"}
    kazoo_client.create(file_meta_path("old.txt"), json.dumps(doc).encode(), makepath=True)
    f = session.shared_file("old.txt")
    assert f.read() == "legacy\n"
    f.append("new\n")
    raw, _ = kazoo_client.get(file_meta_path("old.txt"))
    assert json.loads(raw)["format"] == 2
    assert f.read() == "legacy\nnew\n"
    assert (tmp_path / "old.txt").read_text() == "legacy\nnew\n"


def test_commit_outcomes_reach_the_observer(
    session: zkflock.Session, kazoo_client: KazooClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zkflock.metrics import Observer

    seen: list[tuple[str, str]] = []

    class Recording(Observer):
        def committed(self, name: str, outcome: str, seconds: float) -> None:
            assert seconds >= 0
            seen.append((name, outcome))

    f = session.shared_file("o.txt")
    monkeypatch.setattr(type(session), "observer", property(lambda _: Recording()))
    f.append("a\n")

    def stale_append() -> None:
        with f.edit() as doc:
            holder = session.holders("o.txt")[0]
            kazoo_client.delete(f"/zkflock/locks/o.txt/{holder.id}")
            doc.text = "stale\n"

    with pytest.raises(zkflock.StaleTokenError):
        stale_append()
    assert seen == [("o.txt", "accepted"), ("o.txt", "stale")]


def test_append_streams_a_file_object_in_one_commit(session: zkflock.Session) -> None:
    f = session.shared_file("stream.txt")
    f.write(BIG)
    data = os.urandom(3 << 20)  # several chunks
    meta = f.append(io.BytesIO(data))
    assert meta.version == 2  # one commit for the whole stream
    assert meta.size == len(BIG) + len(data)
    assert f.read_bytes() == BIG + data
    assert f.append(io.BytesIO(b"")).version == 2  # an empty stream commits nothing
