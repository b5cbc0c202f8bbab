"""Fenced files on a real GlusterFS volume mounted three times (tests/_sharedfs.py):
writers on two mounts, a reader on the mount with a 2-s negative-lookup cache.

What the previous format got wrong there, checked here: a commit that landed
must never reach its writer as an error (the view's sidecar used to be
replaced by rename, and another mount then got ESTALE), the view must
converge on every mount, and a read must never call a good object corrupt
(a mount that listed the directory mid-write reads the object as 0 bytes
for about a second).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import zkflock
from _sharedfs import SharedRoots
from zkflock._files import collect as _collect
from zkflock._files.meta import FileMeta
from zkflock._files.view import Chunks, Shown, ViewPublisher

pytestmark = pytest.mark.timeout(240)
NAME = "data/log.txt"


@pytest.fixture
def sessions(zk_hosts: str, shared_roots: SharedRoots) -> Iterator[list[zkflock.Session]]:
    with ExitStack() as stack:
        yield [stack.enter_context(zkflock.connect(zk_hosts, root=root, session_timeout=4.0))
               for root in shared_roots.all]


def _converged(roots: tuple[Path, ...], expected: bytes, within: float = 15.0) -> list[bytes]:
    """Each mount's view once it shows ``expected`` (or what it shows at the deadline)."""
    deadline = time.monotonic() + within
    while True:
        shown = []
        for root in roots:
            try:
                shown.append((root / NAME).read_bytes())
            except OSError as exc:
                shown.append(repr(exc).encode())
        if all(s == expected for s in shown) or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def test_appends_and_rewrites_from_two_mounts(
    sessions: list[zkflock.Session], shared_roots: SharedRoots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_collect, "SCAN_EVERY", 4)  # list the directory often: the 0-size trap
    swaps: list[int] = []
    real_swap = ViewPublisher._swap

    def counting_swap(self: ViewPublisher, meta: FileMeta, chunks: Chunks) -> Shown:
        swaps.append(meta.version)
        return real_swap(self, meta, chunks)

    monkeypatch.setattr(ViewPublisher, "_swap", counting_swap)
    a, b, cached = (s.shared_file(NAME) for s in sessions)
    expected = b""
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]

    def read_forever() -> None:
        last = 0
        while not stop.is_set():
            try:
                with cached.open() as r:
                    data, version = r.read(), r.raw.meta.version
            except BaseException as exc:
                errors.append(exc)
                return
            if version < last:
                errors.append(AssertionError(f"read went back from version {last} to {version}"))
            if not data.endswith(b"\n") and data:
                errors.append(AssertionError(f"a torn read: {data[-40:]!r}"))
            last, reads[0] = version, reads[0] + 1

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        for i in range(60):
            f = (a, b)[i % 2]
            line = f"{i} from mount {'ab'[i % 2]}\n".encode()
            if i == 30:  # a rewrite in the middle: the view is swapped, then extended again
                expected = b"rewritten\n"
                f.write(expected)
            else:
                f.append(line)  # a landed commit never raises here
                expected += line
    finally:
        stop.set()
        reader.join(timeout=60)
    assert not errors, errors
    assert reads[0] > 5
    for f in (a, b, cached):
        assert f.read_bytes() == expected
    assert _converged(shared_roots.all, expected) == [expected] * 3
    # The view grew in place on both mounts: swapped only by the first write
    # and the rewrite (slack for a mount that still sees a renamed-over name).
    assert 31 in swaps
    assert len(swaps) <= 6, swaps


CHILD = """
import sys, zkflock
with zkflock.connect(sys.argv[1], root=sys.argv[2], session_timeout=1.0) as zk:
    zk.shared_file(sys.argv[3]).append("new\\n", timeout=30)
"""


@pytest.mark.parametrize("step", ["after-object", "after-commit", "after-extend"])
def test_writer_killed_on_one_mount_leaves_a_whole_file_on_the_others(
    sessions: list[zkflock.Session], shared_roots: SharedRoots, zk_hosts: str, step: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = "old\n" * 40
    a, b, cached = (s.shared_file(NAME) for s in sessions)
    a.append(base)
    env = {"ZKFLOCK_TEST_CRASH_AT": step}
    proc = subprocess.run([sys.executable, "-c", CHILD, zk_hosts, str(shared_roots.a), NAME],
                          env={**os.environ, **env}, timeout=60, check=False)
    assert proc.returncode == -9
    committed = base + ("new\n" if step != "after-object" else "")
    assert b.read() == committed
    assert cached.read() == committed
    monkeypatch.setattr(_collect, "SCAN_EVERY", 1)
    b.append("next\n", timeout=30)  # the next writer, on another mount, collects leftovers
    assert cached.read() == committed + "next\n"
    assert sorted(p.name for p in b.objects_dir.iterdir()) == sorted(b.meta().referenced())
    assert _converged(shared_roots.all, (committed + "next\n").encode()) == [
        (committed + "next\n").encode()] * 3
