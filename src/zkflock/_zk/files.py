"""The fenced-file requests of the kazoo boundary (a part of ``ZkClient``).

The metadata read after a ``sync``, its creation, and the fenced commit: one
multi-transaction that deletes the writer's lock node (the fence: the delete,
and the whole multi with it, fails when the lock is gone; it also releases the
lock) and sets the metadata at the version the writer read.
"""

from __future__ import annotations

from typing import Any

from kazoo import exceptions as ke

from zkflock._errors import ConnectError, PermissionDeniedError, StaleTokenError
from zkflock._zk.errors import (
    MetaConflictError,
    NodeMissingError,
    check_size,
    translated,
)


class FileOps:
    """Fenced-file requests; mixed into ``ZkClient``."""

    _client: Any

    def _bounded(self, result: Any) -> Any:
        raise NotImplementedError

    def get_meta(self, path: str, *, sync: bool = True) -> tuple[bytes, int] | None:
        """(data, znode version) of ``path`` after a ``sync``, or None if missing.

        The sync makes our server catch up with the leader first, so a reader
        sees every commit acknowledged before it started reading. A writer
        that holds the lock needs none: our server told us of the grant, so
        it has applied the previous holder's release and every commit before."""
        synced = self._client.sync_async(path) if sync else None
        got = self._client.get_async(path)
        if synced is not None:
            with translated(f"syncing {path}"):
                self._bounded(synced)
        try:
            with translated(f"reading {path}"):
                data, stat = self._bounded(got)
        except NodeMissingError:
            return None
        return bytes(data), int(stat.version)

    def create_meta(self, path: str, data: bytes) -> bool:
        """Create the persistent metadata node (and its parents); False if it exists."""
        check_size(path, data)
        with translated(f"creating {path}"):
            self._bounded(self._client.ensure_path_async(path.rsplit("/", 1)[0] or "/"))
        with translated(f"creating {path}"):
            try:
                self._bounded(self._client.create_async(path, data))
            except ke.NodeExistsError:
                return False
        return True

    def commit_fenced(self, lock_path: str, meta_path: str, meta_version: int, data: bytes) -> int:
        """One multi: ``delete`` our lock node ``lock_path`` (any version) and
        ``set_data`` on ``meta_path`` at ``meta_version``. Returns the new
        znode version.

        Deleting the lock node checks that it exists — the fence — and
        releases the lock in the same transaction: a fenced write costs the
        two writes of a lock cycle, not three. StaleTokenError when the lock
        node is gone (nothing committed); MetaConflictError when the metadata
        moved on; Disconnected when the reply was lost (the outcome is then
        unknown to the caller)."""
        check_size(meta_path, data)
        tx = self._client.transaction()
        tx.delete(lock_path, -1)  # fails (and so does the whole multi) if the lock is gone
        tx.set_data(meta_path, data, version=meta_version)
        with translated(f"committing {meta_path}"):
            checked, stored = self._bounded(tx.commit_async())
        if isinstance(checked, ke.NoNodeError):
            raise StaleTokenError(
                f"fenced commit to {meta_path} refused: the writer's lock node {lock_path} "
                "is gone, so the lock was lost; nothing was written; take the lock and retry"
            )
        if isinstance(stored, ke.BadVersionError):
            raise MetaConflictError(f"{meta_path} is no longer at version {meta_version}")
        if isinstance(stored, ke.NoNodeError):
            raise NodeMissingError(f"committing {meta_path}: no such node")
        if isinstance(stored, ke.NoAuthError) or isinstance(checked, ke.NoAuthError):
            raise PermissionDeniedError(
                f"committing {meta_path}: ZooKeeper refused it (NoAuth): another identity "
                "owns this file's metadata; check the credentials or the ACL policy's group"
            )
        if isinstance(checked, Exception) or isinstance(stored, Exception):
            raise ConnectError(f"committing {meta_path} failed: {checked!r}, {stored!r}")
        return int(stored.version)
