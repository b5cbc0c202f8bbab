"""Fenced files at any size: an append to a large file against one to a 1 KB
file (same run, interleaved), the appending process's peak memory, bytes on
the volume against the content, and ``zkflock cat`` of the large file.

The measuring runs in a fresh interpreter (``python -m zkflock._bench.files
HOSTS ROOT SIZE APPENDS``), so its peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkflock._bench.report import spread

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig

LARGE = 1 << 30  # the full run's large file: 1 GiB
QUICK_LARGE = 16 << 20
LINE = "a small line\n"


def files(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    """The scenario: see the module docstring."""
    quick = cfg.fenced_cycles < 50
    size, appends = (QUICK_LARGE, 20) if quick else (LARGE, 300)
    with tempfile.TemporaryDirectory(prefix="zkflock-bench-bigfile-") as root:
        proc = subprocess.run(
            [sys.executable, "-m", "zkflock._bench.files", hosts, root, str(size), str(appends)],
            capture_output=True, text=True, timeout=3600, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"files benchmark worker failed: {proc.stderr[-2000:]}")
        got = json.loads(proc.stdout)
        cat_small = _cat_rss(hosts, root, "small.txt")
        started = time.perf_counter()
        cat_large = _cat_rss(hosts, root, "large.txt")
        cat_seconds = time.perf_counter() - started
    lat = {"append 1 KB file": spread(got["lat_small_ms"]),
           f"append {size >> 20} MiB file": spread(got["lat_large_ms"])}
    small_p50, large_p50 = (v["p50"] for v in lat.values())
    mib = 1 << 20
    facts = {
        "large file bytes": got["content_bytes"],
        "segments": got["segments"],
        "write of the large file s": round(got["write_s"], 1),
        "read() stream of the large file s": round(got["read_s"], 1),
        "peak RSS growth, write+appends+read MiB": round(got["rss_growth_kib"] / 1024, 1),
        "zkflock cat large - small, peak RSS MiB": round((cat_large - cat_small) / 1024, 1),
        "zkflock cat large s": round(cat_seconds, 1),
        "volume bytes / content": round(got["volume_bytes"] / got["content_bytes"], 3),
        "append p50 ms (1 KB, large)": [round(small_p50, 2), round(large_p50, 2)],
        "large file MiB": size // mib,
        **_floor_facts(got["floor_ms"], small_p50),
    }
    return {
        "latency_ms": lat,
        "ratios": {"large/small append p50": large_p50 / small_p50,
                   "volume bytes / content": got["volume_bytes"] / got["content_bytes"]},
        "facts": facts,
    }


FENCED_PARTS = ("lock create + listing", "fenced multi (delete + set_data)", "durable segment",
                "view extension", "unlink merged segment")
PLAIN_PARTS = ("lock create + listing", "release delete", "append + fsync")


def _floor_facts(floor: dict[str, float], append_p50: float) -> dict[str, Any]:
    """Each part in ms with its share of the 1 KB file's append p50, and the
    ratio the parts alone would give (plain parts / fenced parts): what is
    left of an append beyond its parts is client CPU and scheduling."""
    fenced = sum(floor[k] for k in FENCED_PARTS)
    plain = sum(floor[k] for k in PLAIN_PARTS)
    return {
        **{f"floor: {k} p50 ms, share of append": [round(v, 3), round(v / append_p50, 2)]
           for k, v in floor.items()},
        "floor: fenced parts / plain parts ms": [round(fenced, 3), round(plain, 3)],
        "floor: plain/fenced ratio of the parts alone": round(plain / fenced, 3),
        "floor: append beyond its parts ms": round(append_p50 - fenced, 3),
    }


def _cat_rss(hosts: str, root: str, name: str) -> int:
    """Peak RSS (KiB) of ``zkflock cat NAME > /dev/null``."""
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zkflock", "--hosts", hosts, "--root", root, "cat", name],
            stdout=sink,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"zkflock cat {name} exited {proc.returncode}")
    return int(usage.ru_maxrss)


def _content(size: int) -> Iterator[bytes]:
    block = b"".join(b"line %09d of the large fenced file\n" % i for i in range(26_000))[:1 << 20]
    for at in range(0, size, len(block)):
        yield block[: min(len(block), size - at)]


def _maxrss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _volume_bytes(root: Path, name: str) -> int:
    from zkflock._files.disk import store_dir_name

    paths = [root / name, *(root / ".zkflock" / "objects" / store_dir_name(name)).iterdir()]
    return sum(p.stat().st_size for p in paths)


def worker(hosts: str, root: str, size: int, appends: int) -> dict[str, Any]:
    """Runs in its own interpreter: writes, appends, reads, measures."""
    from zkflock._files.meta import encode_meta
    from zkflock._session import connect

    with connect(hosts, root=root, session_timeout=10, connect_timeout=30) as zk:
        small, large = zk.shared_file("small.txt"), zk.shared_file("large.txt")
        small.write(b"x" * 1023 + b"\n")
        for _ in range(5):  # warm both paths up before the baseline
            small.append(LINE)
        rss0 = _maxrss()
        started = time.perf_counter()
        large.write(_FileLike(_content(size)))
        write_s = time.perf_counter() - started
        lat_small: list[float] = []
        lat_large: list[float] = []
        for i in range(appends):
            pair = [(small, lat_small), (large, lat_large)]
            for f, lat in pair if i % 2 else reversed(pair):
                t0 = time.perf_counter_ns()
                f.append(LINE)
                lat.append((time.perf_counter_ns() - t0) / 1e6)
        started = time.perf_counter()
        read = 0
        with large.open() as reader:
            while chunk := reader.read(1 << 20):
                read += len(chunk)
        read_s = time.perf_counter() - started
        floor = _floor_parts(zk, Path(root), encode_meta(large.meta()))
        meta = large.meta()
        if read != meta.size:
            raise RuntimeError(f"read {read} bytes of {meta.size}")
        return {
            "lat_small_ms": lat_small, "lat_large_ms": lat_large,
            "write_s": write_s, "read_s": read_s,
            "rss_growth_kib": _maxrss() - rss0,
            "content_bytes": meta.size, "segments": len(meta.segments),
            "volume_bytes": _volume_bytes(Path(root), "large.txt"),
            "floor_ms": floor,
        }


def _floor_parts(zk: Any, root: Path, meta: bytes) -> dict[str, float]:
    """p50 (ms) of each part of a fenced append and of the plain baseline
    (lock, append, fsync, release), measured interleaved in one loop on the
    same server and disk: the lock's create + listing (both pay it), the
    release's delete (plain) against the fenced multi (delete + set_data of
    ``meta``, a real file's encoded metadata), the plain append + fsync against the
    durable segment (create, write, file and directory fsync), and what a
    fenced append adds after its commit: the view extended in place and the
    merged segment unlinked. The metadata read rides in the lock's round
    trip since the read-behind change; its own round trip is shown too."""
    import statistics

    from zkflock._files.objects import ObjectStore
    from zkflock._names import file_meta_path

    store = ObjectStore(root, root / "floor-objects")
    meta_path = file_meta_path("floor-meta", zk.settings.namespace)
    zk.zk.create_meta(meta_path, meta)
    parts: dict[str, list[float]] = {key: [] for key in FLOOR_PARTS}
    for i in range(60):
        times = _floor_round(zk, store, root, meta_path, meta, i)
        for key, took in times.items():
            parts[key].append(took * 1000)
    return {key: statistics.median(values) for key, values in parts.items()}


FLOOR_PARTS = ("lock create + listing", "release delete", "fenced multi (delete + set_data)",
               "append + fsync", "durable segment", "view extension", "unlink merged segment",
               "metadata read (own round trip)")


def _floor_round(zk: Any, store: Any, root: Path, meta_path: str, meta: bytes,
                 i: int) -> dict[str, float]:
    clock = time.perf_counter
    out: dict[str, float] = {}
    lock = zk.lock("floor-plain")
    t0 = clock()
    lock.acquire()
    out["lock create + listing"] = clock() - t0
    t0 = clock()
    lock.release()
    out["release delete"] = clock() - t0
    lock = zk.lock("floor-fenced")
    lock.acquire()
    version = zk.zk.get_meta(meta_path, sync=False)[1]
    t0 = clock()
    zk.zk.commit_fenced(lock.node_paths()[0], meta_path, version, meta)
    out["fenced multi (delete + set_data)"] = clock() - t0
    lock.released_by_commit()
    t0 = clock()
    with open(root / "floor-plain", "a") as plain:
        plain.write(LINE)
        plain.flush()
        os.fsync(plain.fileno())
    out["append + fsync"] = clock() - t0
    t0 = clock()
    store.create(f"{i}-1-{i:016x}", [LINE.encode()])
    out["durable segment"] = clock() - t0
    t0 = clock()
    fd = os.open(root / "floor-view", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    os.pwrite(fd, LINE.encode(), os.fstat(fd).st_size)
    os.close(fd)
    out["view extension"] = clock() - t0
    t0 = clock()
    os.unlink(store.path(f"{i}-1-{i:016x}"))
    out["unlink merged segment"] = clock() - t0
    t0 = clock()
    zk.zk.get_meta(meta_path, sync=False)
    out["metadata read (own round trip)"] = clock() - t0
    return out


class _FileLike:
    """A binary file object over generated chunks (``write()`` streams it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, n: int = -1) -> bytes:
        return next(self._chunks, b"")


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
