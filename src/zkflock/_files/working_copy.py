"""``SharedFile.working_copy()``: a private copy of a fenced file to edit in place.

A program that knows nothing of zkflock (``zkflock edit FILE -- COMMAND``)
edits a plain file; zkflock commits it afterwards with a fenced commit. The
copy lives in the file's objects directory, on the same volume as the
objects, so committing it renames it into an object: nothing is copied.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock

EDIT_SUFFIX = ".edit"  # working copies: ``<version>-<token>-<random>.edit``


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
