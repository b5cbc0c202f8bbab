"""The metadata znode of one fenced file: reading it, creating it, and the
fenced commit, including finding out whether a commit whose reply was lost
landed (the metadata remembers the objects of recent commits)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from zkflock._errors import ConnectError, FileCorruptError, StaleTokenError
from zkflock._files.meta import FileMeta, decode_meta, encode_meta, new_file_id
from zkflock._locks.protocol import queue
from zkflock._zk.client import remaining
from zkflock._zk.errors import MetaConflictError
from zkflock._zk.queue import ReadBehind

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock
    from zkflock._session import Session


class MetaStore:
    """Reads and commits the metadata of the file ``name`` at ``path``."""

    def __init__(self, session: Session, name: str, path: str) -> None:
        self._session = session
        self._name = name
        self._path = path

    def load(self, *, sync: bool = True) -> tuple[FileMeta, int | None]:
        """(metadata, znode version); version None while the znode does not exist."""
        got = self._session.zk.get_meta(self._path, sync=sync)
        if got is None:
            return FileMeta(), None
        return decode_meta(got[0], f"file {self._name!r}"), got[1]

    def latest(self) -> FileMeta:
        """The latest committed metadata, after a ZooKeeper ``sync``."""
        return self.load()[0]

    @property
    def path(self) -> str:
        return self._path

    def load_for_write(self, early: tuple[bytes, int] | None = None) -> tuple[FileMeta, int]:
        """The metadata a writer holding the lock builds on (created when missing).

        No sync: the lock's grant came through our server, which has applied
        the previous holder's commit by then. ``early``: (data, znode version)
        read in the lock's own round trip, when it shows the state at the
        grant (``read_at_grant``); else it is read now."""
        if early is not None:
            return decode_meta(early[0], f"file {self._name!r}"), early[1]
        meta, znode_version = self.load(sync=False)
        if znode_version is None:
            self._session.zk.create_meta(self._path, encode_meta(FileMeta(file_id=new_file_id())))
            meta, znode_version = self.load()
            if znode_version is None:  # pragma: no cover - deleted right after creation
                raise FileCorruptError(f"the metadata of {self._name!r} vanished")
        return meta, znode_version

    def send(self, held: Lock, new: FileMeta, znode_version: int) -> None:
        """Send the fenced multi; when its reply is lost, find out whether it
        landed before answering. Raises StaleTokenError when it certainly did
        not, ConnectError (naming the version to look at) when unknown."""
        zk = self._session.zk
        lock_path = lock_node_path(held)
        encoded = encode_meta(new)
        settings = self._session.settings
        deadline = time.monotonic() + settings.session_timeout + settings.connect_timeout
        while True:
            try:
                zk.commit_fenced(lock_path, self._path, znode_version, encoded)
                return
            except (StaleTokenError, MetaConflictError) as exc:
                if self._landed(new):
                    return  # an earlier attempt whose reply we lost went through
                if isinstance(exc, StaleTokenError):
                    raise
                raise StaleTokenError(
                    f"fenced commit to {self._name!r} refused: version {new.version - 1} "
                    "was replaced by another writer; nothing was committed"
                ) from exc
            except ConnectError as exc:
                if not zk.wait_connected(remaining(deadline)):
                    raise self._unknown(new, "ZooKeeper stayed unreachable") from exc
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
                        "while committing; nothing was committed"
                    ) from exc

    def _landed(self, new: FileMeta) -> bool:
        meta = self.latest()
        if meta.object_of(new.version) == new.object:
            return True
        if meta.version >= new.version + len(meta.recent) and meta.recent:
            raise self._unknown(new, "too many versions were committed since")
        return False

    def _unknown(self, new: FileMeta, why: str) -> ConnectError:
        return ConnectError(
            f"the outcome of the commit to {self._name!r} is unknown: {why}; look at "
            f"version {new.version}: it landed if that version's object is {new.object!r}"
        )


def read_at_grant(early: ReadBehind, held: Lock) -> tuple[bytes, int] | None:
    """What the read behind the lock's create showed, if it shows the state at
    the grant: our node was first in the listing sent before it, so the lock
    was ours at once and every earlier holder's commit (one multi with its
    release) was applied before the read. After a wait, None: a holder may
    have committed since, and the commit would fail on the znode version."""
    paths = held.node_paths()
    if early.got is None or early.children is None or paths != [f"{early.parent}/{early.node}"]:
        return None  # not read, or the lock is held through another node (adopted)
    contenders = queue(early.children)
    if not contenders or contenders[0].name != early.node:
        return None
    return early.got


def lock_node_path(held: Lock) -> str:
    """The lock node whose delete fences the commit (it fails when the lock is gone)."""
    paths = held.node_paths()
    if not paths:
        raise StaleTokenError(f"lock {held.name!r} is no longer held; nothing was committed")
    return paths[0]
