"""``SharedFile``: a file on the shared volume whose writes are fenced.

A write goes: take the lock; write what is new to one new, uniquely named,
immutable object and fsync it (and its directory) — for an append only the
new bytes, plus now and then the newest segments merged with them
(``segments``); commit one ZooKeeper multi that deletes our lock node
(failing, as a whole, when it is already gone) and sets the metadata at the
version we read (``ZkClient.commit_fenced``); then, best effort, publish the
plain view (``view``) and collect objects no version refers to any more
(``collect``).
ZooKeeper, not the file system, decides which objects are current, so a
holder that lost its lock (paused, partitioned, expired) can never make its
write visible (Kleppmann, "How to do distributed locking"; Chubby's
sequencers).

Layout under the shared root, for a file named ``data/data.txt``::

    data/data.txt                              the plain view (cat works)
    .zkflock/objects/data%2Fdata.txt/<version>-<token>-<random>   segments
    .zkflock/objects/data%2Fdata.txt/<version>-<token>-<random>.edit  working copies
    .zkflock/views/data%2Fdata.txt.shown       what the view shows (sidecar)
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from zkflock._errors import (
    ConfigError,
    FileRewrittenError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    StaleTokenError,
    VolumeError,
    ZkflockError,
)
from zkflock._files.collect import collect
from zkflock._files.commit import MetaStore, read_at_grant
from zkflock._files.disk import crash_point, store_dir_name
from zkflock._files.meta import FileMeta, Segment, object_name
from zkflock._files.objects import CHUNK, ObjectStore, remove
from zkflock._files.reader import FileReader, stream
from zkflock._files.segments import merge_start
from zkflock._files.view import ViewPublisher
from zkflock._files.working_copy import EDIT_SUFFIX, Document, WorkingCopy
from zkflock._names import file_meta_path, lock_parent, normalize_name
from zkflock.metrics import NOOP, safely

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock
    from zkflock._session import Session

log = logging.getLogger("zkflock")

_READ_ATTEMPTS = 5  # rewrites a whole read() retries through
EDIT_LIMIT = 64 << 20  # bytes edit() holds in memory; larger files: open(), write(), working_copy()


class Readable(Protocol):
    """What ``write()`` streams from: a binary file object's ``read(n)``."""

    def read(self, n: int = ..., /) -> bytes: ...


