"""Pure parts of the fenced commit: the metadata format and object names.

A fenced file's metadata znode holds one JSON document (``FileMeta``): the
file's version (commits so far), the fencing token of the writer that made
it, the name of its immutable content object, its size and SHA-256. It also
keeps the object names of the last few versions (``recent``), so a writer
whose commit reply was lost can tell afterwards whether its commit landed,
even when later writers have already committed on top of it.

The transaction itself (one ZooKeeper multi: ``delete`` of the writer's lock
node, which fails when the lock is gone, then ``set_data`` on the metadata with
its znode version) is sent
by :meth:`zkflock._zk.client.ZkClient.commit_fenced`; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from zkflock._errors import FileCorruptError

FORMAT = 1
RECENT = 16  # how many past object names the metadata remembers
_OBJECT_RE = re.compile(r"^(\d+)-(\d+)-([0-9a-f]{16})$")
_FILE_ID_RE = re.compile(r"^[0-9a-f]{0,32}$")
MAX_META_BYTES = 64 * 1024  # far above what zkflock writes (~2 KiB), far below jute.maxbuffer


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_name(version: int, token: int) -> str:
    """A unique, immutable object name: ``<version>-<token>-<random>``."""
    return f"{version}-{token}-{secrets.token_hex(8)}"


def new_file_id() -> str:
    return secrets.token_hex(8)


def object_version(name: str) -> int | None:
    """The file version an object name was written for, or None if it is not one of ours."""
    match = _OBJECT_RE.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class FileMeta:
    """What the metadata znode says about a fenced file."""

    version: int = 0
    token: int = 0
    object: str = ""  # empty: the file has no content yet (version 0)
    size: int = 0
    sha256: str = field(default_factory=lambda: checksum(b""))
    recent: tuple[str, ...] = ()  # object names of the latest versions, newest first
    # Random, set when the metadata is created: tells this file's history
    # apart from an earlier one on the same volume (a ZooKeeper started
    # afresh counts versions from 1 again).
    file_id: str = ""

    def successor(self, token: int, obj: str, data: bytes) -> FileMeta:
        """The metadata a writer with ``token`` commits for content ``data`` in ``obj``."""
        return FileMeta(
            version=self.version + 1,
            token=token,
            object=obj,
            size=len(data),
            sha256=checksum(data),
            recent=((obj, *self.recent))[:RECENT],
            file_id=self.file_id,
        )

    def object_of(self, version: int) -> str | None:
        """The object committed as ``version``, when the metadata still remembers it."""
        for name in self.recent:
            if object_version(name) == version:
                return name
        return None

    def verify(self, data: bytes) -> None:
        """Raise FileCorruptError unless ``data`` is this version's content."""
        if len(data) != self.size or checksum(data) != self.sha256:
            raise FileCorruptError(
                f"content object {self.object!r} (version {self.version}) does not match "
                f"its checksum: expected {self.size} bytes with sha256 {self.sha256[:12]}…, "
                f"found {len(data)} bytes with sha256 {checksum(data)[:12]}…; "
                "restore the object from a backup or commit a new version"
            )


def encode_meta(meta: FileMeta) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": meta.version,
        "token": meta.token,
        "object": meta.object,
        "size": meta.size,
        "sha256": meta.sha256,
        "recent": list(meta.recent),
        "file_id": meta.file_id,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_meta(raw: bytes, where: str) -> FileMeta:
    """Parse metadata; empty bytes mean a file with no content yet."""
    if not raw:
        return FileMeta()
    try:
        if len(raw) > MAX_META_BYTES:
            raise ValueError(f"{len(raw)} bytes, more than the {MAX_META_BYTES} zkflock writes")
        doc = json.loads(raw.decode())
        if not isinstance(doc, dict):
            raise ValueError(f"expected a JSON object, not {type(doc).__name__}")
        recent = doc.get("recent", [])
        if not isinstance(recent, list) or len(recent) > RECENT:
            raise ValueError(f"'recent' must be a list of at most {RECENT} object names")
        file_id = str(doc.get("file_id", ""))
        if not _FILE_ID_RE.match(file_id):
            raise ValueError(f"'file_id' {file_id[:40]!r} is not a hex id")
        meta = FileMeta(
            version=_int(doc["version"]),
            token=_int(doc["token"]),
            object=str(doc["object"]),
            size=_int(doc["size"]),
            sha256=str(doc["sha256"]),
            recent=tuple(str(n) for n in recent),
            file_id=file_id,
        )
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise FileCorruptError(
            f"the metadata of {where} is not valid zkflock metadata ({exc}); "
            "inspect it with 'zkCli.sh get' and restore it, or delete it to start over"
        ) from exc
    if meta.object and object_version(meta.object) != meta.version:
        raise FileCorruptError(
            f"the metadata of {where} names object {meta.object!r} for version {meta.version}"
        )
    return meta


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, not {value!r}")
    return value
