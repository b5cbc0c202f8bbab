"""Who holds a lock and who waits: read from the queue's nodes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zkflock._locks.protocol import decide, queue
from zkflock._names import decode_node_name
from zkflock._zk.errors import NodeMissingError

if TYPE_CHECKING:
    from zkflock._locks.core import LockCore

_KINDS = {"x": "exclusive", "r": "shared", "s": "semaphore"}


@dataclass(frozen=True)
class Holder:
    """One contender of a lock, as ``zkflock status`` shows it."""

    lock: str
    id: str
    state: str  # "holding" or "waiting"
    kind: str
    host: str
    pid: int | None
    token: int
    since: float  # acquired-at for holders, queued-at for waiters (epoch seconds)
    purpose: str
    process_start: float | None = None  # with pid: tells a reused pid apart

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def list_holders(core: LockCore, name: str) -> list[Holder]:
    """Holders and waiters of ``name`` in queue order (one pipelined read)."""
    norm, parent = core.lock_path(name)
    rows = {n: (d, czxid, ctime) for n, d, czxid, ctime in core.zk.children_data(parent)}
    names = list(rows)
    out = []
    for contender in queue(names):
        data, czxid, ctime = rows[contender.name]
        info = _info(data)
        held = decide(names, contender.name).held
        since = info.get("acquired_at") if held else None
        out.append(
            Holder(
                lock=norm,
                id=contender.name,
                state="holding" if held else "waiting",
                kind=_KINDS.get(contender.kind, contender.kind),
                host=str(info.get("host", "?")),
                pid=info.get("pid") if isinstance(info.get("pid"), int) else None,
                token=czxid,
                since=float(since) if isinstance(since, (int, float)) else ctime / 1000.0,
                purpose=str(info.get("purpose", "")),
                process_start=_number(info.get("started")),
            )
        )
    return out


def list_lock_names(core: LockCore) -> list[str]:
    """Every lock name with a queue under the session's namespace."""
    base = f"{core.settings.namespace}/locks"
    try:
        names = core.zk.children(base)
    except NodeMissingError:
        return []  # no namespace yet: no locks
    return sorted(decode_node_name(n) for n in names)
