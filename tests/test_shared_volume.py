"""Fenced files on a real shared volume: one GlusterFS volume mounted three
times on this machine, as three hosts would mount it (SHAREDFS.md).

First the volume itself: the mounts really are separate clients of one volume
(and the cached one really caches failed lookups), and it is torn down on
every path, including an interrupt and a killed owner. Then the counter
workload with writers on two mounts under SIGSTOP, readers on another, and
the unfenced control on the same mounts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from _sharedfs import SharedRoots
from zkflock._harness.sharedfs import GlusterVolume, mounts_of, remove_orphans, volumes
from zkflock._harness.torture import SharedMounts, torture


def test_mounts_are_separate_clients_of_one_volume(shared_roots: SharedRoots) -> None:
    a, b, cached = shared_roots.all
    assert len({os.stat(p).st_dev for p in (a, b, cached)}) == 3  # three mounts
    data = os.urandom(4096)
    with open(a / "x", "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    assert (b / "x").read_bytes() == data
    assert (cached / "x").read_bytes() == data


def test_cached_mount_hides_a_name_it_failed_to_find(shared_roots: SharedRoots) -> None:
    # What makes the cached mount hostile: a reader that looked a name up
    # before a writer on another host created it cannot open it for 2 s
    # (while a directory listing shows it, and refreshes the entry).
    a, b, cached = shared_roots.all
    for name in ("late", "listed"):
        for mount in (b, cached):
            with pytest.raises(FileNotFoundError):
                (mount / name).read_bytes()
        (a / name).write_bytes(b"here")
        assert (b / name).read_bytes() == b"here"  # the default mount sees it at once
        with pytest.raises(FileNotFoundError):
            (cached / name).read_bytes()
    assert "listed" in os.listdir(cached)
    assert (cached / "listed").read_bytes() == b"here"
    deadline = time.monotonic() + 30
    while True:
        try:
            assert (cached / "late").read_bytes() == b"here"
            break
        except FileNotFoundError:
            assert time.monotonic() < deadline, "the negative cache never expired"
            time.sleep(0.1)


def _gone(volume: GlusterVolume) -> None:
    assert mounts_of(volume.name) == []
    assert volume.name not in volumes()
    assert not any(os.path.ismount(m) for m in volume.mounts)
    assert not volume.brick.exists()
    assert not (Path("/var/run/gluster/vols") / volume.name).exists()


def _interrupted_while_busy(volume: GlusterVolume) -> None:
    with volume:
        assert mounts_of(volume.name) == volume.mounts
        (volume.mounts[0] / "busy").write_text("x")
        # An open file keeps mount 1 busy: plain umount fails, umount -l must do.
        _open_files.append(open(volume.mounts[1] / "busy"))  # noqa: SIM115
        raise KeyboardInterrupt


_open_files: list[IO[str]] = []


def test_volume_is_torn_down_on_an_interrupt(
    shared_volume: GlusterVolume, tmp_path: Path
) -> None:
    # shared_volume keeps glusterd running, so this volume only leases it.
    volume = GlusterVolume(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _interrupted_while_busy(volume)
    _open_files.pop().close()
    _gone(volume)


_OWNER = """
import sys, time
from pathlib import Path
from typing import IO
from zkflock._harness.sharedfs import GlusterVolume
volume = GlusterVolume(Path(sys.argv[1])).__enter__()
print(volume.name, flush=True)
time.sleep(600)
"""


def test_volume_of_a_killed_run_is_removed_by_the_next(
    shared_volume: GlusterVolume, tmp_path: Path
) -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        name = owner.stdout.readline().strip()
        assert name in volumes(), name
        owner.kill()
        owner.wait()
        assert len(mounts_of(name)) == 2  # SIGKILL: no teardown ran
        assert name in remove_orphans()
        assert mounts_of(name) == []
        assert name not in volumes()
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        remove_orphans()


# -- the counter workload on two mounts ---------------------------------------------


def _mounts(roots: SharedRoots) -> SharedMounts:
    # Two writers per mount on a and b; readers on b and on the cached mount.
    return SharedMounts(writers=(roots.a, roots.b), readers=(roots.b, roots.cached))


@pytest.mark.timeout(240)
def test_fenced_counter_on_two_mounts_under_sigstop(
    shared_roots: SharedRoots, tmp_path: Path
) -> None:
    # A longer pause than on a local disk: on GlusterFS a writer spends most
    # of its cycle publishing the view after its commit, and the nemesis
    # must find the lock held to strike.
    outcome = torture("pause", clients=4, duration=15.0, pause=0.05, base_dir=tmp_path,
                      mounts=_mounts(shared_roots))
    v, reads = outcome.verdict, outcome.reads
    detail = (v, reads, outcome.views, outcome.strikes)
    assert outcome.struck >= 1, detail  # the fault really happened
    assert v.acknowledged >= 20, detail  # and the workload made progress under it
    assert (v.lost, v.duplicated, v.unexplained) == (0, 0, 0), detail
    assert reads is not None, detail
    assert reads.reads >= 20, detail
    assert reads.backwards == 0, detail
    assert reads.errors == 0, detail  # no read() ever failed, on either reader's mount
    assert len(outcome.views) == 3, detail  # the view was looked at on every mount
    assert v.misreported == 0, detail  # no writer told a landed commit failed
    assert outcome.view_ok, detail  # the view reached the final version on every mount


@pytest.mark.timeout(300)
def test_unfenced_control_on_two_mounts_loses_updates(
    shared_roots: SharedRoots, tmp_path: Path
) -> None:
    # The same mounts, a plain lock and direct writes: a paused holder (and
    # the mounts' stale caches) make it lose acknowledged increments. A run
    # whose pauses all miss may lose nothing, so up to three runs.
    lost = []
    for _ in range(3):
        outcome = torture("pause", clients=4, duration=12.0, unfenced=True, pause=0.3,
                          base_dir=tmp_path, mounts=_mounts(shared_roots))
        lost.append((outcome.verdict.lost, outcome.strikes))
        if outcome.verdict.lost > 0:
            break
    assert max(n for n, _ in lost) > 0, lost
    assert not outcome.ok


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fenced_counter_on_two_mounts_long(tmp_path: Path) -> None:
    # What make torture-shared runs: the command, with its own volume.
    done = subprocess.run(
        [sys.executable, "-m", "zkflock", "--json", "torture", "--shared-volume",
         "--nemesis", "pause", "--clients", "4", "--duration", "90"],
        capture_output=True, text=True, timeout=800, check=False)
    [run] = json.loads(done.stdout)
    assert run["acknowledged"] >= 300, run
    assert (run["lost"], run["duplicated"], run["unexplained"]) == (0, 0, 0), run
    assert run["misreported"] == 0, run
    assert run["reads"]["backwards"] == 0, run
    assert run["reads"]["errors"] == 0, run
    assert run["view_ok"], run
