"""The immutable objects of a fenced file: written once, fsynced, read back
verified against the checksum the metadata holds.

Reading an object that ZooKeeper says is committed is retried within a bound
before it is called missing or corrupt, because a shared volume's client can
hide or shorten a name it has cached (SHAREDFS.md): a negative-lookup cache
hides a new name for its lifetime (``negative-timeout``), and a mount that
listed the directory while another mount was writing the object reads it as
0 bytes for about a second. Objects are immutable and never reused, so a
retry after such a moment sees the whole object.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path

from zkflock._errors import FileCorruptError
from zkflock._files.disk import fsync_dir, make_dirs_within
from zkflock._files.segments import Segment

CHUNK = 1 << 20  # bytes per read or write: memory stays bounded whatever the size
VERIFY_BUFFER = 4 << 20  # segments up to this size are verified before any byte is returned
RETRY_WINDOW = 3.0  # seconds a committed object may stay hidden or short (caches: ~1-2 s)
MISMATCH_RETRIES = 3  # re-reads of a whole-length object that fails its checksum


# errnos of an object that is not there (any more) on this mount
_GONE = (errno.ENOENT, errno.ESTALE)


class ObjectGoneError(FileNotFoundError):
    """An object is missing; the caller decides whether a newer version explains it."""


class ObjectStore:
    """The objects directory of one fenced file."""

    def __init__(self, root: Path, directory: Path) -> None:
        self._root = root
        self._dir = directory

    @property
    def directory(self) -> Path:
        return self._dir

    def path(self, name: str) -> Path:
        return self._dir / name

    def create(self, name: str, chunks: Iterable[bytes], *, sync_dir: bool = True) -> Segment:
        """Write a new object from ``chunks`` (never replacing anything), fsync
        it (and the directory); returns its segment. Removed again on failure."""
        make_dirs_within(self._root, self._dir)
        path = self._dir / name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        try:
            digest, length = hashlib.sha256(), 0
            for chunk in chunks:
                digest.update(chunk)
                length += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            remove(path)
            raise
        os.close(fd)
        if sync_dir:
            fsync_dir(self._dir)
        return Segment(name, length, digest.hexdigest())

    def adopt(self, source: Path, name: str, prefix: int) -> tuple[Segment, str]:
        """Make the file ``source`` (in this directory) the object ``name``:
        checksum and fsync it, rename it, fsync the directory. Copies nothing.
        Returns its segment and the SHA-256 of its first ``prefix`` bytes (or
        "" when it is shorter), which tells whether it extends a version."""
        digest, head, length = hashlib.sha256(), hashlib.sha256(), 0
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, CHUNK):
                digest.update(chunk)
                if length < prefix:
                    head.update(chunk[: prefix - length])
                length += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(source, self._dir / name)
        fsync_dir(self._dir)
        extends = head.hexdigest() if length >= prefix else ""
        return Segment(name, length, digest.hexdigest()), extends

    def read(self, seg: Segment, skip: int = 0) -> Iterator[bytes]:
        """The bytes of ``seg`` from offset ``skip``, verified.

        A small segment is read whole and verified before anything is
        returned (and re-read within the retry window when it mismatches); a
        large one is streamed and verified at its end. Raises ObjectGoneError
        when the object stays missing through the window (the caller asks
        ZooKeeper whether a newer version explains it), FileCorruptError when
        it is short or does not match its checksum."""
        if seg.length <= VERIFY_BUFFER:
            data = self._read_small(seg)
            for at in range(skip, len(data), CHUNK):
                yield data[at:at + CHUNK]
            return
        digest, at = hashlib.sha256(), 0
        for chunk in self._stream(seg):
            digest.update(chunk)
            end = at + len(chunk)
            if end > skip:
                yield chunk[max(0, skip - at):]
            at = end
        if digest.hexdigest() != seg.sha256:
            raise self._corrupt(seg, f"{at} bytes with another sha256")

    def _read_small(self, seg: Segment) -> bytes:
        # A hidden or short object is retried by _stream. A whole-length
        # mismatch is no cache artefact (objects are never rewritten), so it
        # is re-read only a few times before it is called corrupt.
        for attempt in range(MISMATCH_RETRIES):
            data = b"".join(self._stream(seg))
            if hashlib.sha256(data).hexdigest() == seg.sha256:
                return data
            if attempt + 1 < MISMATCH_RETRIES:
                time.sleep(0.05)
        raise self._corrupt(seg, f"{len(data)} bytes with sha256 "
                                 f"{hashlib.sha256(data).hexdigest()[:12]}…")

    def _stream(self, seg: Segment) -> Iterator[bytes]:
        """The object's first ``seg.length`` bytes, reopening after a short
        read until the retry window ends; ObjectGoneError when it is missing."""
        deadline = time.monotonic() + RETRY_WINDOW
        at, pause = 0, 0.01
        while at < seg.length:
            try:
                fd = os.open(self._dir / seg.object, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as exc:
                # The caller asks ZooKeeper first: collected (read the newer
                # version) or hidden by a cache (retry within the window).
                # ESTALE is what a GlusterFS mount answers for an object another
                # mount has just collected: missing, as ENOENT is (SHAREDFS.md).
                if exc.errno not in _GONE:
                    raise
                raise ObjectGoneError(f"object {seg.object!r} is missing") from exc
            try:
                while at < seg.length:
                    try:
                        chunk = os.pread(fd, min(CHUNK, seg.length - at), at)
                    except OSError as exc:
                        if exc.errno != errno.ESTALE:
                            raise
                        raise ObjectGoneError(f"object {seg.object!r} is gone") from exc
                    if not chunk:
                        break  # short: a cached size; reopen and go on after a pause
                    at += len(chunk)
                    yield chunk
            finally:
                _close_read_only(fd)
            if at < seg.length:
                if time.monotonic() >= deadline:
                    raise self._corrupt(seg, f"only {at} bytes")
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def _corrupt(self, seg: Segment, found: str) -> FileCorruptError:
        return FileCorruptError(
            f"content object {seg.object!r} in {self._dir} does not match its checksum in "
            f"the metadata: expected {seg.length} bytes with sha256 {seg.sha256[:12]}…, "
            f"found {found} (after retries); restore the object from a backup or commit "
            "a new version"
        )


def _close_read_only(fd: int) -> None:
    """Close a descriptor we only read from. A FUSE close flushes, and
    GlusterFS answers ESTALE there when another mount collected the object
    meanwhile; nothing was written through it and what was read is verified
    by its checksum, so that error means nothing here."""
    try:
        os.close(fd)
    except OSError as exc:
        if exc.errno != errno.ESTALE:
            raise


def remove(path: Path) -> None:
    """Delete ``path`` if it exists (a leftover the collector would find anyway)."""
    with suppress(OSError):
        os.unlink(path)
