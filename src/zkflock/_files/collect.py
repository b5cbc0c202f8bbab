"""Collection by reference: after a commit, the objects of a fenced file
that no retained version refers to are deleted (best effort, without the
lock: see ``collect``)."""

from __future__ import annotations

import os
from pathlib import Path

from zkflock._files.meta import FileMeta, Segment, object_version
from zkflock._files.objects import ObjectStore, remove
from zkflock._files.view import ViewPublisher
from zkflock._files.working_copy import EDIT_SUFFIX

SCAN_EVERY = 32  # versions between full listings of the objects directory (crash leftovers)


def collect(store: ObjectStore, publisher: ViewPublisher, current: FileMeta,
            dropped: tuple[Segment, ...]) -> None:
    """Delete the segments the commit of ``current`` merged or replaced
    (``dropped``); every ``SCAN_EVERY`` versions, also every other object or
    working copy of a version up to the current one that it does not refer
    to (leftovers of writers that crashed or were fenced: a commit for such a
    version can no longer succeed), and the view's stale temp files. Later
    versions refer only to objects the current one refers to, or to newer
    ones, so this is safe without the lock."""
    keep = current.referenced()
    for seg in dropped:
        if seg.object not in keep:
            remove(store.path(seg.object))
    if current.version % SCAN_EVERY:
        return
    try:
        entries = list(os.scandir(store.directory))
    except FileNotFoundError:
        return
    for entry in entries:
        version = object_version(entry.name.removesuffix(EDIT_SUFFIX))
        if version is not None and version <= current.version and entry.name not in keep:
            remove(Path(entry.path))
    publisher.collect_temps()
