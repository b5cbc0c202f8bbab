"""``zkflock status --watch``: refreshed by ZooKeeper's watches, drawn by rich in a pty."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from zkflock import Session
from zkflock._cli import watch as watch_module
from zkflock._cli.watch import StatusWatch

BOUND = 30.0  # every wait below is a bound, not a timing
NAME = "data/data.txt"


def test_the_view_reads_again_only_when_a_watch_fires(sessions: Callable[..., Session]) -> None:
    viewer, holder, waiter = sessions(), sessions(), sessions()
    view = StatusWatch(viewer)
    assert view.read() == []
    assert not view.wait(0.3)  # nothing changed: nothing to read
    lock = holder.lock(NAME)
    assert lock.acquire()
    assert view.wait(BOUND), "a new lock did not fire the namespace's watch"
    assert [h.state for h in view.read()] == ["holding"]
    queued = threading.Thread(target=lambda: waiter.lock(NAME).acquire(timeout=BOUND))
    queued.start()
    assert view.wait(BOUND), "a new waiter did not fire the lock's children watch"
    rows = view.read()
    while [h.state for h in rows] != ["holding", "waiting"]:  # the waiter's node may lag
        assert view.wait(BOUND)
        rows = view.read()
    lock.release()
    queued.join(BOUND)
    assert view.wait(BOUND), "the handoff did not fire the lock's children watch"
    assert [h.state for h in view.read()] == ["holding"]
    assert view.reads >= 4  # one per change, none by polling (see the next test)


def test_a_view_without_watches_would_not_notice(
    sessions: Callable[..., Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broken variant: the listings arm no watch. The first test's
    # checks would fail on it: the change goes unnoticed.
    real = watch_module.list_children_many

    def unwatched(zk: Any, parents: Any, watch: Any = None) -> Any:
        return real(zk, parents)

    monkeypatch.setattr(watch_module, "list_children_many", unwatched)
    viewer, holder = sessions(), sessions()
    assert holder.lock("first").acquire()  # the namespace exists: no exists watch
    view = StatusWatch(viewer)
    assert [h.lock for h in view.read()] == ["first"]
    assert holder.lock("elsewhere").acquire()
    assert not view.wait(1.0)


def test_one_lock_that_does_not_exist_yet_is_noticed_when_taken(
    sessions: Callable[..., Session],
) -> None:
    viewer, holder = sessions(), sessions()
    view = StatusWatch(viewer, "later/lock")
    assert view.read() == []
    assert holder.lock("later/lock").acquire()
    assert view.wait(BOUND), "the parent's creation did not fire its exists watch"
    assert [(h.lock, h.state) for h in view.read()] == [("later/lock", "holding")]


# -- the command, in a pseudo-terminal -------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Terminal:
    """``zkflock status --watch`` on a 200-column pty; collects what it prints."""

    def __init__(self, hosts: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="200", LINES="50")
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zkflock", "--hosts", hosts, "--root", "/", "status",
             "--watch"], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self._master = master
        self._chunks: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data.decode(errors="replace"))

    def text(self) -> str:
        return _ANSI.sub("", "".join(self._chunks))

    def expect(self, pattern: str) -> None:
        deadline = time.monotonic() + BOUND
        while not re.search(pattern, self.text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                shown = self.text()[-3000:]
                raise AssertionError(f"no {pattern!r} in the view; it shows:\n{shown}")
            threading.Event().wait(0.05)

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(BOUND)
        self._reader.join(BOUND)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        return self.proc.returncode


@pytest.fixture
def terminal(zk_hosts: str) -> Iterator[Terminal]:
    term = Terminal(zk_hosts)
    try:
        yield term
    finally:
        term.close()


def test_live_view_in_a_terminal_follows_holders_and_waiters(
    terminal: Terminal, sessions: Callable[..., Session]
) -> None:
    terminal.expect("no locks")
    holder, waiter = sessions(), sessions()
    lock = holder.lock(NAME, purpose="nightly report")
    assert lock.acquire()
    terminal.expect(r"data/data\.txt +exclusive +holding .*nightly report")
    terminal.expect(r"1 lock\(s\), 1 holding, 0 waiting")
    queued = threading.Thread(target=lambda: waiter.lock(NAME).acquire(timeout=BOUND))
    queued.start()
    terminal.expect(r"1 lock\(s\), 1 holding, 1 waiting")
    terminal.expect(r"exclusive +waiting")
    lock.release()
    queued.join(BOUND)
    terminal.expect(r"1 lock\(s\), 1 holding, 0 waiting(?![\s\S]*1 waiting)")
    assert terminal.close() == 0  # Ctrl-C ends the view cleanly


def test_watch_with_json_prints_one_list_per_change(
    zk_hosts: str, sessions: Callable[..., Session]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "--root", "/", "status",
         "--watch", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == []
        lock = sessions().lock(NAME)
        assert lock.acquire()
        seen = []
        while len(seen) < 5:  # the lock's parent may show up before its node
            rows = json.loads(proc.stdout.readline())
            seen.append([(r["lock"], r["state"]) for r in rows])
            if seen[-1]:
                break
        assert seen[-1] == [(NAME, "holding")], seen
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=BOUND)
    assert proc.returncode == 0
