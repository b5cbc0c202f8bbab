"""Disk helpers of fenced files: directories kept under the shared root,
directory fsync, one directory name per file, and the crash-test hook."""

from __future__ import annotations

import hashlib
import os
import signal
from contextlib import suppress
from pathlib import Path

from zkflock._errors import ConfigError
from zkflock._names import encode_node_name

CRASH_ENV = "ZKFLOCK_TEST_CRASH_AT"
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
