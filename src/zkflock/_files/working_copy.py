"""What ``SharedFile.edit()`` and ``SharedFile.working_copy()`` hand out.

``Document``: the whole content in memory, for small files. ``WorkingCopy``:
a private copy of a fenced file to edit in place: a program that knows
nothing of zkflock (``zkflock edit FILE -- COMMAND``) edits a plain file,
and zkflock commits it afterwards with a fenced commit. The copy lives in
the file's objects directory, on the same volume as the objects, so
committing it renames it into an object: nothing is copied.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zkflock._files.meta import FileMeta
    from zkflock._locks.lock import Lock

EDIT_SUFFIX = ".edit"  # working copies: ``<version>-<token>-<random>.edit``


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


class WorkingCopy:
    """A private working copy of a fenced file, held under its lock.

    ``path`` is the copy (edit it in place, or replace it by rename);
    ``token`` the lock's fencing token; ``lock`` the held Lock (for
    ``ensure_held`` or ``add_lost_callback``). ``discard()`` makes the exit
    commit nothing.
    """

    def __init__(self, path: Path, lock: Lock, token: int) -> None:
        self._path = path
        self._lock = lock
        self._token = token
        self._discarded = False
        self.committed: FileMeta | None = None  # set once the copy is committed

    @property
    def path(self) -> Path:
        return self._path

    @property
    def token(self) -> int:
        return self._token

    @property
    def lock(self) -> Lock:
        return self._lock

    @property
    def discarded(self) -> bool:
        return self._discarded

    def discard(self) -> None:
        """Commit nothing when the ``with`` block ends."""
        self._discarded = True

    def remove(self) -> None:
        """Delete the copy (best effort: it is a leftover the collector also finds)."""
        with suppress(OSError):
            os.unlink(self._path)

    def __repr__(self) -> str:
        return f"<WorkingCopy {str(self._path)!r} token={self._token}>"