class SharedFile:
    """A fenced file: every committed write is whole, and a writer that lost
    its lock cannot commit.

    >>> f = zk.shared_file("data/data.txt")                 # doctest: +SKIP
    >>> f.append("a line\\n")
    >>> with f.edit() as doc:
    ...     doc.text += "another line\\n"
    >>> f.read()
    >>> with f.open() as r:
    ...     shutil.copyfileobj(r, sys.stdout.buffer)
    """

    def __init__(self, session: Session, name: str) -> None:
        settings = session.settings
        self._session = session
        self._name = normalize_name(name, settings.root)
        root = Path(settings.root)
        self._view = root / self._name
        self._store = ObjectStore(root, root / ".zkflock" / "objects" / store_dir_name(self._name))
        self._metas = MetaStore(session, self._name, file_meta_path(self._name,
                                                                    settings.namespace))
        self._lock_parent = lock_parent(self._name, settings.namespace)
        self._publisher = ViewPublisher(root, self._view, root / ".zkflock" / "views", self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> Path:
        """The plain view on the shared volume (readable with ``cat``)."""
        return self._view

    @property
    def objects_dir(self) -> Path:
        return self._store.directory

    # -- reading -------------------------------------------------------------

    def meta(self) -> FileMeta:
        """The latest committed metadata (after a ZooKeeper ``sync``)."""
        return self._metas.latest()

    def open(self) -> io.BufferedReader:
        """A binary reader of the latest committed version, streamed segment by
        segment in bounded memory, each segment checksum-verified. A rewrite
        committed while it reads raises FileRewrittenError (appends do not
        disturb it: it reads the version it opened)."""
        meta = self._metas.latest()
        return io.BufferedReader(FileReader(meta, self._chunks(meta, 0)), CHUNK)

    def read_bytes(self) -> bytes:
        """The latest committed content, whole and checksum-verified."""
        for _ in range(_READ_ATTEMPTS):
            meta = self._metas.latest()
            try:
                return b"".join(self._chunks(meta, 0))
            except FileRewrittenError:
                continue  # read the newer version
        raise FileRewrittenError(
            f"{self._name!r} was rewritten {_READ_ATTEMPTS} times while being read; "
            "read it when writers pause, or stream it with open()"
        )

    def read(self) -> str:
        """The latest committed content as text ("" before the first write)."""
        return self.read_bytes().decode("utf-8")

    def _chunks(self, meta: FileMeta, start: int) -> Iterator[bytes]:
        return stream(meta, self._store, self._metas.latest, self._name, start)

    # -- writing -------------------------------------------------------------

    def append(self, data: str | bytes | Readable, *,
               timeout: float | None = None) -> FileMeta:
        """Append ``data`` (text, bytes, or a binary file object streamed in
        bounded memory, all in one commit) under the lock; returns the
        committed metadata (the current one when ``data`` is empty).

        Writes only the new bytes (and, now and then, merges the newest
        segments with them): the old content is never read."""
        rest: Readable | None = None
        if isinstance(data, str):
            head = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            head = bytes(data)
        else:
            head, rest = data.read(CHUNK), data
        with self._writing(timeout, f"append {self._name}") as (held, base, znode_version):
            if not head:
                return base
            return self._append(held, base, znode_version, head, rest)

    def write(self, content: str | bytes | Readable, *,
              timeout: float | None = None) -> FileMeta:
        """Replace the content with ``content`` (text, bytes, or a binary file
        object, streamed in bounded memory); returns the committed metadata."""
        if isinstance(content, str):
            chunks: Iterable[bytes] = [content.encode("utf-8")]
        elif isinstance(content, (bytes, bytearray, memoryview)):
            chunks = [bytes(content)]
        else:
            chunks = iter(lambda: content.read(CHUNK), b"")
        with self._writing(timeout, f"write {self._name}") as (held, base, znode_version):
            return self._rewrite(held, base, znode_version, chunks)

    @contextmanager
    def edit(self, *, timeout: float | None = None, purpose: str = "") -> Iterator[Document]:
        """Read-modify-write under the lock, the whole content in memory:
        committed on a clean exit (when changed), not at all when the block
        raises. An edit that only adds bytes at the end commits them as an
        append. Files over ``EDIT_LIMIT`` bytes are refused: use ``open()``,
        ``write()`` or ``working_copy()``. ``purpose`` is shown by
        ``zkflock status`` while the lock is held."""
        with self._writing(timeout, purpose or f"edit {self._name}") as (held, base, version):
            if base.size > EDIT_LIMIT:
                raise ConfigError(
                    f"{self._name!r} holds {base.size} bytes, more than edit() keeps in "
                    f"memory ({EDIT_LIMIT}); stream it with open() and write(), or edit it "
                    "on disk with working_copy() ('zkflock edit')"
                )
            data = b"".join(self._chunks(base, 0))
            doc = Document(data, base, held.token)
            yield doc
            if doc.data == data:
                return
            if len(doc.data) > len(data) and doc.data.startswith(data):
                doc.committed = self._append(held, base, version, doc.data[len(data):])
            else:
                doc.committed = self._rewrite(held, base, version, [doc.data])

    @contextmanager
    def working_copy(self, *, timeout: float | None = None,
                     purpose: str = "") -> Iterator[WorkingCopy]:
        """Take the lock and hand out a private working copy of the latest
        version, in the objects directory (the same volume as the objects).

        On a clean exit the copy, when its content changed, is committed as
        the new version with a fenced commit: it is renamed into an object,
        nothing is copied (StaleTokenError, and nothing committed, if the lock
        was lost meanwhile). An unchanged copy, or one ``discard()``-ed,
        commits nothing. When the block raises, nothing is committed and the
        exception passes through. The copy is removed and the lock released
        in every case.

        >>> with f.working_copy() as copy:                       # doctest: +SKIP
        ...     subprocess.run(["sed", "-i", "s/a/b/", copy.path], check=True)
        """
        with self._writing(timeout, purpose or f"edit {self._name}") as (held, base, version):
            name = object_name(base.version + 1, held.token)
            original = self._create(name + EDIT_SUFFIX, self._chunks(base, 0), sync_dir=False)
            copy = WorkingCopy(self._store.path(original.object), held, held.token)
            try:
                yield copy
                if not copy.discarded:
                    copy.committed = self._commit_copy(held, base, version, copy, original)
            finally:
                copy.remove()

    def _commit_copy(self, held: Lock, base: FileMeta, znode_version: int,
                     copy: WorkingCopy, original: Segment) -> FileMeta | None:
        name = original.object[: -len(EDIT_SUFFIX)]
        try:
            seg, prefix = self._store.adopt(copy.path, name, original.length)
        except FileNotFoundError as exc:
            raise VolumeError(
                f"the working copy {copy.path} of {self._name!r} is gone; nothing was committed"
            ) from exc
        except OSError as exc:
            raise VolumeError(f"committing the working copy {copy.path} of {self._name!r} "
                              f"failed: {exc}; nothing was committed") from exc
        if (seg.length, seg.sha256) == (original.length, original.sha256):
            remove(self._store.path(name))
            return None
        new = base.successor(copy.token, name, (seg,), extends=prefix == original.sha256)
        return self._commit(held, base, znode_version, new, base.segments)

    @contextmanager
    def _writing(self, timeout: float | None,
                 purpose: str) -> Iterator[tuple[Lock, FileMeta, int]]:
        held = self._session.lock(self._name, timeout=timeout, purpose=purpose)
        # The metadata read rides in the lock's round trip (create, listing, read).
        with self._session.zk.read_behind_queue(self._lock_parent, self._metas.path) as early:
            if not held.acquire(timeout=timeout):
                raise LockTimeoutError(self._name, timeout)
        try:
            base, znode_version = self._metas.load_for_write(read_at_grant(early, held))
            yield held, base, znode_version
        finally:
            self._release(held)

    def _release(self, held: Lock) -> None:
        # A commit that landed stays acknowledged even if the lock is lost
        # right after it: releasing then is only cleanup (and after a commit,
        # which released the lock itself, nothing is left to do).
        if not held.node_paths():
            return
        try:
            held.release()
        except ZkflockError as exc:
            log.debug("releasing %s after a write: %s", self._name, exc)

    def _append(self, held: Lock, base: FileMeta, znode_version: int, data: bytes,
                rest: Readable | None = None) -> FileMeta:
        # With a stream, len(data) is a lower bound of the new segment's size.
        k = merge_start([seg.length for seg in base.segments], len(data))
        merged = base.segments[k:]
        token = _token_of(held)
        name = object_name(base.version + 1, token)
        crash_point("before-object")
        # A merge reads (and verifies) the merged segments; a plain append reads nothing.
        old = self._chunks(base, base.size - sum(s.length for s in merged)) if merged else ()
        more: Iterable[bytes] = iter(lambda: rest.read(CHUNK), b"") if rest is not None else ()
        seg = self._create(name, chain(old, [data], more))
        crash_point("after-merge" if merged else "after-object")
        new = base.successor(token, name, (*base.segments[:k], seg), extends=True)
        return self._commit(held, base, znode_version, new, merged)

    def _rewrite(self, held: Lock, base: FileMeta, znode_version: int,
                 chunks: Iterable[bytes]) -> FileMeta:
        token = _token_of(held)
        name = object_name(base.version + 1, token)
        crash_point("before-object")
        seg = self._create(name, chunks)
        crash_point("after-object")
        new = base.successor(token, name, (seg,), extends=False)
        return self._commit(held, base, znode_version, new, base.segments)

    def _create(self, name: str, chunks: Iterable[bytes], *, sync_dir: bool = True) -> Segment:
        try:
            return self._store.create(name, chunks, sync_dir=sync_dir)
        except OSError as exc:
            raise VolumeError(
                f"writing {self._store.path(name)} for {self._name!r} failed ({exc}); "
                "nothing was committed; check the shared volume and retry"
            ) from exc

    def _commit(self, held: Lock, base: FileMeta, znode_version: int, new: FileMeta,
                dropped: tuple[Segment, ...]) -> FileMeta:
        """The fenced commit of ``new``; after it lands, nothing raises."""
        started = time.monotonic()
        try:
            try:
                held.ensure_held()
            except LockLostError as exc:
                raise StaleTokenError(
                    f"not committing {self._name!r}: {exc}; nothing was committed"
                ) from exc
            self._metas.send(held, new, znode_version)
        except StaleTokenError:
            remove(self._store.path(new.object))  # certainly not committed
            self._observe("stale", started)
            raise
        except BaseException:
            # Outcome unknown (or interrupted): keep the object, which may be
            # committed; the collector removes it if it is not.
            self._observe("failed", started)
            raise
        held.released_by_commit()  # the commit deleted our lock node
        self._observe("accepted", started)
        crash_point("after-commit")
        self._after_commit(new, dropped)
        return new

    def _observe(self, outcome: str, started: float) -> None:
        observer = self._session.observer
        if observer is not NOOP:
            safely(observer.committed, self._name, outcome, time.monotonic() - started)

    def _after_commit(self, new: FileMeta, dropped: tuple[Segment, ...]) -> None:
        # The commit landed: the view and collection are best effort, and no
        # failure of theirs may tell the writer its committed write failed
        # (a caller who retried would write twice). The next writer repairs.
        try:
            self._publisher.publish(new, self._chunks, self._latest_or_none)
        except Exception as exc:  # our own best-effort step: logged, never raised
            log.warning("%s: version %d committed; publishing the view failed: %r",
                        self._name, new.version, exc)
            log.debug("publishing the view of %s", self._name, exc_info=True)
        try:
            collect(self._store, self._publisher, new, dropped)
        except Exception as exc:  # likewise
            log.warning("%s: version %d committed; collecting failed: %r",
                        self._name, new.version, exc)

    # -- the view ------------------------------------------------------------

    def publish_view(self) -> FileMeta:
        """(Re)publish the plain view from the latest committed version."""
        meta = self._metas.latest()
        return self._publisher.publish(meta, self._chunks, self._latest_or_none)

    def _latest_or_none(self) -> FileMeta | None:
        try:
            return self._metas.latest()
        except ZkflockError as exc:
            log.debug("re-reading %s after publishing: %s", self._name, exc)
            return None

    def __repr__(self) -> str:
        return f"<SharedFile {self._name!r}>"


def _token_of(held: Lock) -> int:
    """The token to commit with; a lock already lost has none: nothing is committed."""
    try:
        return held.token
    except LockNotHeldError as exc:
        raise StaleTokenError(
            f"not committing {held.name!r}: {exc}; nothing was committed"
        ) from exc
