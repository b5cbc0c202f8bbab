"""Durable writes and the plain view of a fenced file.

The view (``data/data.txt`` itself) is a convenience copy for ``cat`` and
tools that know nothing of zkflock; ZooKeeper's metadata stays the truth. It
costs O(new bytes): an append extends it in place (only the bytes the view
file lacks are written, at their offsets), a rewrite swaps in a whole new
file by rename.

Why this needs no lock between publishers (flock(2) does not exclude across
sshfs mounts): versions of one lineage (appends and merges since the last
rewrite) extend each other, so every byte in a view file is its lineage's
committed byte at that offset, whoever wrote it, however late, and a view
file never shrinks; an extension goes on from the file's own size (a stale,
smaller size cached by one mount only costs redundant bytes). Each view file
carries its lineage in an extended attribute, set before it is renamed in and
never changed; an extension goes only into a file of its own lineage. Where
the file system keeps no extended attributes (sshfs), a sidecar records the
inode of the view file of each lineage, and ZooKeeper is asked after the open
whether the lineage is still the latest (a file of a later lineage is renamed
in only after its commit). A rename is what can go backwards (a late swap of
an older version): so every publisher that renamed asks ZooKeeper afterwards
for the latest version and, when one is newer, publishes it over its own
file. The sidecar is overwritten in place, never renamed: another mount of a
shared volume reading a name just renamed over can get ESTALE (SHAREDFS.md).

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
        for _ in range(_REPAIRS):
            if self._extend(meta, chunks, latest):
                return meta
            self._swap(meta, chunks)
            fresh = latest()  # our rename may have hidden a newer version: ZooKeeper decides
            if fresh is None or fresh.version <= meta.version:
                return meta
            meta = fresh
        return meta

    def _extend(self, meta: FileMeta, chunks: Chunks, latest: Latest) -> bool:
        """Write the bytes the view lacks of ``meta`` in place (or nothing when
        it already shows ``meta`` or a later version of its lineage, or when
        a rewrite has come since); False when the view must be swapped."""
        for _ in range(2):
            try:
                return self._extend_once(meta, chunks, latest)
            except OSError as exc:
                # ESTALE: this mount still resolves the name to the file another
                # mount renamed over; a path lookup that meets ESTALE is
                # retried by the kernel with the entry revalidated.
                if exc.errno != errno.ESTALE:
                    return False
                with suppress(OSError):
                    os.stat(self._view, follow_symlinks=False)
        return False

    def _extend_once(self, meta: FileMeta, chunks: Chunks, latest: Latest) -> bool:
        try:
            fd = os.open(self._view, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # gone: swap a new one in
        try:
            start = self._extension_start(fd, meta, latest)
            if start is None:
                return False
            for chunk in chunks(meta, start):
                _write_at(fd, chunk, start)
                start += len(chunk)
            crash_point("after-extend")
        finally:
            with suppress(OSError):
                os.close(fd)
        return True

    def _extension_start(self, fd: int, meta: FileMeta, latest: Latest) -> int | None:
        """Where to extend the open view from (meta.size: nothing to write);
        None when it is not a file of ``meta``'s lineage (swap).

        Every byte in a view file is its lineage's committed byte at that
        offset, and a view file never shrinks, so its own size (even a stale,
        smaller one cached by this mount) is a safe place to go on from."""
        st = os.fstat(fd)
        mine = _is_lineage(fd, meta)
        if mine is not True:
            # Asked after the open: a file of a later lineage was renamed in
            # only after its commit, so if ZooKeeper still shows our lineage
            # now, the file we opened is not of a later one.
            fresh = latest()
            if fresh is None or (fresh.file_id, fresh.lineage) != (meta.file_id, meta.lineage):
                return meta.size  # rewritten since: that rewrite's publisher shows it
            if mine is False:
                return None  # tagged otherwise, or a file we did not make
            # No extended attributes here (sshfs): the sidecar names our file.
            state = self.shown()
            if state is None or (state.file_id, state.lineage, state.ino) != (
                    meta.file_id, meta.lineage, st.st_ino):
                return None
            self._record(Shown(meta.file_id, meta.lineage, meta.version, meta.size, st.st_ino))
            return min(state.size, st.st_size, meta.size)
        return min(st.st_size, meta.size)

    def _swap(self, meta: FileMeta, chunks: Chunks) -> None:
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
        # The sidecar matters only where view files carry no lineage tag.
        self._record(Shown(meta.file_id, meta.lineage, meta.version, meta.size, ino))

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


def _refresh_entry(path: Path) -> None:
    # A path lookup that meets ESTALE is retried by the kernel with the
    # entry revalidated; opening an fd of the stale entry is not.
    os.stat(path, follow_symlinks=False)
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if entry.name == path.name:
                return


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
