"""``zkflock status --watch``: a live view of holders and waiters, refreshed by watches.

ZooKeeper tells us when a queue changes, so the view reads the cluster only
then: a children watch on every lock parent shown (a contender queued,
granted by its predecessor's delete, or gone) and on the namespace's list of
locks (a lock appeared); an exists watch on a parent that does not exist yet;
and every connection state change, since a new session has lost the old
one's watches. Between changes the view only re-renders, once a second, so
the ages tick; a burst of changes costs one read per ``MIN_READ_INTERVAL``.
``--json`` prints one JSON list per change instead (JSON Lines).
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import click

from zkflock._names import decode_node_name
from zkflock._zk.errors import NodeMissingError
from zkflock._zk.listing import ChildWatch, list_children_many

if TYPE_CHECKING:
    from rich.console import RenderableType

    from zkflock._locks.status import Holder
    from zkflock._session import Session

MAX_LOCKS = 200  # a view for people: beyond this, say how many were left out
TICK = 1.0  # seconds between re-renders (ages) when nothing changed
# A busy lock changes hundreds of times a second: read at most this often,
# a burst of changes in between costing one read (the watches stay armed).
MIN_READ_INTERVAL = 0.2


class StatusWatch:
    """Reads the rows of ``status`` and arms the watches that say when to read again."""

    def __init__(self, session: Session, lock_name: str | None = None) -> None:
        self._session = session
        self._lock_name = lock_name
        self._base = f"{session.settings.namespace}/locks"
        self._changed = threading.Event()
        self._changed.set()  # the first read
        self._watch = ChildWatch(lambda _path: self._changed.set())
        self.reads = 0
        self.left_out = 0
        session.zk.add_listener(lambda _state: self._changed.set())

    def wait(self, timeout: float | None) -> bool:
        """True once something changed since the last :meth:`read`."""
        return self._changed.wait(timeout)

    def read(self) -> list[Holder]:
        """Every holder and waiter shown, with the watches armed again."""
        # Cleared before reading: a change during the read fires a watch set
        # by this very read, so it is never missed.
        self._changed.clear()
        self.reads += 1
        names = self._names()
        rows = []
        for name in names:
            try:
                rows.extend(self._session.holders(name))
            except NodeMissingError:  # pragma: no cover - gone between the two reads
                self._changed.set()
        return rows

    def _names(self) -> list[str]:
        if self._lock_name is not None:
            _norm, parent = self._session.lock_path(self._lock_name)
            self._arm([parent])
            return [self._lock_name]
        (kids,) = self._arm([self._base])
        nodes = sorted(kids or [])
        self.left_out = max(0, len(nodes) - MAX_LOCKS)
        nodes = nodes[:MAX_LOCKS]
        self._arm([f"{self._base}/{n}" for n in nodes])
        return [decode_node_name(n) for n in nodes]

    def _arm(self, parents: list[str]) -> list[list[str] | None]:
        """List ``parents`` with children watches; a missing one gets an
        exists watch, which fires when it is created."""
        zk = self._session.zk
        listings = list_children_many(zk, parents, watch=self._watch)
        missing = [p for p, kids in zip(parents, listings, strict=True) if kids is None]
        if missing and zk.watch_created(missing, lambda _deleted: self._changed.set()):
            self._changed.set()  # created meanwhile: look again at once
        return listings


def render(rows: list[Holder], lock_name: str | None, left_out: int, now: float
           ) -> RenderableType:
    """The table of ``status`` with ages instead of timestamps."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if not rows:
        what = f"no holders or waiters for {lock_name!r}" if lock_name else "no locks"
        return Text(f"{what} (watching; Ctrl-C to stop)")
    table = Table(box=None, header_style="bold")
    for column in ("LOCK", "MODE", "STATE", "HOLDER", "TOKEN", "AGE", "PURPOSE"):
        table.add_column(column, no_wrap=column != "PURPOSE")
    for h in rows:
        # Text, not markup: names and purposes may contain '['.
        state = Text(h.state, style="green" if h.state == "holding" else "yellow")
        holder = f"{h.host}:{h.pid if h.pid is not None else '?'}"
        table.add_row(Text(h.lock), h.kind, state, Text(holder), str(h.token),
                      f"{max(0.0, now - h.since):.0f}s", Text(h.purpose))
    holding = sum(1 for h in rows if h.state == "holding")
    locks = len({h.lock for h in rows})
    more = f" ({left_out} more locks not shown)" if left_out else ""
    footer = Text(f"{locks} lock(s), {holding} holding, {len(rows) - holding} waiting{more} "
                  f"- {time.strftime('%H:%M:%S', time.localtime(now))}, Ctrl-C to stop")
    return Group(table, footer)


def watch_status(ctx: click.Context, lock_name: str | None, json_output: bool) -> None:
    """``status --watch``: the live view (or JSON Lines) until Ctrl-C."""
    from zkflock._session import connect

    obj = ctx.obj
    as_json = json_output or bool(getattr(obj, "json", False))
    with connect(getattr(obj, "hosts", None), root=getattr(obj, "root", None)) as session:
        watch = StatusWatch(session, lock_name)
        try:
            if as_json:
                _json_lines(watch)
            else:
                _live(watch, lock_name)
        except KeyboardInterrupt:
            pass


def _json_lines(watch: StatusWatch) -> None:
    while True:
        if watch.wait(None):
            rows = watch.read()
            click.echo(json.dumps([h.as_dict() for h in rows]))
            time.sleep(MIN_READ_INTERVAL)


def _live(watch: StatusWatch, lock_name: str | None) -> None:
    from rich.live import Live

    from zkflock._cli.console import output_console

    rows = watch.read()
    with Live(render(rows, lock_name, watch.left_out, time.time()), console=output_console(),
              auto_refresh=False) as live:
        while True:
            changed = watch.wait(TICK)
            if changed:
                rows = watch.read()
            live.update(render(rows, lock_name, watch.left_out, time.time()), refresh=True)
            if changed:
                time.sleep(MIN_READ_INTERVAL)
