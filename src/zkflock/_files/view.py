"""Durable writes and the plain view of a fenced file.

The view (``data/data.txt`` itself) is a convenience copy for ``cat`` and
tools that know nothing of zkflock; ZooKeeper's metadata stays the truth. It
costs O(new bytes): an append extends it in place (only the new bytes are
written, at their offset), a rewrite swaps in a whole new file by rename. A
sidecar records what the view shows (file id, lineage, version, size and the
view file's inode number); it is overwritten in place, never replaced by
rename, because another mount of a shared volume reading a name that was just
renamed over can get ESTALE (SHAREDFS.md).

Why this needs no lock between publishers (flock(2) does not exclude across
sshfs mounts): versions of one lineage extend each other, so bytes written in
place are the committed bytes at their offsets whoever writes them, however
late — a late publisher rewrites what is already there, or writes into a
view file that a rename has already unlinked. An extension happens only into
the inode that the sidecar names, and only when that file is of the same
lineage: each view file carries its lineage in an extended attribute, set
before it is renamed in and never changed; where the file system keeps no
extended attributes, ZooKeeper is asked after the view was opened whether
that lineage is still the latest. A rename is what can go
backwards (a late swap of an older version): so every publisher that renamed
asks ZooKeeper afterwards for the latest version and, when one is newer,
publishes it over its own file. A stale sidecar (another mount's cache) only
costs a publisher redundant bytes or a swap.

Remaining window: on a mount that still resolves the view's name to a file
another mount has just renamed over (GlusterFS: about a second), an
extension can land in the unlinked file; the view then lags until the next
commit or ``publish_view()``. A view replaced by another program keeping the
inode number is extended as if it were ours; ``publish_view()`` or the next
rewrite repairs it. It never shows uncommitted bytes; a reader racing the
newest append may see part of it, as with any growing log.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from zkflock._files.disk import crash_point, make_dirs_within, store_dir_name
from zkflock._files.meta import FileMeta

TEMP_GRACE = 60.0  # seconds before an unrenamed temp file counts as a crash leftover
_RECORD = 160  # bytes of the sidecar record, overwritten in place
LINEAGE_XATTR = "user.zkflock.lineage"  # on each view file: "<file_id> <lineage>"
_REPAIRS = 4  # swaps a publisher makes in a row when newer versions keep landing


Chunks = Callable[[FileMeta, int], Iterator[bytes]]  # a version's bytes from an offset
Latest = Callable[[], "FileMeta | None"]  # the latest committed version, per ZooKeeper


@dataclass(frozen=True)
class Shown:
    """What the view shows, per the sidecar."""

    file_id: str
    lineage: int
    version: int
    size: int
    ino: int

    def encode(self) -> bytes:
        line = (f"zkflock-view {self.file_id or '-'} {self.lineage} {self.version} "
                f"{self.size} {self.ino}")
        record = f"{line} {zlib.crc32(line.encode()):08x}"
        return record.ljust(_RECORD - 1).encode() + b"\n"

    @staticmethod
    def decode(raw: bytes) -> Shown | None:
        words = raw.decode("ascii", "replace").split()
        if len(words) != 7 or words[0] != "zkflock-view":
            return None  # absent, torn, or the format-1 sidecar
        line = " ".join(words[:6])
        if f"{zlib.crc32(line.encode()):08x}" != words[6]:
            return None
        try:
            lineage, version, size, ino = (int(w) for w in words[2:6])
        except ValueError:
            return None
        return Shown(words[1].strip("-"), lineage, version, size, ino)


class ViewPublisher:
    """Publishes committed versions of one file as its plain view."""

    def __init__(self, root: Path, view: Path, state_dir: Path, name: str) -> None:
        self._root = root
        self._view = view
        base = store_dir_name(name)
        self._state_dir = state_dir
        self._shown_path = state_dir / f"{base}.shown"
        self._temp_prefix = f".{view.name}.zkflock-"

    def shown(self) -> Shown | None:
        """What the view shows per the sidecar, or None when unknown."""
        try:
            fd = os.open(self._shown_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return Shown.decode(os.pread(fd, _RECORD, 0))
        except OSError:
            return None
        finally:
            os.close(fd)

    def publish(self, meta: FileMeta, chunks: Chunks, latest: Latest) -> FileMeta:
        """Show ``meta``'s version, or a newer committed one; returns the
        version shown. Raises OSError when the volume fails (the caller, past
        its commit, logs it: the next publisher repairs the view)."""
        state = self.shown()
        for _ in range(_REPAIRS):
            if state is not None and (state.file_id, state.lineage) == (meta.file_id,
                                                                         meta.lineage):
                if state.version >= meta.version:
                    return meta
                if self._extend(meta, state, chunks, latest):
                    return meta
            state = self._swap(meta, chunks)
            fresh = latest()  # our rename may have hidden a newer version: ZooKeeper decides
            if fresh is None or fresh.version <= meta.version:
                return meta
            meta = fresh
        return meta

    def _extend(self, meta: FileMeta, state: Shown, chunks: Chunks, latest: Latest) -> bool:
        """Write the bytes ``state`` lacks into the view in place; False when
        the view is not a file of this lineage (swap instead)."""
        if state.size > meta.size:
            return False
        try:
            fd = os.open(self._view, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False  # gone, a symlink, or stale on this mount: swap a new one in
        try:
            if os.fstat(fd).st_ino != state.ino:
                return False  # not the file the sidecar speaks of
            mine = _is_lineage(fd, meta)
            if mine is not True:
                # Untagged (no xattrs here) or tagged otherwise. Asked after the
                # open: a file of a later lineage (which could reuse our inode
                # number) was renamed in only after its commit, so if ZooKeeper
                # still shows our lineage now, the file we opened is not newer.
                fresh = latest()
                if fresh is None or (fresh.file_id, fresh.lineage) != (meta.file_id,
                                                                         meta.lineage):
                    return True  # rewritten since: that rewrite's publisher shows it
                if mine is False:
                    return False  # another file under our inode number: swap
            at = state.size
            for chunk in chunks(meta, at):
                _write_at(fd, chunk, at)
                at += len(chunk)
            crash_point("after-extend")
        finally:
            os.close(fd)
        self._record(Shown(meta.file_id, meta.lineage, meta.version, meta.size, state.ino))
        return True

    def _swap(self, meta: FileMeta, chunks: Chunks) -> Shown:
        """Write the whole version to a new file and rename it over the view.

        The new file's content is fsynced (a renamed view whose data never
        reached the disk could, on some file systems, be empty after a crash);
        the rename and the sidecar need not survive one: the next commit or
        ``publish_view()`` rebuilds them."""
        make_dirs_within(self._root, self._view.parent)
        tmp = self._view.parent / f"{self._temp_prefix}{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o644)
        try:
            at = 0
            for chunk in chunks(meta, 0):
                _write_at(fd, chunk, at)
                at += len(chunk)
            os.fsync(fd)
            ino = os.fstat(fd).st_ino
            _tag(fd, meta)
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        crash_point("before-rename")
        os.replace(tmp, self._view)  # replaces a planted symlink, never follows it
        shown = Shown(meta.file_id, meta.lineage, meta.version, meta.size, ino)
        self._record(shown)
        return shown

    def collect_temps(self) -> None:
        """Delete temp files of publishers that crashed before renaming."""
        cutoff = time.time() - TEMP_GRACE
        with suppress(FileNotFoundError):
            for entry in os.scandir(self._view.parent):
                if entry.name.startswith(self._temp_prefix) and entry.name.endswith(".tmp"):
                    with suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    def _record(self, shown: Shown) -> None:
        # Overwritten in place (a rename would give ESTALE to readers on other
        # mounts); not fsynced: the sidecar is advice for publishers running now.
        make_dirs_within(self._root, self._state_dir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self._shown_path, flags, 0o644)
        try:
            _write_at(fd, shown.encode(), 0)
        finally:
            os.close(fd)


def _lineage_tag(meta: FileMeta) -> bytes:
    return f"{meta.file_id or '-'} {meta.lineage}".encode()


def _tag(fd: int, meta: FileMeta) -> None:
    """Name the lineage a new view file holds, in an extended attribute of
    its inode (where the file system has them)."""
    with suppress(OSError):
        os.setxattr(fd, LINEAGE_XATTR, _lineage_tag(meta))


def _is_lineage(fd: int, meta: FileMeta) -> bool | None:
    """Whether the open view file holds ``meta``'s lineage, per its tag; None
    when the file system keeps no extended attributes (sshfs, old tmpfs)."""
    try:
        return os.getxattr(fd, LINEAGE_XATTR) == _lineage_tag(meta)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        return False  # untagged (ENODATA: not a view we made) or unreadable


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
