"""Benchmarks of the kinds built on the lock: ``lock_many`` and fenced files."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import TYPE_CHECKING, Any

from zkflock._bench import Contender, ZkflockContender, _kazoo, start_workers, stop_workers

if TYPE_CHECKING:
    from zkflock._bench_scenarios import BenchConfig


class ZkflockMany(ZkflockContender):
    """``session.lock_many`` of ``count`` names: one multi for every queue."""

    def __init__(self, hosts: str, name: str, count: int) -> None:
        super().__init__(hosts, name)
        self._names = [f"{name}-{i}" for i in range(count)]
        self._many: Any = None

    def acquire(self) -> int:
        self._many = self._session.lock_many(self._names)
        self._many.acquire()
        return 0

    def release(self) -> None:
        self._many.release()


class KazooMany(Contender):
    """kazoo's Lock on each name, one after another (in a fixed order, the
    only deadlock-free way kazoo offers), released in reverse."""

    def __init__(self, hosts: str, name: str, count: int) -> None:
        self._client = _kazoo(hosts)
        self._locks = [self._client.Lock(f"/kazoo-bench/{name}-{i}") for i in range(count)]

    def acquire(self) -> int:
        for lock in self._locks:
            lock.acquire()
        return 0

    def release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()

    def close(self) -> None:
        self._client.stop()
        self._client.close()


class FencedAppend(ZkflockContender):
    """``SharedFile.append`` of a small line: lock, fenced commit, release."""

    def __init__(self, hosts: str, name: str) -> None:
        root, rel = name.split("::", 1)
        from zkflock._session import connect

        self._session = connect(hosts, root=root, session_timeout=10, connect_timeout=30)
        self._file: Any = self._session.shared_file(rel)

    def acquire(self) -> int:
        self._file.append("a small line\n")
        return 0

    def release(self) -> None:
        pass


class PlainAppend(ZkflockContender):
    """The unfenced baseline: zkflock lock, append, fsync, release."""

    def __init__(self, hosts: str, name: str) -> None:
        root, rel = name.split("::", 1)
        super().__init__(hosts, rel)
        self._path = os.path.join(root, rel + ".plain")

    def acquire(self) -> int:
        with self._session.lock(self._name), open(self._path, "a") as f:
            f.write("a small line\n")
            f.flush()
            os.fsync(f.fileno())
        return 0

    def release(self) -> None:
        pass


def make_extra(kind: str, hosts: str, name: str) -> Contender:
    base, _, arg = kind.partition(":")
    if base == "zkflock_many":
        return ZkflockMany(hosts, name, int(arg))
    if base == "kazoo_many":
        return KazooMany(hosts, name, int(arg))
    if base == "fenced":
        return FencedAppend(hosts, name)
    if base == "plain":
        return PlainAppend(hosts, name)
    raise ValueError(f"unknown benchmark contender {kind!r}")


def many_scenario(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    from zkflock._bench_report import spread
    from zkflock._bench_scenarios import _interleaved, _unique

    out: dict[str, Any] = {"latency_ms": {}, "ratios": {}}
    small = dataclasses.replace(cfg, warmup=2, batch=3, rounds=cfg.many_rounds)
    for count in cfg.many:
        kinds = [f"zkflock_many:{count}", f"kazoo_many:{count}"]
        workers = start_workers([(k, _unique(f"m{count}")) for k in kinds], hosts)
        try:
            raw = _interleaved(workers, small)
        finally:
            stop_workers(workers)
        lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
        out["latency_ms"] |= lat
        out["ratios"][f"kazoo/zkflock @{count}"] = lat[kinds[1]]["p50"] / lat[kinds[0]]["p50"]
    out["facts"] = {k: round(v["p50"], 2) for k, v in out["latency_ms"].items()}
    return out


def fenced_scenario(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    from zkflock._bench_report import spread
    from zkflock._bench_scenarios import _interleaved, _unique

    small = dataclasses.replace(cfg, warmup=5, batch=10, rounds=max(2, cfg.fenced_cycles // 10))
    with tempfile.TemporaryDirectory(prefix="zkflock-bench-files-") as root:
        rel = _unique("f").replace("/", "-")
        workers = start_workers([(k, f"{root}::{rel}-{k}") for k in ("fenced", "plain")], hosts)
        try:
            raw = _interleaved(workers, small)
        finally:
            stop_workers(workers)
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
    ratio = lat["plain"]["p50"] / lat["fenced"]["p50"]
    return {"latency_ms": lat, "ratios": {"fenced/plain throughput": ratio},
            "facts": {k: round(v["p50"], 2) for k, v in lat.items()}}
