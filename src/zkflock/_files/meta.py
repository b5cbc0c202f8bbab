"""Pure parts of the fenced commit: the metadata format and object names.

A fenced file's metadata znode holds one JSON document (``FileMeta``): the
file's version (commits so far), the fencing token of the writer that made
it, the segments of its content (object, length, SHA-256 each: see
``segments``), and its lineage — the version of the last rewrite, so that
versions of one lineage are known to extend each other (an append or a merge
keeps it; a rewrite starts a new one). Each commit writes exactly one new
object, named ``<version>-<token>-<random>``; the metadata remembers the
objects of the last few commits (``recent``), so a writer whose commit reply
was lost can tell afterwards whether its commit landed, even when later
writers have already committed on top of it.

Format 1 (one whole-content object per version) is still read, as a version
with a single segment, and is upgraded by the next commit.

The transaction itself (one ZooKeeper multi: ``delete`` of the writer's lock
node, which fails when the lock is gone, then ``set_data`` on the metadata with
its znode version) is sent by :meth:`zkflock._zk.client.ZkClient.commit_fenced`;
nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from zkflock._errors import FileCorruptError
from zkflock._files.segments import MAX_SEGMENTS, Segment, object_version

FORMAT = 2
RECENT = 16  # how many past commits' object names the metadata remembers
_FILE_ID_RE = re.compile(r"^[0-9a-f]{0,32}$")
MAX_META_BYTES = 64 * 1024  # far above what zkflock writes (~5 KiB), far below jute.maxbuffer
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

__all__ = ["FORMAT", "FileMeta", "Segment", "decode_meta", "encode_meta", "object_name",
           "object_version"]


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_name(version: int, token: int) -> str:
    """A unique, immutable object name: ``<version>-<token>-<random>``."""
    return f"{version}-{token}-{secrets.token_hex(8)}"


def new_file_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class FileMeta:
    """What the metadata znode says about a fenced file."""

    version: int = 0
    token: int = 0
    segments: tuple[Segment, ...] = ()
    lineage: int = 0  # the version of the last rewrite: later versions extend it
    recent: tuple[str, ...] = ()  # objects written by the latest commits, newest first
    # Random, set when the metadata is created: tells this file's history
    # apart from an earlier one on the same volume (a ZooKeeper started
    # afresh counts versions from 1 again).
    file_id: str = ""

    @property
    def size(self) -> int:
        return sum(seg.length for seg in self.segments)

    @property
    def object(self) -> str:
        """The object this version's commit wrote ("" for version 0)."""
        return self.recent[0] if self.recent else ""

    def successor(self, token: int, obj: str, segments: tuple[Segment, ...], *,
                  extends: bool) -> FileMeta:
        """The metadata a writer with ``token`` commits: ``segments`` (whose
        newest object ``obj`` it wrote); ``extends`` when the new content
        begins with the current one (an append or a merge)."""
        version = self.version + 1
        return FileMeta(
            version=version,
            token=token,
            segments=segments,
            lineage=self.lineage if extends and self.version else version,
            recent=((obj, *self.recent))[:RECENT],
            file_id=self.file_id,
        )

    def object_of(self, version: int) -> str | None:
        """The object committed as ``version``, when the metadata still remembers it."""
        for name in self.recent:
            if object_version(name) == version:
                return name
        return None

    def referenced(self) -> frozenset[str]:
        return frozenset(seg.object for seg in self.segments)


def encode_meta(meta: FileMeta) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": meta.version,
        "token": meta.token,
        "lineage": meta.lineage,
        "segments": [[s.object, s.length, s.sha256] for s in meta.segments],
        "recent": list(meta.recent),
        "file_id": meta.file_id,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_meta(raw: bytes, where: str) -> FileMeta:
    """Parse metadata (format 1 or 2); empty bytes mean a file with no content yet."""
    if not raw:
        return FileMeta()
    try:
        if len(raw) > MAX_META_BYTES:
            raise ValueError(f"{len(raw)} bytes, more than the {MAX_META_BYTES} zkflock writes")
        doc = json.loads(raw.decode())
        if not isinstance(doc, dict):
            raise ValueError(f"expected a JSON object, not {type(doc).__name__}")
        meta = _from_doc(doc)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise FileCorruptError(
            f"the metadata of {where} is not valid zkflock metadata ({exc}); "
            "inspect it with 'zkCli.sh get' and restore it, or delete it to start over"
        ) from exc
    if meta.recent and object_version(meta.recent[0]) != meta.version:
        raise FileCorruptError(
            f"the metadata of {where} names object {meta.recent[0]!r} for version {meta.version}"
        )
    return meta


def _from_doc(doc: dict[str, Any]) -> FileMeta:
    recent = doc.get("recent", [])
    if not isinstance(recent, list) or len(recent) > RECENT:
        raise ValueError(f"'recent' must be a list of at most {RECENT} object names")
    file_id = str(doc.get("file_id", ""))
    if not _FILE_ID_RE.match(file_id):
        raise ValueError(f"'file_id' {file_id[:40]!r} is not a hex id")
    version = _int(doc["version"])
    segments: tuple[Segment, ...]
    if doc.get("format", 1) == 1:
        # One whole-content object per version, named in "object".
        obj = str(doc["object"])
        segments = (Segment(obj, _int(doc["size"]), str(doc["sha256"])),) if obj else ()
        lineage = version  # unknown: the view is rebuilt once
    else:
        raw_segments = doc["segments"]
        if not isinstance(raw_segments, list) or len(raw_segments) > 2 * MAX_SEGMENTS:
            raise ValueError(f"'segments' must be a list of at most {2 * MAX_SEGMENTS}")
        segments = tuple(Segment(str(o), _int(n), str(h)) for o, n, h in raw_segments)
        lineage = _int(doc["lineage"])
    for seg in segments:
        seg.check()
    return FileMeta(
        version=version,
        token=_int(doc["token"]),
        segments=segments,
        lineage=lineage,
        recent=tuple(str(n) for n in recent),
        file_id=file_id,
    )


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, not {value!r}")
    return value
