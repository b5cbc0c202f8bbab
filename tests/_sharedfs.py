"""The shared-volume fixtures' helpers: one GlusterFS volume mounted three
times (SHAREDFS.md), and a fresh directory on it per test."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from zkflock._harness.sharedfs import GlusterVolume

# Mount 0 and 1: two hosts with GlusterFS's default caching. Mount 2: a third
# host whose mount keeps failed lookups for 2 s (like NFS's lookupcache).
MOUNT_OPTIONS = ("", "", "negative-timeout=2")
_dirs = itertools.count(1)


@dataclass(frozen=True)
class SharedRoots:
    """One directory of the volume as each mount shows it."""

    a: Path  # default options
    b: Path  # default options, a second host
    cached: Path  # negative-timeout=2

    @property
    def all(self) -> tuple[Path, Path, Path]:
        return self.a, self.b, self.cached


def gluster_volume(base: Path) -> GlusterVolume:
    if os.geteuid() != 0:
        pytest.skip("mounting a GlusterFS volume (FUSE) needs root")
    return GlusterVolume(base, mounts=MOUNT_OPTIONS)


def fresh_roots(volume: GlusterVolume) -> SharedRoots:
    """A new directory on the volume, made on mount a, seen through every mount."""
    name = f"t-{os.getpid()}-{next(_dirs)}"
    (volume.mounts[0] / name).mkdir()
    a, b, cached = (mount / name for mount in volume.mounts)
    return SharedRoots(a, b, cached)
