"""Segments (pure): a version's content is a list of immutable objects.

An ``append`` adds one segment holding only the new bytes. To keep the list
short, the newest segments are merged into the new one when their sizes are
within a factor of it (geometric merging, as log-structured stores do): a
byte is rewritten only when its segment at least grows by half, so each byte
is rewritten O(log n) times over the file's life, and the list holds about
log2(size / smallest append) segments. ``MAX_SEGMENTS`` bounds it hard so the
metadata always fits in one znode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MERGE_FACTOR = 2  # merge a segment into the new one when it is at most this many times larger
MAX_SEGMENTS = 48  # ~110 bytes each in the metadata: ~5 KiB, far below jute.maxbuffer
_OBJECT_RE = re.compile(r"^(\d+)-(\d+)-([0-9a-f]{16})$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Segment:
    """One immutable object of a version: its name, length and SHA-256."""

    object: str
    length: int
    sha256: str

    def check(self) -> None:
        """Raise ValueError unless the fields are well formed."""
        if object_version(self.object) is None:
            raise ValueError(f"it names object {self.object[:60]!r}, not a zkflock object name")
        if self.length < 0 or not _SHA_RE.match(self.sha256):
            raise ValueError(f"segment {self.object!r} has a bad length or sha256")


def object_version(name: str) -> int | None:
    """The file version an object name was written for, or None if it is not one of ours."""
    match = _OBJECT_RE.match(name)
    return int(match.group(1)) if match else None


def merge_start(lengths: Sequence[int], new: int) -> int:
    """Where the merge of an append starts: ``segments[k:]`` and the new bytes
    become one new segment (``k == len(lengths)``: nothing is merged, the
    append writes only its own bytes).

    >>> merge_start([1000, 10], 4)   # 10 <= 2 * 4: merged; 1000 > 2 * 14: kept
    1
    """
    k, merged = len(lengths), new
    while k > 0 and lengths[k - 1] <= MERGE_FACTOR * merged:
        k -= 1
        merged += lengths[k]
    return min(k, MAX_SEGMENTS - 1)


def offsets(segments: Sequence[Segment]) -> list[int]:
    """The offset in the content where each segment starts."""
    out, at = [], 0
    for seg in segments:
        out.append(at)
        at += seg.length
    return out


def covering(segments: Sequence[Segment], start: int) -> int:
    """The index of the segment holding byte ``start`` (len(segments) at the end)."""
    at = 0
    for i, seg in enumerate(segments):
        if start < at + seg.length:
            return i
        at += seg.length
    return len(segments)
