"""Requests and CPU per contended handoff, zkflock against kazoo's Lock.

    .venv/bin/python benchmarks/handoff_cost.py

N processes (2, then 4) each take and release one lock as fast as they can
for 4 s on a local standalone ZooKeeper (forceSync=no); for each run it
prints handoffs/s, the server's received packets per handoff (``mntr``), and
the client and server CPU per handoff (``os.times`` of the workers, ``/proc``
of the JVM). It explains the contended figures of ``zkflock bench``: from 4
processes both locks are CPU-bound on a 2-core machine.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import tempfile
import time
from pathlib import Path

from kazoo.client import KazooClient

import zkflock
from zkflock._server.local import LocalZooKeeper

SECONDS = 4.0


def worker(kind: str, hosts: str, q: mp.Queue) -> None:  # type: ignore[type-arg]
    end = time.monotonic() + SECONDS
    n = 0
    if kind == "zkflock":
        zk = zkflock.connect(hosts)
        while time.monotonic() < end:
            with zk.lock("c"):
                n += 1
        t = os.times()
        zk.close()
    else:
        client = KazooClient(hosts=hosts)
        client.start()
        lock = client.Lock("/k/c")
        while time.monotonic() < end:
            with lock:
                n += 1
        t = os.times()
        client.stop()
    q.put((n, t.user + t.system))


def jvm_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def packets(server: LocalZooKeeper) -> int:
    found = re.search(r"zk_packets_received\s+(\d+)", server.four_letter(1, "mntr"))
    assert found is not None
    return int(found.group(1))


def main() -> None:
    with LocalZooKeeper(tempfile.mkdtemp(), tick_time=200, force_sync=False) as server:
        pid = server.pid(1)
        assert pid is not None
        for procs in (2, 4):
            for kind in ("zkflock", "kazoo", "zkflock", "kazoo"):
                q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
                p0, j0 = packets(server), jvm_cpu(pid)
                workers = [mp.Process(target=worker, args=(kind, server.hosts, q))
                           for _ in range(procs)]
                for w in workers:
                    w.start()
                results = [q.get() for _ in workers]
                for w in workers:
                    w.join()
                n = sum(r[0] for r in results)
                cpu = sum(r[1] for r in results)
                p1, j1 = packets(server), jvm_cpu(pid)
                print(f"{procs} processes {kind:8s} handoffs/s {n / SECONDS:6.0f}  "
                      f"requests/handoff {(p1 - p0) / n:5.2f}  "
                      f"client CPU/handoff {cpu / n * 1e6:5.0f} us  "
                      f"server CPU/handoff {(j1 - j0) / n * 1e6:5.0f} us", flush=True)


if __name__ == "__main__":
    main()
