"""Durable writes and the plain view of a fenced file.

The view (``data/data.txt`` itself) is a convenience copy for ``cat`` and
tools that know nothing of zkflock; ZooKeeper's metadata stays the truth. It
is replaced by atomic rename only, so it always shows one whole committed
version. A publisher that is late (paused after its commit while others
committed more) must not roll it back: publishers serialise on an flock(2)
lock file and record the version the view shows in a sidecar; a publisher
skips when the view already shows its version or a newer one, and publishes
the newest committed version instead when ZooKeeper already has a newer one.

Remaining window: on a volume that does not honour flock across hosts, two
hosts can interleave between the sidecar check and the rename; the view can
then lag one version behind until the next commit publishes again. It never
shows a torn or uncommitted version.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from zkflock._errors import ConfigError
from zkflock._files.meta import FileMeta
from zkflock._names import encode_node_name

log = logging.getLogger("zkflock")

CRASH_ENV = "ZKFLOCK_TEST_CRASH_AT"
TEMP_GRACE = 60.0  # seconds before an unrenamed temp file counts as a crash leftover
LOCK_WAIT = 10.0  # seconds a publisher waits for the view lock before giving up
_MAX_DIR_NAME = 200


def crash_point(step: str) -> None:
    """Test hook: die by SIGKILL at ``step`` when ZKFLOCK_TEST_CRASH_AT names it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def store_dir_name(name: str) -> str:
    """One directory name per file name: its escaped form, or a hash when too long."""
    encoded = encode_node_name(name)
    if len(encoded.encode()) <= _MAX_DIR_NAME:
        return encoded
    return "sha256-" + hashlib.sha256(name.encode()).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_within(root: Path, directory: Path) -> None:
    """Create ``directory`` under ``root`` one component at a time, refusing
    any component that a symlink leads outside ``root``: an attacker who can
    plant a symlink on the shared volume must not make us write elsewhere.

    Checked before each descent, so nothing is created outside ``root`` even
    for a moment. A symlink swapped in between the check and the use (a race
    on a volume the attacker can write) is not covered.
    """
    if (root, directory) in _CHECKED:
        return
    root.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(root)
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        with suppress(FileExistsError):
            os.mkdir(current)  # never follows: a symlink here is FileExistsError
        real = os.path.realpath(current)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise ConfigError(
                f"{current} leads outside the shared root {root} (to {real}) through a "
                "symlink; remove that symlink, or choose the --root that contains it"
            )
    if len(_CHECKED) < 1024:
        _CHECKED.add((root, directory))


# Directories already checked in this process: a commit touches the same few
# every time, and resolving each component costs a syscall apiece. A symlink
# planted after the first check is the race the docstring leaves uncovered.
_CHECKED: set[tuple[Path, Path]] = set()


def write_durably(path: Path, data: bytes, root: Path, *, sync_dir: bool = True) -> None:
    """Create ``path`` (never following or replacing anything), write, fsync
    the file (and its directory, unless ``sync_dir`` is False). Its
    directories must stay under ``root``."""
    make_dirs_within(root, path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if sync_dir:
        fsync_dir(path.parent)


Latest = Callable[[], "tuple[FileMeta, bytes] | None"] | None


class ViewPublisher:
    """Publishes committed versions of one file as its plain view."""

    def __init__(self, root: Path, view: Path, state_dir: Path, name: str) -> None:
        self._root = root
        self._view = view
        base = store_dir_name(name)
        self._state_dir = state_dir
        self._lock_path = state_dir / f"{base}.lock"
        self._shown_path = state_dir / f"{base}.version"
        self._temp_prefix = f".{view.name}.zkflock-"

    def shown_version(self, file_id: str) -> int:
        """The version the view shows, per the sidecar: 0 if unknown, or if
        the sidecar speaks of another history of the file (another file_id,
        e.g. a ZooKeeper started afresh over the same volume)."""
        try:
            shown_id, _, version = self._shown_path.read_text().strip().rpartition(" ")
            return int(version or 0) if shown_id == file_id else 0
        except (FileNotFoundError, ValueError):
            return 0

    def publish(self, meta: FileMeta, data: bytes, latest: Latest) -> None:
        """Show ``meta``'s version, or a newer committed one (asking ``latest``,
        when given); never an older one.

        Only the view file's content is fsynced: the view is a copy that the
        next commit or ``publish_view()`` rebuilds, so its rename and the
        sidecar need not survive a crash of the host; a renamed view whose
        data never reached the disk could (on some file systems) be empty.
        """
        with self._locked() as got:
            if not got:
                log.warning("view of %s not published: its lock file stayed busy", self._view)
                return
            shown = self.shown_version(meta.file_id)
            if shown >= meta.version:
                return
            fresh = latest() if latest is not None else None  # ZooKeeper decides
            if fresh is not None and fresh[0].version > meta.version:
                meta, data = fresh
            tmp = self._view.parent / f"{self._temp_prefix}{secrets.token_hex(6)}.tmp"
            write_durably(tmp, data, self._root, sync_dir=False)
            crash_point("before-rename")
            os.replace(tmp, self._view)  # replaces a planted symlink, never follows it
            self._record(meta)

    def collect_temps(self) -> None:
        """Delete temp files of publishers that crashed before renaming."""
        cutoff = time.time() - TEMP_GRACE
        with suppress(FileNotFoundError):
            for entry in os.scandir(self._view.parent):
                if entry.name.startswith(self._temp_prefix) and entry.name.endswith(".tmp"):
                    with suppress(FileNotFoundError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    def _record(self, meta: FileMeta) -> None:
        tmp = self._state_dir / f".{self._shown_path.name}.{secrets.token_hex(6)}"
        # Not fsynced: the sidecar is advice for publishers running now.
        make_dirs_within(self._root, self._state_dir)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        try:
            os.write(fd, f"{meta.file_id} {meta.version}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, self._shown_path)

    @contextmanager
    def _locked(self) -> Iterator[bool]:
        make_dirs_within(self._root, self._view.parent)
        make_dirs_within(self._root, self._state_dir)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(self._lock_path, flags, 0o644)
        try:
            # Bounded: a publisher paused (SIGSTOP) while holding it must not
            # stall every other writer; the next commit publishes again.
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.01)
            yield True
        finally:
            os.close(fd)
