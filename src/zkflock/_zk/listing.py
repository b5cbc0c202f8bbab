"""Reads of many lock queues at once, for ``zkflock exporter`` and ``status --watch``.

A part of the kazoo boundary. Every request of one read goes out before the
first reply is awaited (kazoo's ``*_async``; one session's requests are
answered in order), so listing N lock parents costs about one round trip and
N requests' client CPU, not N round trips. Each reply is awaited at most the
session timeout, as everywhere on this boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kazoo.protocol.states import WatchedEvent

from zkflock._zk.errors import NodeMissingError, translated

if TYPE_CHECKING:
    from zkflock._zk.client import ZkClient


@dataclass(frozen=True)
class NodeRead:
    """A node's data and the times the server stamped on it."""

    data: bytes
    czxid: int
    ctime: float  # created, seconds since the epoch (the server's clock)
    mtime: float  # last written, likewise


class ChildWatch:
    """A children watch to pass to :func:`list_children_many` again and again.

    kazoo keeps one set of callbacks per path, so handing it this same object
    on every refresh registers it once, however often a path is listed before
    it changes; a fresh closure each time would pile up until the path fired.
    ``on_change(path)`` runs on kazoo's callback thread: it must not block.
    """

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._on_change = on_change

    def __call__(self, event: WatchedEvent) -> None:
        self._on_change(str(event.path))


def _reply(zk: ZkClient, result: Any, what: str) -> Any:
    """One reply, bounded; None when the node is gone."""
    try:
        with translated(what):
            return result.get(timeout=zk.negotiated_timeout)
    except NodeMissingError:
        return None


def list_children_many(
    zk: ZkClient, parents: Sequence[str], watch: ChildWatch | None = None
) -> list[list[str] | None]:
    """The children of every parent, pipelined; None for a parent that is
    gone. With ``watch``, each listed parent gets a children watch."""
    client = zk.kazoo
    pending = [client.get_children_async(p, watch=watch) for p in parents]
    return [
        None if (kids := _reply(zk, result, f"listing {parent}")) is None else list(kids)
        for parent, result in zip(parents, pending, strict=True)
    ]


def read_many(zk: ZkClient, paths: Sequence[str]) -> list[NodeRead | None]:
    """Data and times of every node, pipelined; None for a node that is gone."""
    client = zk.kazoo
    pending = [client.get_async(p) for p in paths]
    out: list[NodeRead | None] = []
    for path, result in zip(paths, pending, strict=True):
        got = _reply(zk, result, f"reading {path}")
        if got is None:
            out.append(None)
            continue
        data, stat = got
        out.append(NodeRead(bytes(data), int(stat.czxid), stat.ctime / 1000.0,
                            stat.mtime / 1000.0))
    return out
