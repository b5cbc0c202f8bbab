"""Streaming reads of a fenced file: segment by segment, in bounded memory.

A reader reads one committed version (the latest when it was opened), each
segment verified against its checksum. A segment may be collected while the
reader is on its way (a later writer merged it into a bigger one): the
reader then asks ZooKeeper for the latest version and, when that version
extends the one being read (same lineage: appends and merges never change
bytes already committed), goes on at the same offset from the new segments.
A rewrite in between is reported, not papered over.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

from zkflock._errors import FileCorruptError, FileRewrittenError
from zkflock._files import objects
from zkflock._files.meta import FileMeta
from zkflock._files.objects import ObjectGoneError, ObjectStore
from zkflock._files.segments import covering, offsets

_RELOADS = 8  # new versions a reader follows for collected segments before giving up


def stream(meta: FileMeta, store: ObjectStore, load: Callable[[], FileMeta], name: str,
           start: int = 0) -> Iterator[bytes]:
    """The bytes of version ``meta`` from offset ``start``, verified.

    A missing segment is looked up in the latest version: collected (a later
    writer merged it away) means go on from that version's segments; still
    referenced means a cache of this mount hides it, retried for
    ``objects.RETRY_WINDOW`` seconds before it is called missing."""
    at, current = start, meta
    reloads, hidden_since = 0, None
    while at < meta.size:
        index = covering(current.segments, at)
        seg = current.segments[index]
        seg_start = offsets(current.segments)[index]
        try:
            # Read to the segment's end even past meta.size (a newer version's
            # segment): its checksum is verified only there.
            for chunk in store.read(seg, at - seg_start):
                chunk = chunk[:meta.size - at]
                if chunk:
                    at += len(chunk)
                    yield chunk
        except ObjectGoneError as exc:
            latest = load()
            if seg.object in latest.referenced():
                hidden_since = hidden_since or time.monotonic()
                if time.monotonic() - hidden_since > objects.RETRY_WINDOW:
                    raise FileCorruptError(
                        f"content object {seg.object!r} of {name!r} (version "
                        f"{latest.version}) is missing from {store.directory}; restore it "
                        "or commit a new version"
                    ) from exc
                time.sleep(0.05)
                continue
            reloads += 1
            if latest.lineage != meta.lineage or latest.file_id != meta.file_id or (
                    reloads > _RELOADS):
                raise FileRewrittenError(
                    f"{name!r} was rewritten (version {latest.version}) while version "
                    f"{meta.version} was being read; read it again"
                ) from exc
            current, hidden_since = latest, None


class FileReader(io.RawIOBase):
    """A binary reader of one committed version of a fenced file.

    >>> with f.open() as r:                                   # doctest: +SKIP
    ...     for line in r:
    ...         print(line)
    """

    def __init__(self, meta: FileMeta, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._meta = meta
        self._chunks = chunks
        self._pending = memoryview(b"")

    @property
    def meta(self) -> FileMeta:
        """The version this reader reads."""
        return self._meta

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()
