"""``SharedFile``: a file on the shared volume whose writes are fenced.

A write goes: take the lock; write the new content to a new, uniquely named,
immutable object and fsync it; commit one ZooKeeper multi that deletes our
lock node (failing, as a whole, when it is already gone) and sets the
metadata at the version we read
(``ZkClient.commit_fenced``); then publish the plain view by atomic rename and
collect old objects. ZooKeeper, not the file system, decides which object is
current, so a holder that lost its lock (paused, partitioned, expired) can
never make its write visible (Kleppmann, "How to do distributed locking";
Chubby's sequencers).

Layout under the shared root, for a file named ``data/data.txt``::

    data/data.txt                              the plain view (cat works)
    .zkflock/objects/data%2Fdata.txt/<version>-<token>-<random>
    .zkflock/views/data%2Fdata.txt.lock        flock(2) serialising publishers
    .zkflock/views/data%2Fdata.txt.version     the version the view shows
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from zkflock._errors import (
    ConnectError,
    FileCorruptError,
    LockLostError,
    LockTimeoutError,
    StaleTokenError,
    ZkflockError,
)
from zkflock._files.meta import (
    FileMeta,
    decode_meta,
    encode_meta,
    new_file_id,
    object_name,
    object_version,
)
from zkflock._files.view import ViewPublisher, crash_point, store_dir_name, write_durably
from zkflock._files.working_copy import EDIT_SUFFIX, WorkingCopy
from zkflock._names import file_meta_path, normalize_name
from zkflock._zk.client import remaining
from zkflock._zk.errors import MetaConflictError

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock
    from zkflock._session import Session

log = logging.getLogger("zkflock")

_READ_ATTEMPTS = 5


class Document:
    """The content being edited: ``text`` (str, UTF-8) or ``data`` (bytes)."""

    def __init__(self, data: bytes, base: FileMeta, token: int) -> None:
        self.data = data
        self._base = base
        self._token = token
        self.committed: FileMeta | None = None  # set once the edit is committed

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    @text.setter
    def text(self, value: str) -> None:
        self.data = value.encode("utf-8")

    @property
    def version(self) -> int:
        """The version this edit started from."""
        return self._base.version

    @property
    def token(self) -> int:
        """The fencing token of the lock this edit holds."""
        return self._token


class SharedFile:
    """A fenced file: every committed write is whole, and a writer that lost
    its lock cannot commit.

    >>> f = zk.shared_file("data/data.txt")                 # doctest: +SKIP
    >>> f.append("a line\\n")
    >>> with f.edit() as doc:
    ...     doc.text += "another line\\n"
    >>> f.read()
    """

    def __init__(self, session: Session, name: str) -> None:
        settings = session.settings
        self._session = session
        self._name = normalize_name(name, settings.root)
        self._meta_path = file_meta_path(self._name, settings.namespace)
        root = Path(settings.root)
        self._view = root / self._name
        self._objects = root / ".zkflock" / "objects" / store_dir_name(self._name)
        self._root = root
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
        return self._objects

    # -- reading -------------------------------------------------------------

    def meta(self) -> FileMeta:
        """The latest committed metadata (after a ZooKeeper ``sync``)."""
        return self._load()[0]

    def read_bytes(self) -> bytes:
        """The latest committed content, whole and checksum-verified."""
        return self._read_latest()[1]

    def read(self) -> str:
        """The latest committed content as text ("" before the first write)."""
        return self.read_bytes().decode("utf-8")

    def _load(self, *, sync: bool = True) -> tuple[FileMeta, int | None]:
        got = self._session.zk.get_meta(self._meta_path, sync=sync)
        if got is None:
            return FileMeta(), None
        return decode_meta(got[0], f"file {self._name!r}"), got[1]

    def _read_latest(self) -> tuple[FileMeta, bytes]:
        # An object can be collected between reading the metadata and opening
        # it (a newer version was committed meanwhile): read the metadata again.
        for _ in range(_READ_ATTEMPTS):
            meta = self._load()[0]
            data = self._read_object(meta)
            if data is not None:
                return meta, data
        raise FileCorruptError(
            f"content object {meta.object!r} of {self._name!r} (version {meta.version}) "
            f"is missing from {self._objects}; restore it or commit a new version"
        )

    def _read_object(self, meta: FileMeta) -> bytes | None:
        if not meta.object:
            return b""
        try:
            data = (self._objects / meta.object).read_bytes()
        except FileNotFoundError:
            return None
        meta.verify(data)
        return data

    # -- writing -------------------------------------------------------------

    def append(self, text: str, *, timeout: float | None = None) -> FileMeta:
        """Append ``text`` under the lock; returns the committed metadata."""
        with self.edit(timeout=timeout) as doc:
            doc.text += text
        assert doc.committed is not None
        return doc.committed

    def write(self, text: str, *, timeout: float | None = None) -> FileMeta | None:
        """Replace the content with ``text``; None if it was already that."""
        with self.edit(timeout=timeout) as doc:
            doc.text = text
        return doc.committed

    @contextmanager
    def edit(self, *, timeout: float | None = None, purpose: str = "") -> Iterator[Document]:
        """Read-modify-write under the lock: committed on a clean exit (when
        changed), not at all when the block raises. The commit also releases
        the lock (one transaction); the plain view is published after it.
        ``purpose`` is shown by ``zkflock status`` while the lock is held."""
        held = self._session.lock(
            self._name, timeout=timeout, purpose=purpose or f"edit {self._name}"
        )
        if not held.acquire(timeout=timeout):
            raise LockTimeoutError(self._name, timeout)
        try:
            meta, znode_version = self._load_for_write()
            data = self._read_object(meta)
            if data is None:
                raise FileCorruptError(
                    f"content object {meta.object!r} of {self._name!r} is missing "
                    f"from {self._objects}; restore it or commit a new version"
                )
            doc = Document(data, meta, held.token)
            yield doc
            if doc.data != data:
                doc.committed = self._commit(held, meta, znode_version, doc.data)
        finally:
            self._release(held)

    @contextmanager
    def working_copy(self, *, timeout: float | None = None,
                     purpose: str = "") -> Iterator[WorkingCopy]:
        """Take the lock and hand out a private working copy of the latest
        version, on the same volume as the objects.

        On a clean exit the copy, when its content changed, is committed as
        the new version with a fenced commit (StaleTokenError, and nothing
        committed, if the lock was lost meanwhile); an unchanged copy, or one
        ``discard()``-ed, commits nothing. When the block raises, nothing is
        committed and the exception passes through. The copy is removed and
        the lock released in every case.

        >>> with f.working_copy() as copy:                       # doctest: +SKIP
        ...     subprocess.run(["sed", "-i", "s/a/b/", copy.path], check=True)
        """
        held = self._session.lock(
            self._name, timeout=timeout, purpose=purpose or f"edit {self._name}"
        )
        if not held.acquire(timeout=timeout):
            raise LockTimeoutError(self._name, timeout)
        copy: WorkingCopy | None = None
        try:
            meta, znode_version = self._load_for_write()
            data = self._read_object(meta)
            if data is None:
                raise FileCorruptError(
                    f"content object {meta.object!r} of {self._name!r} is missing "
                    f"from {self._objects}; restore it or commit a new version"
                )
            path = self._objects / (object_name(meta.version + 1, held.token) + EDIT_SUFFIX)
            write_durably(path, data, self._root, sync_dir=False)
            copy = WorkingCopy(path, held, held.token)
            yield copy
            if not copy.discarded:
                try:
                    edited = copy.path.read_bytes()
                except FileNotFoundError as exc:
                    raise StaleTokenError(
                        f"the working copy {copy.path} of {self._name!r} is gone; "
                        "nothing was committed"
                    ) from exc
                if edited != data:
                    self._commit(held, meta, znode_version, edited)
        finally:
            if copy is not None:
                copy.remove()
            self._release(held)

    def _load_for_write(self) -> tuple[FileMeta, int]:
        meta, znode_version = self._load(sync=False)
        if znode_version is None:
            self._session.zk.create_meta(
                self._meta_path, encode_meta(FileMeta(file_id=new_file_id()))
            )
            meta, znode_version = self._load()
            if znode_version is None:  # pragma: no cover - deleted right after creation
                raise FileCorruptError(f"the metadata of {self._name!r} vanished")
        return meta, znode_version

    def _release(self, held: Lock) -> None:
        # A commit that landed stays acknowledged even if the lock is lost
        # right after it: releasing then is only cleanup (and after a commit,
        # which released the lock itself, nothing is left to do).
        if not held.node_paths():
            return
        try:
            held.release()
        except ZkflockError as exc:
            log.debug("releasing %s after an edit: %s", self._name, exc)

    def _commit(self, held: Lock, base: FileMeta, znode_version: int, data: bytes) -> FileMeta:
        crash_point("before-object")
        obj = object_name(base.version + 1, held.token)
        path = self._objects / obj
        write_durably(path, data, self._root)
        crash_point("after-object")
        new = base.successor(held.token, obj, data)
        try:
            try:
                held.ensure_held()
            except LockLostError as exc:
                raise StaleTokenError(
                    f"not committing {self._name!r}: {exc}; nothing was written"
                ) from exc
            self._send_commit(held, new, znode_version)
        except BaseException:
            with suppress(OSError):
                path.unlink()
            raise
        held.released_by_commit()  # the commit deleted our lock node
        crash_point("after-commit")
        # The lock is free again: a writer behind us may commit a newer version
        # and publish it first; the sidecar keeps us from rolling its view
        # back, and it publishes its own, so no re-read of ZooKeeper here.
        self._publisher.publish(new, data, None)
        self._collect(new)
        return new

    def _send_commit(self, held: Lock, new: FileMeta, znode_version: int) -> None:
        """Send the fenced multi; when its reply is lost, find out whether it
        landed (the metadata remembers recent objects) before answering."""
        zk = self._session.zk
        lock_path = _lock_node_path(held)
        encoded = encode_meta(new)
        settings = self._session.settings
        deadline = time.monotonic() + settings.session_timeout + settings.connect_timeout
        while True:
            try:
                zk.commit_fenced(lock_path, self._meta_path, znode_version, encoded)
                return
            except (StaleTokenError, MetaConflictError) as exc:
                if self._landed(new):
                    return  # an earlier attempt whose reply we lost went through
                if isinstance(exc, StaleTokenError):
                    raise
                raise StaleTokenError(
                    f"fenced commit to {self._name!r} refused: version {new.version - 1} "
                    "was replaced by another writer; nothing was written"
                ) from exc
            except ConnectError as exc:
                if not zk.wait_connected(remaining(deadline)):
                    raise ConnectError(
                        f"the outcome of the commit to {self._name!r} is unknown: ZooKeeper "
                        "stayed unreachable; read the file to see whether it landed"
                    ) from exc
                if self._landed(new):
                    return
                if not held.is_held:
                    # Delete our own node (if the session survived) so that a
                    # request of ours still in flight cannot land after this.
                    zk.delete(lock_path)
                    if self._landed(new):
                        return
                    raise StaleTokenError(
                        f"fenced commit to {self._name!r} not made: the lock was lost "
                        "while committing; nothing was written"
                    ) from exc

    def _landed(self, new: FileMeta) -> bool:
        meta = self._load()[0]
        if meta.object_of(new.version) == new.object:
            return True
        if meta.version >= new.version + len(meta.recent) and meta.recent:
            raise ConnectError(
                f"the outcome of the commit to {self._name!r} is unknown: too many "
                "versions were committed since; read the file to see whether it landed"
            )
        return False

    # -- the view and collection ----------------------------------------------

    def publish_view(self) -> FileMeta:
        """(Re)publish the plain view from the latest committed version."""
        meta, data = self._read_latest()
        self._publisher.publish(meta, data, self._latest_for_view)
        return meta

    def _latest_for_view(self) -> tuple[FileMeta, bytes] | None:
        try:
            return self._read_latest()
        except ZkflockError as exc:
            log.debug("re-reading %s before publishing: %s", self._name, exc)
            return None

    def _collect(self, current: FileMeta) -> None:
        """Delete objects no reader needs: keep the current and the previous
        version; delete every other object of a version up to the current one
        (superseded commits, and leftovers of writers that crashed or were
        fenced: a commit for such a version can no longer succeed)."""
        keep = set(current.recent[:2])
        try:
            entries = list(os.scandir(self._objects))
        except FileNotFoundError:
            return
        for entry in entries:
            version = object_version(entry.name)
            if version is not None and version <= current.version and entry.name not in keep:
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
        self._publisher.collect_temps()

    def __repr__(self) -> str:
        return f"<SharedFile {self._name!r}>"


def _lock_node_path(held: Lock) -> str:
    """The lock node whose delete fences the commit (it fails when the lock is gone)."""
    paths = held.node_paths()
    if not paths:
        raise StaleTokenError(f"lock {held.name!r} is no longer held; nothing was written")
    return paths[0]
